package fluxinstall

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

func TestVersionFromGoMod(t *testing.T) {
	tests := []struct {
		name, gomod, want string
		wantErr           bool
	}{
		{
			name: "require block",
			gomod: `module x

go 1.26.0

require (
	github.com/fluxcd/cli-utils v1.3.0 // indirect
	github.com/fluxcd/flux2/v2 v2.9.5 // indirect
)
`,
			want: "v2.9.5",
		},
		{
			name:  "single require line",
			gomod: "module x\nrequire github.com/fluxcd/flux2/v2 v2.8.0\n",
			want:  "v2.8.0",
		},
		{
			name: "replace with version wins",
			gomod: `module x
require github.com/fluxcd/flux2/v2 v2.9.5
replace github.com/fluxcd/flux2/v2 => github.com/fork/flux2/v2 v2.9.6
`,
			want: "v2.9.6",
		},
		{
			name: "replace in a block with an old version",
			gomod: `module x
require github.com/fluxcd/flux2/v2 v2.9.5
replace (
	github.com/fluxcd/flux2/v2 v2.9.5 => github.com/fork/flux2/v2 v2.9.7
)
`,
			want: "v2.9.7",
		},
		{
			name:  "local directory replace keeps the required version",
			gomod: "module x\nrequire github.com/fluxcd/flux2/v2 v2.9.5\nreplace github.com/fluxcd/flux2/v2 => ../flux2\n",
			want:  "v2.9.5",
		},
		{
			name:    "similar module path is not a match",
			gomod:   "module x\nrequire github.com/fluxcd/flux2/v2/extra v9.9.9\n",
			wantErr: true,
		},
		{
			name:    "not required",
			gomod:   "module x\n\ngo 1.26.0\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := versionFromGoMod([]byte(tt.gomod))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	tests := []struct {
		name string
		deps []*debug.Module
		want string
	}{
		{"absent", []*debug.Module{{Path: "k8s.io/api", Version: "v0.37.0"}}, ""},
		{"plain", []*debug.Module{{Path: fluxModule, Version: "v2.9.5"}}, "v2.9.5"},
		{"replaced", []*debug.Module{{Path: fluxModule, Version: "v2.9.5", Replace: &debug.Module{Path: "fork", Version: "v2.9.6"}}}, "v2.9.6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionFromBuildInfo(&debug.BuildInfo{Deps: tt.deps}); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFluxVersionMatchesGoMod checks that the build info of the test binary
// and the repository's go.mod agree: go.mod is the one source of truth.
func TestFluxVersionMatchesGoMod(t *testing.T) {
	got, err := FluxVersion()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	gomod, err := findGoMod(wd)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	want, err := versionFromGoMod(data)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("FluxVersion() = %q, go.mod requires %q", got, want)
	}
	t.Logf("Flux version %s", got)
}

func TestGenerateOffline(t *testing.T) {
	version, err := FluxVersion()
	if err != nil {
		t.Fatal(err)
	}
	// Both bases ship controllers tagged like the ones flux2 v2.9.5 bundles.
	controllerTag := "v1.9.5"
	kit, err := kitprofile.FromEnv()
	if err != nil {
		t.Fatalf("reading the offline kit profile: %v", err)
	}
	tests := []struct {
		name       string
		dir        string
		components []string
		crds       []string
	}{
		{
			name:       "testdata base",
			dir:        "testdata/base",
			components: []string{"source-controller"},
			crds:       []string{"gitrepositories.source.toolkit.fluxcd.io"},
		},
		{
			name:       "offline kit (E2E_KIT)",
			dir:        kit.FluxManifests,
			components: []string{"source-controller", "kustomize-controller"},
			crds: []string{
				"gitrepositories.source.toolkit.fluxcd.io",
				"ocirepositories.source.toolkit.fluxcd.io",
				"kustomizations.kustomize.toolkit.fluxcd.io",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dir == "" {
				msg := "the offline kit profile has no Flux manifests: set E2E_KIT to the kit's profile file (make offline-images; go run ./hack/kit -print names it) to test the real manifests"
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s (CI=true: `make test` provides it)", msg)
				}
				t.Skip(msg)
			}
			before := treeDigest(t, tt.dir)
			start := time.Now()
			objs, err := Generate(context.Background(), Options{Components: tt.components, ManifestsDir: tt.dir})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("generated %d objects in %s", len(objs), time.Since(start).Round(time.Millisecond))
			if after := treeDigest(t, tt.dir); after != before {
				t.Errorf("Generate modified ManifestsDir %s", tt.dir)
			}

			byKind := map[string][]*unstructured.Unstructured{}
			for _, o := range objs {
				byKind[o.GetKind()] = append(byKind[o.GetKind()], o)
			}
			if ns := names(byKind["Namespace"]); !slices.Equal(ns, []string{"flux-system"}) {
				t.Errorf("namespaces = %v, want [flux-system]", ns)
			}
			if len(byKind["NetworkPolicy"]) == 0 {
				t.Error("no NetworkPolicy generated although NetworkPolicy is on")
			}
			crds := names(byKind["CustomResourceDefinition"])
			for _, crd := range tt.crds {
				if !slices.Contains(crds, crd) {
					t.Errorf("CRD %s missing; have %v", crd, crds)
				}
			}
			deps := byKind["Deployment"]
			if got := names(deps); !slices.Equal(got, sorted(tt.components)) {
				t.Errorf("Deployments = %v, want %v", got, sorted(tt.components))
			}
			for _, d := range deps {
				if d.GetNamespace() != "flux-system" {
					t.Errorf("Deployment %s in namespace %q", d.GetName(), d.GetNamespace())
				}
				if v := d.GetLabels()["app.kubernetes.io/version"]; v != version {
					t.Errorf("Deployment %s version label %q, want %q", d.GetName(), v, version)
				}
				containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
				if len(containers) == 0 {
					t.Fatalf("Deployment %s has no containers", d.GetName())
				}
				image, _, _ := unstructured.NestedString(containers[0].(map[string]any), "image")
				if want := fmt.Sprintf("ghcr.io/fluxcd/%s:%s", d.GetName(), controllerTag); image != want {
					t.Errorf("Deployment %s image %q, want %q", d.GetName(), image, want)
				}
			}
		})
	}
}

func TestGenerateOfflineMissingComponent(t *testing.T) {
	_, err := Generate(context.Background(), Options{
		Components:   []string{"source-controller", "helm-controller"},
		ManifestsDir: "testdata/base",
	})
	if err == nil || !strings.Contains(err.Error(), "helm-controller.yaml") {
		t.Fatalf("want an error naming helm-controller.yaml, got %v", err)
	}
}

// A cancelled context ends Generate before any work: the error is the
// cancellation, no object is returned, and nothing is written (neither a
// temporary copy of the manifests nor a download).
func TestGenerateHonoursCancelledContext(t *testing.T) {
	tests := []struct{ name, dir string }{
		{"offline manifests", "testdata/base"},
		{"release download", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // where manifestgen makes its working copies
			var before string
			if tt.dir != "" {
				before = treeDigest(t, tt.dir)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			objs, err := Generate(ctx, Options{ManifestsDir: tt.dir, Components: []string{"source-controller"}})
			if !errors.Is(err, context.Canceled) || objs != nil {
				t.Fatalf("Generate with a cancelled context = %d objects, error %v; want none and context.Canceled", len(objs), err)
			}
			if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
				t.Errorf("Generate wrote %d entries to the temporary directory (%v), want none", len(entries), err)
			}
			if tt.dir != "" && treeDigest(t, tt.dir) != before {
				t.Errorf("Generate modified ManifestsDir %s", tt.dir)
			}
		})
	}
}

func TestResultString(t *testing.T) {
	r := &Result{
		Version: "v2.9.5", Cluster: "staging",
		Generate: 200 * time.Millisecond, Apply: 1100 * time.Millisecond,
		Ready: 11500 * time.Millisecond, Total: 12800 * time.Millisecond,
	}
	want := "flux v2.9.5 installed on staging in 12.8s (generate 0.2s, apply 1.1s, controllers ready 11.5s)"
	if got := r.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// treeDigest hashes the names, modes and contents of every file under dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v\n", p, info.Mode())
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestOptionsDefaults(t *testing.T) {
	fluxVersion, err := FluxVersion()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		in             Options
		wantVersion    string
		wantComponents []string
		wantNamespace  string
	}{
		{"empty", Options{}, fluxVersion, defaultComponents, "flux-system"},
		{"version without v", Options{Version: "2.8.1"}, "v2.8.1", defaultComponents, "flux-system"},
		{"explicit", Options{Version: "v2.9.0", Components: []string{"source-controller"}, Namespace: "flux"}, "v2.9.0", []string{"source-controller"}, "flux"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != tt.wantVersion || !slices.Equal(got.Components, tt.wantComponents) || got.Namespace != tt.wantNamespace {
				t.Errorf("got %s %v %s, want %s %v %s", got.Version, got.Components, got.Namespace, tt.wantVersion, tt.wantComponents, tt.wantNamespace)
			}
		})
	}
}

