package validate

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	securefs "github.com/fluxcd/pkg/kustomize/filesys"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

const (
	// bootstrapDir is the folder flux bootstrap writes under each cluster
	// path; the harness installs Flux itself, so the sync ignores it.
	bootstrapDir = "flux-system"
	originKey    = "config.kubernetes.io/origin"
)

// BootstrapSource is the GitRepository the bootstrap (or the harness) points
// at the fleet's repository, as a sourceRef names it (kind, namespace and
// name, no API version): what uses it is read from the fleet directory.
func BootstrapSource() ObjectRef {
	sync := fluxobj.SyncSource()
	return ObjectRef{Kind: sync.Kind, Namespace: sync.Namespace, Name: sync.Name}
}

type builder struct {
	root     string // absolute fleet directory
	env      *Env
	findings []Finding
}

func (b *builder) finding(file string, obj ObjectRef, format string, args ...any) {
	b.findings = append(b.findings, Finding{Env: b.env.Name, File: file, Object: obj, Reason: fmt.Sprintf(format, args...)})
}

func (b *builder) add(o *Object) bool {
	if prev, ok := b.env.index[o.Ref]; ok {
		b.finding(o.File, o.Ref, "defined twice: also in %s (applied by %s); the two Kustomizations would fight over it",
			prev.File, prev.Owner)
		return false
	}
	b.env.index[o.Ref] = o
	b.env.Objects = append(b.env.Objects, o)
	b.env.children[o.Owner] = append(b.env.children[o.Owner], o.Ref)
	return true
}

// buildEnv starts from the root Kustomization that flux bootstrap (or the
// harness) creates: path ./clusters/<env>, source flux-system, with the
// flux-system folder ignored because the harness installs Flux itself.
func (b *builder) buildEnv(ctx context.Context) error {
	bootDir := b.env.Dir + "/" + bootstrapDir
	rootKs := &kustomizev1.Kustomization{}
	rootKs.APIVersion = kustomizev1.GroupVersion.String()
	rootKs.Kind = kustomizev1.KustomizationKind
	rootKs.Name, rootKs.Namespace = fluxobj.SyncName, fluxobj.Namespace
	rootKs.Spec.Path = "./" + b.env.Dir
	rootKs.Spec.Prune = true
	rootKs.Spec.SourceRef = kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: fluxobj.SyncName}
	rootRef := ObjectRef{Kind: kustomizev1.KustomizationKind, Namespace: fluxobj.Namespace, Name: fluxobj.SyncName}
	for _, o := range []*Object{
		{Ref: rootRef, APIVersion: rootKs.APIVersion, File: bootDir, Implicit: true, Typed: rootKs},
		{Ref: ObjectRef{Kind: "Namespace", Name: fluxobj.Namespace}, APIVersion: "v1", File: bootDir, Implicit: true, Owner: rootRef},
		{Ref: BootstrapSource(), APIVersion: "source.toolkit.fluxcd.io/v1", File: bootDir, Implicit: true, Owner: rootRef},
	} {
		b.add(o)
	}

	queue := []*Object{b.env.index[rootRef]}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		ks := queue[0]
		queue = queue[1:]
		found, err := b.buildKustomization(ctx, ks, ks.Ref == rootRef)
		if err != nil {
			return err
		}
		for _, o := range found {
			if _, ok := o.Typed.(*kustomizev1.Kustomization); ok {
				queue = append(queue, o)
			}
		}
	}
	return nil
}

