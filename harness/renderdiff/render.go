package renderdiff

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/preflight"
	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// ref names an object within one environment: Kind, namespace and name.
type ref = validate.ObjectRef

// rendered is one side: every selected environment's objects, and the
// pre-flight's findings on releases that rendered anyway.
type rendered struct {
	envs  map[string]*envObjects
	notes []string
}

// env returns the named environment; an environment the side lacks is empty.
func (r *rendered) env(name string) *envObjects {
	if e, ok := r.envs[name]; ok {
		return e
	}
	return newEnvObjects()
}

// envObjects is what one side applies to one environment.
type envObjects struct {
	objects  map[ref]*object
	releases map[ref]*release
}

func newEnvObjects() *envObjects {
	return &envObjects{objects: map[ref]*object{}, releases: map[ref]*release{}}
}

// object is one object as it would be applied, normalized.
type object struct {
	ref ref
	// owner is the Flux Kustomization or HelmRelease that applies it.
	owner ref
	body  map[string]any
	yaml  string
}

// release is a HelmRelease's resolved chart and its values.
type release struct {
	chart, version, source string
	values                 string
}

// render builds and renders one tree. Its error names the tree's label.
func render(ctx context.Context, tree Tree, opts Options) (*rendered, error) {
	fleet, err := validate.Load(ctx, tree.FleetDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tree.Label, err)
	}
	var envs []*validate.Env
	for _, e := range fleet.Envs {
		if len(opts.Envs) == 0 || slices.Contains(opts.Envs, e.Name) {
			envs = append(envs, e)
		}
	}
	var problems []string
	for _, f := range fleet.Findings {
		if len(opts.Envs) == 0 || slices.Contains(opts.Envs, f.Env) {
			problems = append(problems, "  "+f.String())
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: fleet %s does not build (make validate shows why):\n%s", tree.Label, tree.FleetDir, strings.Join(problems, "\n"))
	}
	out := &rendered{envs: map[string]*envObjects{}}
	for _, e := range envs {
		out.envs[e.Name] = kustomizationObjects(e)
	}
	report, err := renderReleases(ctx, tree, fleet, envs, opts)
	if err != nil || report == nil {
		return out, err
	}
	if err := out.addReleases(tree.Label, fleet, report); err != nil {
		return nil, err
	}
	return out, nil
}

// kustomizationObjects are the objects the environment's Flux
// Kustomizations apply, as the offline tier built them; the bootstrap's
// own objects are the harness's, not the fleet's.
func kustomizationObjects(env *validate.Env) *envObjects {
	out := newEnvObjects()
	for _, o := range env.Objects {
		if o.Implicit || o.Raw == nil {
			continue
		}
		if _, dup := out.objects[o.Ref]; dup {
			continue // the offline tier reports it; the first one wins
		}
		out.objects[o.Ref] = newObject(o.Ref, o.Owner, o.Raw)
	}
	return out
}

// newObject normalizes an object's body and renders its YAML.
func newObject(r, owner ref, raw map[string]any) *object {
	body := normalize(raw)
	return &object{ref: r, owner: owner, body: body, yaml: toYAML(body)}
}

// renderReleases resolves and renders every HelmRelease of the selected
// environments with the pre-flight, its chart server (when the fleet names
// it) serving the tree's chart directories on loopback. Images are not
// looked up: the comparison needs the renders only.
func renderReleases(ctx context.Context, tree Tree, fleet *validate.Fleet, envs []*validate.Env, opts Options) (*preflight.Report, error) {
	var names []string
	hasRelease := false
	for _, e := range envs {
		names = append(names, e.Name)
		hasRelease = hasRelease || slices.ContainsFunc(e.Objects, isHelmRelease)
	}
	if !hasRelease {
		return nil, nil
	}
	pf := preflight.Options{
		FleetDir: tree.FleetDir, Envs: names, KubeVersion: opts.KubeVersion, CacheDir: opts.CacheDir,
		RequestTimeout: opts.RequestTimeout, Timeout: opts.Timeout, SkipImages: true,
	}
	if namesChartServer(envs) {
		srv, err := startChartServer(ctx, tree, opts.TempDir)
		if err != nil {
			return nil, err
		}
		if srv != nil {
			defer srv.Close()
			user, pass := srv.Credentials()
			pf.HostRewrites = map[string]string{chartserver.InClusterHost: srv.Host()}
			pf.Credentials = map[string]preflight.Credential{chartserver.InClusterHost: {Username: user, Password: pass}}
		}
	}
	report, err := preflight.RunFleet(ctx, fleet, pf)
	if err != nil {
		return nil, fmt.Errorf("%s: rendering the HelmReleases of %s: %w", tree.Label, tree.FleetDir, err)
	}
	return report, nil
}

func isHelmRelease(o *validate.Object) bool {
	_, ok := o.Typed.(*helmv2.HelmRelease)
	return ok
}

