package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	helmv2beta1 "github.com/fluxcd/helm-controller/api/v2beta1"
	helmv2beta2 "github.com/fluxcd/helm-controller/api/v2beta2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	kustomizev1beta1 "github.com/fluxcd/kustomize-controller/api/v1beta1"
	kustomizev1beta2 "github.com/fluxcd/kustomize-controller/api/v1beta2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	sourcev1beta1 "github.com/fluxcd/source-controller/api/v1beta1"
	sourcev1beta2 "github.com/fluxcd/source-controller/api/v1beta2"
	"sigs.k8s.io/yaml"

	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// goModTimeout bounds one `go mod download`: a module cache lookup, or
// under CI=true a download through the module proxy.
const goModTimeout = 2 * time.Minute

// moduleDir returns the directory of path@version in the Go module cache,
// or "" when it is not there. Outside CI only the cache is read; under
// CI=true the module proxy is asked too, so that the table is re-derived
// whole there.
func moduleDir(t *testing.T, path, version string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testsupport.SkipOrFail(t, "the go command is needed to find modules in the module cache")
	}
	ctx, cancel := context.WithTimeout(context.Background(), goModTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", path+"@"+version)
	cmd.Dir = t.TempDir() // outside the module: go.mod and go.sum stay as they are
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if os.Getenv("CI") != "true" {
		cmd.Env = append(cmd.Env, "GOPROXY=off")
	}
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	_ = json.Unmarshal(out, &info)
	if err != nil || info.Dir == "" {
		t.Logf("%s@%s not in the module cache: %s %v", path, version, info.Error, err)
		return ""
	}
	return info.Dir
}

func requireModule(t *testing.T, path, version string) string {
	t.Helper()
	dir := moduleDir(t, path, version)
	if dir == "" {
		testsupport.SkipOrFail(t, path+"@"+version+" is not in the module cache (go mod download "+path+"@"+version+" puts it there)")
	}
	return dir
}

func TestFluxReleasesMatchModuleSources(t *testing.T) {
	for _, rel := range fluxReleases {
		t.Run(rel.Minor, func(t *testing.T) {
			for _, c := range rel.APIModuleOnly {
				if _, ok := rel.Controllers[c]; !ok {
					t.Errorf("APIModuleOnly names %s, which Flux %s does not bundle", c, rel.Minor)
				}
			}
			flux2 := requireModule(t, "github.com/fluxcd/flux2/v2", rel.Flux2)
			goMod, err := os.ReadFile(filepath.Join(flux2, "go.mod"))
			if err != nil {
				t.Fatal(err)
			}
			for controller, version := range rel.Controllers {
				base := filepath.Join(flux2, "manifests", "bases", controller, "kustomization.yaml")
				raw, err := os.ReadFile(base)
				if err != nil {
					t.Fatal(err)
				}
				re := regexp.MustCompile(`/` + controller + `/releases/download/(v[^/]+)/`)
				if m := re.FindSubmatch(raw); m == nil || string(m[1]) != version {
					t.Errorf("flux2 %s bundles %s %s, the table says %s", rel.Flux2, controller, m, version)
				}
				apiRe := regexp.MustCompile(`github.com/fluxcd/` + controller + `/api (v\S+)`)
				if m := apiRe.FindSubmatch(goMod); m == nil || string(m[1]) != version {
					t.Errorf("flux2 %s go.mod requires %s/api %s, the table says %s", rel.Flux2, controller, m, version)
				}
				t.Run(controller, func(t *testing.T) { checkServed(t, &rel, controller, version) })
			}
			t.Run("strict substitution", func(t *testing.T) { checkStrictGate(t, &rel) })
		})
	}
}