// buildKustomization builds what one Flux Kustomization applies and records
// the objects. It returns the objects added.
func (b *builder) buildKustomization(ctx context.Context, ksObj *Object, isRoot bool) ([]*Object, error) {
	ks := ksObj.Typed.(*kustomizev1.Kustomization)
	src := ObjectRef{Kind: ks.Spec.SourceRef.Kind, Namespace: ks.Spec.SourceRef.Namespace, Name: ks.Spec.SourceRef.Name}
	if src.Namespace == "" {
		src.Namespace = ks.Namespace
	}
	if src != BootstrapSource() {
		// Another repository or artifact: nothing to build offline. The
		// graph check still verifies that the source is defined.
		ksObj.External = true
		return nil, nil
	}

	relPath := filepath.ToSlash(filepath.Clean("/" + ks.Spec.Path))[1:]
	if relPath == "" {
		relPath = "."
	}
	dir := filepath.Join(b.root, filepath.FromSlash(relPath))
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		b.finding(ksObj.File, ksObj.Ref, "spec.path %q does not exist in the repository (kustomize-controller: kustomization path not found)", ks.Spec.Path)
		return nil, nil
	}

	resources, buildErr := b.kustomizeBuild(ks, dir, isRoot)
	if buildErr != nil {
		file, reason := explainBuildError(b.root, relPath, buildErr)
		b.finding(file, ksObj.Ref, "%s", reason)
		return nil, nil
	}
	b.checkPatchTargets(ks, ksObj, dir, relPath, resources)

	var added []*Object
	for _, res := range resources.Resources() {
		var unset []string
		if ks.Spec.PostBuild != nil {
			out, vars, err := b.substitute(ctx, ks, res)
			if err != nil {
				b.finding(originFile(res, relPath), ksObj.Ref, "post-build substitution of %s/%s: %v", res.GetKind(), res.GetName(), err)
				continue
			}
			if out == nil { // substitution disabled on this object
				out = res
			}
			res, unset = out, vars
		}
		o, ok := b.toObject(res, relPath, ksObj.Ref)
		if !ok {
			continue
		}
		o.unsetVars = unset
		if b.add(o) {
			added = append(added, o)
		}
	}
	return added, nil
}

// kustomizeBuild generates the kustomization.yaml the controller would use
// (its own file, or one listing every manifest of the dir, plus the Flux
// Kustomization's targetNamespace/patches/images/...), keeps it in memory so
// the working tree is never written, and runs kustomize on it.
func (b *builder) kustomizeBuild(ks *kustomizev1.Kustomization, dir string, isRoot bool) (resmap.ResMap, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ks)
	if err != nil {
		return nil, fmt.Errorf("converting Kustomization %s/%s: %w", ks.Namespace, ks.Name, err)
	}
	// Like the controller, honour .sourceignore files (NewGeneratorWithIgnore).
	ignore := ""
	if isRoot {
		// The harness's GitRepository ignores <path>/flux-system, and
		// bootstrap's gotk-components.yaml is not in this repository.
		ignore = "/" + bootstrapDir + "/\n"
	}
	gen := fluxkustomize.NewGeneratorWithIgnore(b.root, ignore, unstructured.Unstructured{Object: u})
	manifest, kfile, _, err := gen.GenerateManifest(dir)
	if err != nil {
		return nil, err
	}
	// Origin annotations let findings name the file each object came from.
	var kus kustypes.Kustomization
	if err := yaml.Unmarshal(manifest, &kus); err != nil {
		return nil, err
	}
	if !slices.Contains(kus.BuildMetadata, kustypes.OriginAnnotations) {
		kus.BuildMetadata = append(kus.BuildMetadata, kustypes.OriginAnnotations)
	}
	if manifest, err = yaml.Marshal(kus); err != nil {
		return nil, err
	}
	disk, err := securefs.MakeFsOnDiskSecure(b.root)
	if err != nil {
		return nil, err
	}
	fs := securefs.MakeFsInMemory(disk)
	if err := fs.WriteFile(kfile, manifest); err != nil {
		return nil, err
	}
	return fluxkustomize.Build(fs, dir)
}

// maxUnsetVars bounds the strict re-runs of one resource's substitution.
const maxUnsetVars = 100