// namesChartServer reports whether a chart source of the environments
// points at the harness's in-cluster chart server (the fixture fleets).
func namesChartServer(envs []*validate.Env) bool {
	for _, e := range envs {
		for _, o := range e.Objects {
			if o.Ref.Kind != sourcev1.HelmRepositoryKind && o.Ref.Kind != sourcev1.OCIRepositoryKind {
				continue
			}
			spec, _ := o.Raw["spec"].(map[string]any)
			if u, _ := spec["url"].(string); strings.Contains(u, chartserver.InClusterHost) {
				return true
			}
		}
	}
	return false
}

// startChartServer serves the tree's chart directories that exist; nil
// when there are none (the pre-flight then names the unreachable source).
func startChartServer(ctx context.Context, tree Tree, tempDir string) (*chartserver.Server, error) {
	var dirs []string
	for _, d := range tree.ChartDirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return nil, nil
	}
	srv, err := chartserver.Start(ctx, chartserver.Options{Addr: "127.0.0.1", ChartDirs: dirs, TempDir: tempDir})
	if err != nil {
		return nil, fmt.Errorf("%s: serving the charts of %s: %w", tree.Label, strings.Join(dirs, ", "), err)
	}
	return srv, nil
}

// addReleases adds what every HelmRelease installs. A release that did not
// render is an error naming it and why (an unreachable source among them);
// the findings of releases that did render become notes.
func (r *rendered) addReleases(label string, fleet *validate.Fleet, report *preflight.Report) error {
	var problems []string
	for _, f := range report.Findings() {
		if f.Env == "" { // about the whole run: its time bound
			problems = append(problems, "  "+f.Reason)
		}
	}
	for _, er := range report.Envs {
		env, objs := fleet.Env(er.Name), r.envs[er.Name]
		scopes := clusterScopedKinds(objs, er.Releases)
		for _, rel := range er.Releases {
			var reasons []string
			for _, f := range rel.Findings {
				reasons = append(reasons, f.Reason)
			}
			if rel.Objects == nil {
				problems = append(problems, fmt.Sprintf("  %s: %s did not render: %s", er.Name, rel.Object, strings.Join(reasons, "; ")))
				continue
			}
			for _, reason := range reasons {
				r.notes = append(r.notes, fmt.Sprintf("%s: %s: %s: %s", label, er.Name, rel.Object, reason))
			}
			objs.addRelease(env.Object(rel.Object), rel, scopes)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: not every HelmRelease could be rendered:\n%s", label, strings.Join(problems, "\n"))
	}
	return nil
}

// addRelease records a rendered release: its chart, its values and every
// object it installs, namespaced into the release namespace as Helm does
// for objects whose template names none.
func (e *envObjects) addRelease(hrObj *validate.Object, rel *preflight.Release, clusterScoped map[string]bool) {
	hr := hrObj.Typed.(*helmv2.HelmRelease)
	spec, _ := hrObj.Raw["spec"].(map[string]any)
	values := ""
	if v, ok := spec["values"]; ok {
		values = toYAML(v)
	}
	e.releases[rel.Object] = &release{chart: rel.Chart, version: rel.Version, source: rel.Source, values: values}
	for _, u := range rel.Objects {
		obj := u.DeepCopy()
		namespace := obj.GetNamespace()
		switch {
		case clusterScoped[obj.GetKind()]:
			namespace = ""
		case namespace == "":
			namespace = hr.GetReleaseNamespace()
		}
		obj.SetNamespace(namespace)
		r := ref{Kind: obj.GetKind(), Namespace: namespace, Name: obj.GetName()}
		if _, dup := e.objects[r]; !dup {
			e.objects[r] = newObject(r, rel.Object, obj.Object)
		}
	}
}

// builtinClusterScoped lists the cluster-scoped kinds of the Kubernetes
// API a fleet is likely to hold; CRDs add their own.
func builtinClusterScoped() []string {
	return []string{
		"APIService", "CSIDriver", "CSINode", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
		"IngressClass", "MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume", "PriorityClass",
		"RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"ValidatingWebhookConfiguration", "VolumeAttachment",
	}
}

// clusterScopedKinds are the built-in cluster-scoped kinds and those of the
// cluster-scoped CRDs the environment applies or its charts install.
func clusterScopedKinds(env *envObjects, releases []*preflight.Release) map[string]bool {
	out := map[string]bool{}
	for _, k := range builtinClusterScoped() {
		out[k] = true
	}
	addCRD := func(body map[string]any) {
		if body["kind"] != "CustomResourceDefinition" {
			return
		}
		spec, _ := body["spec"].(map[string]any)
		names, _ := spec["names"].(map[string]any)
		if kind, _ := names["kind"].(string); kind != "" && spec["scope"] == "Cluster" {
			out[kind] = true
		}
	}
	for _, o := range env.objects {
		addCRD(o.body)
	}
	for _, rel := range releases {
		for _, u := range rel.Objects {
			addCRD(u.Object)
		}
	}
	return out
}