// checkServed compares the table's served versions of one controller's
// kinds with its CRDs, else with its api module's Go types. Only a
// controller the entry names in APIModuleOnly may lack its module: the
// proxy refuses it, so the api module is the source the table names.
func checkServed(t *testing.T, rel *fluxRelease, controller, version string) {
	var got map[string][]string
	dir := moduleDir(t, "github.com/fluxcd/"+controller, version)
	if dir == "" && !slices.Contains(rel.APIModuleOnly, controller) {
		dir = requireModule(t, "github.com/fluxcd/"+controller, version)
	}
	if dir != "" {
		got = servedInCRDs(t, filepath.Join(dir, "config", "crd", "bases"))
		t.Logf("read from %s@%s config/crd/bases", controller, version)
	} else {
		dir := requireModule(t, "github.com/fluxcd/"+controller+"/api", version)
		got = servedInGoTypes(t, dir)
		t.Logf("%s@%s is refused by the module proxy (APIModuleOnly): read from %s/api@%s (+kubebuilder:skipversion)",
			controller, version, controller, version)
	}
	want := map[string][]string{}
	for _, k := range rel.Kinds {
		if k.Controller == controller {
			want[k.Group+"/"+k.Kind] = k.Served
		}
	}
	for gk, served := range got {
		slices.Sort(served)
		w, ok := want[gk]
		if w = slices.Sorted(slices.Values(w)); !ok || !slices.Equal(w, served) {
			t.Errorf("%s %s serves %s %v, the table says %v", controller, version, gk, served, w)
		}
	}
	for gk := range want {
		if _, ok := got[gk]; !ok {
			t.Errorf("the table lists %s for %s %s, which does not define it", gk, controller, version)
		}
	}
}

// servedInCRDs reads "group/Kind" -> served versions from CRD files.
func servedInCRDs(t *testing.T, dir string) map[string][]string {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", dir, err)
	}
	out := map[string][]string{}
	for _, f := range files {
		crd := readCRD(t, f)
		for _, v := range crd.Spec.Versions {
			if v.Served {
				gk := crd.Spec.Group + "/" + crd.Spec.Names.Kind
				out[gk] = append(out[gk], v.Name)
			}
		}
	}
	return out
}

type crdFile struct {
	Spec struct {
		Group string
		Names struct{ Kind string }
		// Versions with their schema, as apiextensions.k8s.io/v1 writes it.
		Versions []struct {
			Name   string
			Served bool
			Schema struct {
				OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
			}
		}
	}
}

func readCRD(t *testing.T, file string) crdFile {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var crd crdFile
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return crd
}

var (
	groupRe    = regexp.MustCompile(`GroupVersion\{Group: "([^"]+)"`)
	rootTypeRe = regexp.MustCompile(`(?m)^type (\w+) struct \{`)
)

// servedInGoTypes reads "group/Kind" -> served versions from an api module:
// every root type (+kubebuilder:object:root, not a List) of each version
// package, except those marked +kubebuilder:skipversion.
func servedInGoTypes(t *testing.T, dir string) map[string][]string {
	out := map[string][]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "v*", "*_types.go"))
	for _, f := range files {
		version := filepath.Base(filepath.Dir(f))
		doc, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "groupversion_info.go"))
		group := groupRe.FindSubmatch(doc)
		if group == nil {
			t.Fatalf("%s: no GroupVersion in groupversion_info.go", filepath.Dir(f))
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, loc := range rootTypeRe.FindAllSubmatchIndex(src, -1) {
			kind := string(src[loc[2]:loc[3]])
			markers := precedingComment(src[:loc[0]])
			if strings.HasSuffix(kind, "List") || !strings.Contains(markers, "+kubebuilder:object:root=true") ||
				strings.Contains(markers, "+kubebuilder:skipversion") {
				continue
			}
			gk := string(group[1]) + "/" + kind
			out[gk] = append(out[gk], version)
		}
	}
	return out
}

// precedingComment is the comment lines above a declaration, up to the
// code before it: kubebuilder markers may sit apart from the doc comment.
func precedingComment(src []byte) string {
	lines := strings.Split(string(src), "\n")
	var block []string
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if line != "" && !strings.HasPrefix(line, "//") {
			break
		}
		block = append(block, line)
	}
	return strings.Join(block, "\n")
}