// substitute applies spec.postBuild like the controller: inline variables
// plus substituteFrom ConfigMaps/Secrets when the fleet itself defines them
// (those created out of band cannot be known offline and are left out). It
// also returns the variables used without a value or default, which strict
// substitution refuses, when every substituteFrom source was in the fleet.
func (b *builder) substitute(ctx context.Context, ks *kustomizev1.Kustomization, res *resource.Resource) (*resource.Resource, []string, error) {
	vars, complete := b.postBuildVars(ks)
	run := func(strict bool) (*resource.Resource, error) {
		clone := ks.DeepCopy()
		clone.Spec.PostBuild.Substitute = vars
		clone.Spec.PostBuild.SubstituteFrom = nil
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(clone)
		if err != nil {
			return nil, err
		}
		return fluxkustomize.SubstituteVariables(ctx, nil, unstructured.Unstructured{Object: u}, res,
			fluxkustomize.SubstituteWithDryRun(true),
			fluxkustomize.SubstituteWithStrict(strict),
			fluxkustomize.SubstituteWithAlways(ks.GetSubstituteStrategy() == kustomizev1.SubstituteStrategyAlways))
	}
	if !complete {
		out, err := run(false)
		return out, nil, err
	}
	// The strict run stops at the first unset variable: give it an empty
	// value (what lenient substitution uses) and run again, to name them all.
	var unset []string
	for {
		out, err := run(true)
		name, isUnset := unsetVariable(err)
		switch {
		case !isUnset:
			return out, unset, err
		case len(unset) == maxUnsetVars || slices.Contains(unset, name):
			return nil, unset, fmt.Errorf("naming the unset variables: %w", err)
		}
		unset = append(unset, name)
		vars[name] = ""
	}
}

// postBuildVars gathers the variables of ks's spec.postBuild; complete is
// false when a substituteFrom source is not an object of the fleet.
func (b *builder) postBuildVars(ks *kustomizev1.Kustomization) (vars map[string]string, complete bool) {
	vars, complete = map[string]string{}, true
	for _, ref := range ks.Spec.PostBuild.SubstituteFrom {
		o := b.env.index[ObjectRef{Kind: ref.Kind, Namespace: ks.Namespace, Name: ref.Name}]
		if o == nil {
			complete = false
			continue
		}
		maps.Copy(vars, configData(o))
	}
	maps.Copy(vars, ks.Spec.PostBuild.Substitute)
	return vars, complete
}

// unsetVarRe matches the error of fluxcd/pkg/envsubst for a variable that
// strict mode finds without a value or default (template.go errVarNotSet).
var unsetVarRe = regexp.MustCompile(`variable not set \(strict mode\): "([^"]+)"`)

func unsetVariable(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	m := unsetVarRe.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	return m[1], true
}

// toObject turns one built resource into an Object, decoding Flux kinds
// strictly. Problems become findings and the object is dropped.
func (b *builder) toObject(res *resource.Resource, relPath string, owner ObjectRef) (*Object, bool) {
	file := originFile(res, relPath)
	ref := ObjectRef{Kind: res.GetKind(), Namespace: res.GetNamespace(), Name: res.GetName()}
	if err := stripOrigin(res); err != nil {
		b.finding(file, ref, "reading annotations: %v", err)
		return nil, false
	}
	data, err := res.MarshalJSON()
	if err != nil {
		b.finding(file, ref, "encoding object: %v", err)
		return nil, false
	}
	raw := map[string]any{}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		b.finding(file, ref, "decoding object: %v", err)
		return nil, false
	}
	apiVersion := res.GetApiVersion()
	switch {
	case apiVersion == "":
		b.finding(file, ref, "apiVersion is missing")
		return nil, false
	case ref.Kind == "":
		b.finding(file, ref, "kind is missing")
		return nil, false
	case ref.Name == "":
		b.finding(file, ref, "metadata.name is missing")
		return nil, false
	}
	typed, err := decodeFlux(apiVersion, ref.Kind, data)
	if err != nil {
		b.finding(file, ref, "%v", err)
		return nil, false
	}
	return &Object{Ref: ref, APIVersion: apiVersion, File: file, Owner: owner, Typed: typed, Raw: raw}, true
}