func TestAddControllerArgs(t *testing.T) {
	deployment := func(name string, args ...any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"kind":     "Deployment",
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"containers": []any{map[string]any{"name": "manager", "args": args}},
			}}},
		}}
	}
	gate := "--feature-gates=CancelHealthCheckOnNewRevision=true"
	tests := []struct {
		name    string
		extra   map[string][]string
		want    []string
		wantErr string
	}{
		{"appended", map[string][]string{"kustomize-controller": {gate}}, []string{"--log-level=info", gate}, ""},
		{"not duplicated", map[string][]string{"kustomize-controller": {"--log-level=info"}}, []string{"--log-level=info"}, ""},
		{"unknown controller", map[string][]string{"helm-controller": {gate}}, nil, "no such controller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []*unstructured.Unstructured{deployment("kustomize-controller", "--log-level=info"), deployment("source-controller")}
			err := addControllerArgs(objs, tt.extra)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			containers, _, _ := unstructured.NestedSlice(objs[0].Object, "spec", "template", "spec", "containers")
			got, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
			if !slices.Equal(got, tt.want) {
				t.Fatalf("args = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadinessProbePeriod(t *testing.T) {
	tests := []struct {
		name   string
		period time.Duration
		want   int64
	}{
		{"unset keeps the manifests' (the Kubernetes default)", 0, 0},
		{"one second", time.Second, 1},
		{"below a second rounds up to one", 200 * time.Millisecond, 1},
		{"whole seconds", 3 * time.Second, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Generate(context.Background(), Options{Components: []string{"source-controller"}, ManifestsDir: "testdata/base", ReadinessProbePeriod: tt.period})
			if err != nil {
				t.Fatal(err)
			}
			probes := 0
			for _, o := range objs {
				if o.GetKind() != "Deployment" {
					continue
				}
				containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				for _, c := range containers {
					if _, ok, _ := unstructured.NestedMap(c.(map[string]any), "readinessProbe"); !ok {
						continue
					}
					probes++
					got, _, _ := unstructured.NestedInt64(c.(map[string]any), "readinessProbe", "periodSeconds")
					if got != tt.want {
						t.Errorf("Deployment %s: readinessProbe.periodSeconds = %d, want %d", o.GetName(), got, tt.want)
					}
				}
			}
			if probes == 0 {
				t.Fatal("no readiness probe in the generated Deployments")
			}
		})
	}
}

func TestAPIServer(t *testing.T) {
	tests := []struct {
		name      string
		apiServer string
		// want is the controllers' KUBERNETES_SERVICE_HOST and _PORT; nil:
		// neither is set (kubelet's Service variables apply).
		want    []string
		wantErr string
	}{
		{"unset leaves the Service variables to kubelet", "", nil, ""},
		{"node address", "172.18.0.2:6443", []string{"172.18.0.2", "6443"}, ""},
		{"IPv6 node address", "[fc00:f853::2]:6443", []string{"fc00:f853::2", "6443"}, ""},
		{"no port", "172.18.0.2", nil, `API server address "172.18.0.2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Generate(context.Background(), Options{Components: []string{"source-controller"}, ManifestsDir: "testdata/base", APIServer: tt.apiServer})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			deployments := 0
			for _, o := range objs {
				if o.GetKind() != "Deployment" {
					continue
				}
				deployments++
				containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				for _, c := range containers {
					env, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
					var got []string
					for _, e := range env {
						name, _, _ := unstructured.NestedString(e.(map[string]any), "name")
						if name == "KUBERNETES_SERVICE_HOST" || name == "KUBERNETES_SERVICE_PORT" {
							value, _, _ := unstructured.NestedString(e.(map[string]any), "value")
							got = append(got, value)
						}
					}
					if !slices.Equal(got, tt.want) {
						t.Errorf("Deployment %s: KUBERNETES_SERVICE_HOST, _PORT = %q, want %q", o.GetName(), got, tt.want)
					}
				}
			}
			if deployments != 1 {
				t.Fatalf("%d Deployments generated, want 1", deployments)
			}
		})
	}
}

// A failing BeforeApply ends the install before anything is applied (the
// empty client bundle would fail any apply), with its error in the message.
func TestBeforeApplyFailureStopsTheInstall(t *testing.T) {
	calls := 0
	_, err := Install(context.Background(), &fluxobj.Clients{}, Options{
		Components:   []string{"source-controller"},
		ManifestsDir: "testdata/base",
		ClusterName:  "staging",
		BeforeApply: func(context.Context) error {
			calls++
			return errors.New("loading images: node staging-control-plane stopped reading")
		},
	})
	if calls != 1 {
		t.Errorf("BeforeApply called %d times, want 1", calls)
	}
	want := "installing Flux on staging: before applying: loading images: node staging-control-plane stopped reading"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}