var (
	strictGateRe = regexp.MustCompile(`(?m)^\s*StrictPostBuildSubstitutions:\s*(true|false),`)
	// The comment above the gate's default says since when it holds.
	strictSinceRe = regexp.MustCompile(`(?m)^\s*// (opt-in|opt-out) from (v[\d.]+)\n\s*StrictPostBuildSubstitutions:`)
)

// checkStrictGate reads the gate's default from kustomize-controller at the
// entry's version; where the proxy refuses that module (APIModuleOnly), from
// the "opt-out from vX.Y" comment of a later version the table holds.
func checkStrictGate(t *testing.T, rel *fluxRelease) {
	version := rel.Controllers["kustomize-controller"]
	var got bool
	if dir := moduleDir(t, "github.com/fluxcd/kustomize-controller", version); dir != "" || !slices.Contains(rel.APIModuleOnly, "kustomize-controller") {
		if dir == "" {
			dir = requireModule(t, "github.com/fluxcd/kustomize-controller", version)
		}
		src := readFeatures(t, dir)
		// A version without the gate substitutes leniently.
		if m := strictGateRe.FindSubmatch(src); m != nil {
			got = string(m[1]) == "true"
		}
	} else {
		got = strictFromLaterRelease(t, version)
	}
	if got != rel.StrictSubstitution {
		t.Errorf("kustomize-controller %s: StrictPostBuildSubstitutions defaults to %v, the table says %v", version, got, rel.StrictSubstitution)
	}
}

func readFeatures(t *testing.T, dir string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, "internal", "features", "features.go"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// strictFromLaterRelease derives the gate's default at version from a later
// kustomize-controller of the table whose module is served: a gate that is
// "opt-out from vX.Y" there was off before vX.Y.
func strictFromLaterRelease(t *testing.T, version string) bool {
	t.Helper()
	want := semver.MustParse(version)
	for _, later := range fluxReleases {
		lv := later.Controllers["kustomize-controller"]
		if slices.Contains(later.APIModuleOnly, "kustomize-controller") || !semver.MustParse(lv).GreaterThan(want) {
			continue
		}
		src := readFeatures(t, requireModule(t, "github.com/fluxcd/kustomize-controller", lv))
		m := strictSinceRe.FindSubmatch(src)
		if m == nil {
			t.Fatalf("kustomize-controller %s internal/features/features.go: no opt-in/opt-out comment above StrictPostBuildSubstitutions", lv)
		}
		strict := string(m[1]) == "opt-out" && !want.LessThan(semver.MustParse(string(m[2])))
		t.Logf("kustomize-controller@%s is refused by the module proxy (APIModuleOnly): %s's gate is %s from %s, so %s defaults to %v",
			version, lv, m[1], m[2], version, strict)
		return strict
	}
	t.Fatalf("kustomize-controller %s is refused by the module proxy and the table holds no later served version to read the gate from", version)
	return false
}

// The version each kind moves to is the one `flux migrate` of go.mod's
// flux2 moves it to, for the same Flux minor.
func TestLatestMatchesFluxMigrate(t *testing.T) {
	version, err := fluxinstall.FluxVersion()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(requireModule(t, "github.com/fluxcd/flux2/v2", version), "cmd", "flux", "migrate.go"))
	if err != nil {
		t.Fatal(err)
	}
	latest := migrateTables(t, src)
	for _, rel := range fluxReleases {
		table, ok := latest[rel.Minor]
		if !ok {
			t.Errorf("flux2 %s migrate.go has no table for Flux %s", version, rel.Minor)
			continue
		}
		for _, k := range rel.Kinds {
			if table[k.Kind] != k.Latest {
				t.Errorf("Flux %s: flux migrate moves %s to %q, the table says %q", rel.Minor, k.Kind, table[k.Kind], k.Latest)
			}
		}
	}
}