// checkPatchTargets reports patches whose target selector matches nothing:
// kustomize silently skips them, so the environment would quietly run the
// base values.
func (b *builder) checkPatchTargets(ks *kustomizev1.Kustomization, ksObj *Object, dir, relPath string, built resmap.ResMap) {
	for i, p := range ks.Spec.Patches {
		if p.Target == nil {
			continue
		}
		sel := kustypes.Selector{
			ResId:              selectorResID(p.Target.Group, p.Target.Version, p.Target.Kind, p.Target.Name, p.Target.Namespace),
			LabelSelector:      p.Target.LabelSelector,
			AnnotationSelector: p.Target.AnnotationSelector,
		}
		if matched, err := built.Select(sel); err == nil && len(matched) == 0 {
			b.finding(ksObj.File, ksObj.Ref, "spec.patches[%d] targets %s, which matches no object of the build", i, describeSelector(sel))
		}
	}
	// Kustomization files of every local directory the build reaches.
	seen := map[string]bool{}
	var walk func(d string)
	walk = func(d string) {
		if seen[d] {
			return
		}
		seen[d] = true
		kfile, kus, ok := readKustomization(d)
		if !ok {
			return
		}
		var targeted bool
		for _, p := range kus.Patches {
			targeted = targeted || p.Target != nil
		}
		if targeted {
			b.checkDirPatches(ksObj, d, kfile, kus, dir, built)
		}
		for _, r := range append(append([]string{}, kus.Resources...), kus.Components...) {
			sub := filepath.Join(d, r)
			if fi, err := os.Stat(sub); err == nil && fi.IsDir() && strings.HasPrefix(sub, b.root) {
				walk(sub)
			}
		}
	}
	walk(dir)
}

func (b *builder) checkDirPatches(ksObj *Object, d, kfile string, kus *kustypes.Kustomization, top string, topBuilt resmap.ResMap) {
	built := topBuilt
	if d != top {
		disk, err := securefs.MakeFsOnDiskSecure(b.root)
		if err != nil {
			return
		}
		if built, err = fluxkustomize.Build(disk, d); err != nil {
			return // the top-level build would have failed and said why
		}
	}
	for i, p := range kus.Patches {
		if p.Target == nil {
			continue
		}
		matched, err := built.Select(*p.Target)
		if err != nil || len(matched) > 0 {
			continue
		}
		file := kfile
		if p.Path != "" {
			file = filepath.Join(d, p.Path)
		}
		b.finding(b.rel(file), ksObj.Ref, "patch #%d of %s targets %s, which matches no resource of that kustomization: the patch is silently skipped",
			i+1, b.rel(kfile), describeSelector(*p.Target))
	}
}

func (b *builder) rel(p string) string {
	r, err := filepath.Rel(b.root, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}

func readKustomization(dir string) (string, *kustypes.Kustomization, bool) {
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		kus := &kustypes.Kustomization{}
		if err := yaml.Unmarshal(data, kus); err != nil {
			return "", nil, false
		}
		return p, kus, true
	}
	return "", nil, false
}

func describeSelector(s kustypes.Selector) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("kind", s.Kind)
	add("name", s.Name)
	add("namespace", s.Namespace)
	add("group", s.Group)
	add("version", s.Version)
	add("labelSelector", s.LabelSelector)
	add("annotationSelector", s.AnnotationSelector)
	return "{" + strings.Join(parts, " ") + "}"
}

// originFile maps a built resource back to the file it was declared in,
// relative to the fleet directory.
func originFile(res *resource.Resource, relPath string) string {
	var origin struct {
		Path string `json:"path"`
		Repo string `json:"repo"`
	}
	if v, ok := res.GetAnnotations()[originKey]; ok {
		if err := yaml.Unmarshal([]byte(v), &origin); err == nil && origin.Path != "" && origin.Repo == "" {
			return filepath.ToSlash(filepath.Clean(filepath.Join(relPath, origin.Path)))
		}
	}
	return relPath
}

func stripOrigin(res *resource.Resource) error {
	ann := res.GetAnnotations()
	if _, ok := ann[originKey]; !ok {
		return nil
	}
	delete(ann, originKey)
	return res.SetAnnotations(ann)
}

// configData returns the string data of a ConfigMap or Secret.
func configData(o *Object) map[string]string {
	out := map[string]string{}
	for _, field := range []string{"data", "stringData"} {
		m, _, _ := unstructured.NestedStringMap(o.Raw, field)
		if o.Ref.Kind == "Secret" && field == "data" {
			for k, v := range m {
				if dec, err := base64.StdEncoding.DecodeString(v); err == nil {
					out[k] = string(dec)
				}
			}
			continue
		}
		maps.Copy(out, m)
	}
	return out
}