// migrateTables reads latestAPIVersions of flux2's cmd/flux/migrate.go:
// Flux minor -> Kind -> API version.
func migrateTables(t *testing.T, src []byte) map[string]map[string]string {
	versionOf := map[string]string{} // import alias -> API version
	for _, m := range regexp.MustCompile(`(\w+)\s+"github.com/fluxcd/[^"]+/api(?:/v2)?/(v\w+)"`).FindAllSubmatch(src, -1) {
		versionOf[string(m[1])] = string(m[2])
	}
	maps := map[string]map[string]string{}
	mapRe := regexp.MustCompile(`(?s)var (\w+) = map\[schema\.GroupKind\]string\{(.*?)\n\}`)
	entryRe := regexp.MustCompile(`Kind: \w+\.(\w+)Kind\}:\s*(\w+)\.GroupVersion\.Version`)
	for _, m := range mapRe.FindAllSubmatch(src, -1) {
		kinds := map[string]string{}
		for _, e := range entryRe.FindAllSubmatch(m[2], -1) {
			kinds[string(e[1])] = versionOf[string(e[2])]
		}
		maps[string(m[1])] = kinds
	}
	out := map[string]map[string]string{}
	for _, m := range regexp.MustCompile(`FluxVersion:\s*"([\d.]+)",\s*LatestVersions:\s*(\w+),`).FindAllSubmatch(src, -1) {
		out[string(m[1])] = maps[string(m[2])]
	}
	if len(out) == 0 {
		t.Fatal("migrate.go: no latestAPIVersions entries found")
	}
	return out
}

// oldTypes are the Go types of the API versions movedFields name, from
// the api modules in go.mod.
var oldTypes = map[string]reflect.Type{
	"HelmRelease/v2beta1":   reflect.TypeFor[helmv2beta1.HelmRelease](),
	"HelmRelease/v2beta2":   reflect.TypeFor[helmv2beta2.HelmRelease](),
	"HelmRelease/v2":        reflect.TypeFor[helmv2.HelmRelease](),
	"Kustomization/v1beta1": reflect.TypeFor[kustomizev1beta1.Kustomization](),
	"Kustomization/v1beta2": reflect.TypeFor[kustomizev1beta2.Kustomization](),
	"Kustomization/v1":      reflect.TypeFor[kustomizev1.Kustomization](),
	"GitRepository/v1beta1": reflect.TypeFor[sourcev1beta1.GitRepository](),
	"GitRepository/v1beta2": reflect.TypeFor[sourcev1beta2.GitRepository](),
	"GitRepository/v1":      reflect.TypeFor[sourcev1.GitRepository](),
	"HelmChart/v1beta1":     reflect.TypeFor[sourcev1beta1.HelmChart](),
	"HelmChart/v1beta2":     reflect.TypeFor[sourcev1beta2.HelmChart](),
	"HelmChart/v1":          reflect.TypeFor[sourcev1.HelmChart](),
	"Bucket/v1beta1":        reflect.TypeFor[sourcev1beta1.Bucket](),
	"Bucket/v1beta2":        reflect.TypeFor[sourcev1beta2.Bucket](),
	"Bucket/v1":             reflect.TypeFor[sourcev1.Bucket](),
}

// Each moved field is in the Go type of every version that had it, and in
// every version a known Flux serves exactly when the table says it had it:
// by go.mod's Go types and by the bundled controller's CRD schemas (an
// APIModuleOnly controller has none to read; its Go types stand for it).
func TestMovedFieldsMatchSchemas(t *testing.T) {
	for _, m := range movedFields {
		path := strings.Split(m.Path, ".")
		for _, v := range m.In {
			typ, ok := oldTypes[m.Kind+"/"+v]
			if !ok {
				t.Fatalf("no Go type for %s %s", m.Kind, v)
			}
			if !goTypeHas(typ, path) {
				t.Errorf("%s %s has no field %s: the table says it had", m.Kind, v, m.Path)
			}
		}
		for _, rel := range fluxReleases {
			kind := rel.kind(m.Group, m.Kind)
			for _, v := range kind.Served {
				typ, ok := oldTypes[m.Kind+"/"+v]
				if !ok {
					t.Fatalf("no Go type for %s %s (served by Flux %s)", m.Kind, v, rel.Minor)
				}
				if goTypeHas(typ, path) != slices.Contains(m.In, v) {
					t.Errorf("%s %s (served by Flux %s): Go type has %s = %v, the table says %v",
						m.Kind, v, rel.Minor, m.Path, !slices.Contains(m.In, v), slices.Contains(m.In, v))
				}
			}
			checkMovedInCRD(t, &rel, kind, m)
		}
	}
}

// checkMovedInCRD compares a moved field with the served versions of the
// kind's CRD at the controller version rel bundles.
func checkMovedInCRD(t *testing.T, rel *fluxRelease, kind *servedKind, m movedField) {
	t.Helper()
	mod, version := "github.com/fluxcd/"+kind.Controller, rel.Controllers[kind.Controller]
	dir := moduleDir(t, mod, version)
	if dir == "" {
		if slices.Contains(rel.APIModuleOnly, kind.Controller) {
			t.Logf("Flux %s: %s@%s is refused by the module proxy (APIModuleOnly): %s %s judged by the Go types only",
				rel.Minor, mod, version, m.Kind, m.Path)
			return
		}
		dir = requireModule(t, mod, version)
	}
	crds, _ := filepath.Glob(filepath.Join(dir, "config", "crd", "bases", m.Group+"_*.yaml"))
	found := false
	for _, f := range crds {
		crd := readCRD(t, f)
		if crd.Spec.Names.Kind != m.Kind {
			continue
		}
		found = true
		for _, v := range crd.Spec.Versions {
			if has := schemaHas(v.Schema.OpenAPIV3Schema, strings.Split(m.Path, ".")); v.Served && has != slices.Contains(m.In, v.Name) {
				t.Errorf("%s@%s %s: %s %s has %s = %v, the table says %v",
					kind.Controller, version, filepath.Base(f), m.Kind, v.Name, m.Path, has, slices.Contains(m.In, v.Name))
			}
		}
	}
	if !found {
		t.Errorf("%s@%s config/crd/bases has no CRD for %s %s", kind.Controller, version, m.Group, m.Kind)
	}
}

// goTypeHas follows a field path through JSON tags; "x[]" steps into the
// items of list x.
func goTypeHas(typ reflect.Type, path []string) bool {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
	}
	if len(path) == 0 {
		return true
	}
	if typ.Kind() != reflect.Struct {
		return false
	}
	step, _ := strings.CutSuffix(path[0], "[]")
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
			if goTypeHas(f.Type, path) {
				return true
			}
			continue
		}
		if name == step {
			return goTypeHas(f.Type, path[1:])
		}
	}
	return false
}

// schemaHas follows a field path through an OpenAPI v3 schema.
func schemaHas(schema map[string]any, path []string) bool {
	if len(path) == 0 {
		return true
	}
	step, each := strings.CutSuffix(path[0], "[]")
	props, _ := schema["properties"].(map[string]any)
	next, ok := props[step].(map[string]any)
	if !ok {
		return false
	}
	if each {
		if next, ok = next["items"].(map[string]any); !ok {
			return false
		}
	}
	return schemaHas(next, path[1:])
}

func TestGoTypeAndSchemaPaths(t *testing.T) {
	hr := reflect.TypeFor[helmv2.HelmRelease]()
	for path, want := range map[string]bool{
		"spec.chart.spec.valuesFiles":                    true,
		"spec.postRenderers[].kustomize.patches":         true,
		"spec.postRenderers[].kustomize.patchesJson6902": false,
		"apiVersion":    true, // through the inline TypeMeta
		"metadata.name": true,
		"spec.nope":     false,
	} {
		if got := goTypeHas(hr, strings.Split(path, ".")); got != want {
			t.Errorf("goTypeHas(HelmRelease, %s) = %v, want %v", path, got, want)
		}
	}
	var schema map[string]any
	doc := []byte(`{"properties":{"spec":{"properties":{"list":{"items":{"properties":{"a":{}}}}}}}}`)
	if err := json.NewDecoder(bytes.NewReader(doc)).Decode(&schema); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{"spec.list[].a": true, "spec.list[].b": false, "spec.list": true, "spec.other": false} {
		if got := schemaHas(schema, strings.Split(path, ".")); got != want {
			t.Errorf("schemaHas(%s) = %v, want %v", path, got, want)
		}
	}
}