var (
	fromRe  = regexp.MustCompile(`from '([^']+)'`)
	idRe    = regexp.MustCompile(`no matches for Id ([A-Za-z0-9]+)\.[^ /]*?/([^ .\[\]"]+)\.([^ \[\];"]*)`)
	yamlRe  = regexp.MustCompile(`yaml: (line \d+: .*?)(?: in File: .*)?$`)
	spaceRe = regexp.MustCompile(`\s+`)
)

// explainBuildError turns a kustomize build error into the file most likely
// responsible and a reason that leads with what to fix.
func explainBuildError(root, relPath string, err error) (string, string) {
	msg := spaceRe.ReplaceAllString(err.Error(), " ")
	file := relPath
	// Errors from nested accumulation name each hop relative to the last.
	cur := filepath.Join(root, relPath)
	for _, m := range fromRe.FindAllStringSubmatch(msg, -1) {
		p := m[1]
		if !filepath.IsAbs(p) {
			p = filepath.Join(cur, p)
		}
		if r, e := filepath.Rel(root, p); e == nil && !strings.HasPrefix(r, "..") {
			file = filepath.ToSlash(r)
		}
		if fi, e := os.Stat(p); e == nil && fi.IsDir() {
			cur = p
		} else {
			cur = filepath.Dir(p)
		}
	}
	// The generator names files by absolute path; so may kustomize.
	rootPrefix := root + string(filepath.Separator)
	if i := strings.LastIndex(msg, rootPrefix); i >= 0 {
		p := msg[i:]
		if j := strings.IndexAny(p, " :'\""); j >= 0 {
			p = p[:j]
		}
		if fi, e := os.Stat(p); e == nil && !fi.IsDir() {
			file = filepath.ToSlash(strings.TrimPrefix(p, rootPrefix))
		}
	}
	// Machine paths mean nothing to the reader: make them fleet-relative.
	msg = strings.ReplaceAll(msg, rootPrefix, "")

	switch {
	case strings.Contains(msg, "no matches for Id"):
		target := "an object"
		if m := idRe.FindStringSubmatch(msg); m != nil {
			target = fmt.Sprintf("%s %s/%s", m[1], m[3], m[2])
			if m[3] == "[noNs]" || m[3] == "" {
				target = fmt.Sprintf("%s %s", m[1], m[2])
			}
			msg = m[0]
		}
		if f := findPatchFile(root, file); f != "" {
			file = f
		}
		return file, fmt.Sprintf("patch targets %s, which no resource of this build defines (kustomize: %s)", target, msg)
	case strings.Contains(msg, "missing metadata.name") || strings.Contains(msg, "missing Resource metadata"):
		return file, "an object has no metadata.name: " + msg
	case strings.Contains(msg, "yaml: line") || strings.Contains(msg, "MalformedYAMLError"):
		if m := yamlRe.FindStringSubmatch(msg); m != nil {
			return file, "invalid YAML: " + m[1]
		}
		return file, "invalid YAML: " + msg
	case strings.Contains(msg, "no such file or directory"):
		return file, "missing file: " + msg
	}
	return file, "kustomize build failed: " + msg
}

// findPatchFile picks the patch file of the kustomization in dir (or in the
// dir of file) when there is exactly one file-based patch; else "".
func findPatchFile(root, rel string) string {
	dir := filepath.Join(root, filepath.FromSlash(rel))
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	kfile, kus, ok := readKustomization(dir)
	if !ok {
		return ""
	}
	var files []string
	for _, p := range kus.Patches {
		if p.Path != "" {
			files = append(files, p.Path)
		}
	}
	for _, p := range kus.PatchesStrategicMerge {
		if s := string(p); !strings.Contains(s, "\n") {
			files = append(files, s)
		}
	}
	r, _ := filepath.Rel(root, kfile)
	if len(files) != 1 {
		return filepath.ToSlash(r)
	}
	r, _ = filepath.Rel(root, filepath.Join(dir, files[0]))
	return filepath.ToSlash(r)
}

func selectorResID(group, version, kind, name, namespace string) resid.ResId {
	return resid.ResId{Gvk: resid.Gvk{Group: group, Version: version, Kind: kind}, Name: name, Namespace: namespace}
}
