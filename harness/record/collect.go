package record

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// Options are the choices of CollectWith.
type Options struct {
	// RawValues writes HelmRelease values and post-build substitutions as
	// they are instead of their digests. Records are uploaded as artifacts
	// and values commonly hold passwords: set it only on request.
	RawValues bool
}

// Collect is CollectWith with the default Options: values and substitutions
// recorded by their digests only.
func Collect(ctx context.Context, c *fluxobj.Clients, env string, fleet Fleet) (*Record, error) {
	return CollectWith(ctx, c, env, fleet, Options{})
}

// CollectWith reads what env runs now: every Kustomization's inventory (with
// a digest of each object) and post-build substitutions, every HelmRelease's
// latest release and values, and the images of every workload outside the
// kind node's own namespaces. fleet is the revision served, which only the
// harness knows. Parts that cannot be read are left out and named in the
// error, next to the record of the rest.
func CollectWith(ctx context.Context, c *fluxobj.Clients, env string, fleet Fleet, opts Options) (*Record, error) {
	r := &Record{Format: Format, Env: env, Time: time.Now().UTC().Truncate(time.Second), Fleet: fleet,
		Kustomizations: []Kustomization{}, HelmReleases: []HelmRelease{}, Workloads: []Workload{}, RawValues: opts.RawValues}
	var errs []error
	var err error
	if r.Kustomizations, err = kustomizations(ctx, c, opts); err != nil {
		errs = append(errs, err)
	}
	if r.HelmReleases, err = helmReleases(ctx, c, opts); err != nil {
		errs = append(errs, err)
	}
	if r.Workloads, err = workloads(ctx, c); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("recording %s: %w", env, err)
	}
	return r, nil
}

// listFlux lists every object of a Flux kind; a kind whose CRD is not
// installed has none.
func listFlux(ctx context.Context, c *fluxobj.Clients, kind string) ([]unstructured.Unstructured, error) {
	k, ok := fluxobj.KindOf(kind)
	if !ok {
		return nil, fmt.Errorf("unknown Flux kind %s", kind)
	}
	list, err := c.Dynamic.Resource(k.GVR()).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %ss: %w", kind, err)
	}
	return list.Items, nil
}

func kustomizations(ctx context.Context, c *fluxobj.Clients, opts Options) ([]Kustomization, error) {
	items, err := listFlux(ctx, c, "Kustomization")
	if err != nil {
		return []Kustomization{}, err
	}
	out := []Kustomization{}
	var errs []error
	for i := range items {
		u := &items[i]
		k := Kustomization{Ref: fluxobj.RefOf(u).String(), Objects: []Object{}}
		k.AppliedRevision, _, _ = unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
		k.AttemptedRevision, _, _ = unstructured.NestedString(u.Object, "status", "lastAttemptedRevision")
		subst, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "postBuild", "substitute")
		k.Substitute = Values(subst, opts.RawValues)
		refs, err := fluxobj.Inventory(u)
		if err != nil {
			errs = append(errs, err)
		}
		for _, ref := range refs {
			obj, err := get(ctx, c, ref)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k.Ref, err))
			}
			o := Object{Ref: ref.String(), Group: ref.Group}
			if obj != nil {
				o.Digest = ObjectDigest(obj)
			}
			k.Objects = append(k.Objects, o)
		}
		slices.SortFunc(k.Objects, func(a, b Object) int { return strings.Compare(a.Ref, b.Ref) })
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Kustomization) int { return strings.Compare(a.Ref, b.Ref) })
	return out, errors.Join(errs...)
}

// get reads an inventory object; nil without error when it does not exist.
func get(ctx context.Context, c *fluxobj.Clients, ref fluxobj.ObjectRef) (*unstructured.Unstructured, error) {
	var versions []string
	if ref.Version != "" {
		versions = []string{ref.Version}
	}
	mapping, err := c.Mapper.RESTMapping(ref.GroupKind(), versions...)
	if apimeta.IsNoMatchError(err) {
		// A CRD the Kustomization itself installed after discovery was cached.
		c.ResetMapper()
		mapping, err = c.Mapper.RESTMapping(ref.GroupKind(), versions...)
	}
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", ref, err)
	}
	ns := ref.Namespace
	if mapping.Scope.Name() != apimeta.RESTScopeNameNamespace {
		ns = ""
	}
	u, err := c.Dynamic.Resource(mapping.Resource).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	return u, nil
}

// volatileAnnotations are written by controllers and clients, not by the
// fleet: a change in them is not a change the upgrade made.
var volatileAnnotations = []string{
	"reconcile.fluxcd.io/",                             // the harness's and flux's reconcile requests
	"deployment.kubernetes.io/",                        // the Deployment controller's revision
	"kubectl.kubernetes.io/last-applied-configuration", // client-side apply
}

// ObjectDigest is a sha256 of what the fleet declares of an object: labels,
// annotations other than controllers' bookkeeping, and every top-level field
// but metadata and status. A Secret contributes its type and key names only:
// the record is an artifact, and a digest of a low-entropy value could be
// guessed back.
func ObjectDigest(u *unstructured.Unstructured) string {
	obj := map[string]any{}
	for k, v := range u.Object {
		if k != "metadata" && k != "status" {
			obj[k] = v
		}
	}
	md := map[string]any{}
	if l := u.GetLabels(); len(l) > 0 {
		md["labels"] = l
	}
	ann := map[string]string{}
	for k, v := range u.GetAnnotations() {
		if !slices.ContainsFunc(volatileAnnotations, func(p string) bool { return strings.HasPrefix(k, p) }) {
			ann[k] = v
		}
	}
	if len(ann) > 0 {
		md["annotations"] = ann
	}
	obj["metadata"] = md
	if u.GetKind() == "Secret" && u.GroupVersionKind().Group == "" {
		for _, field := range []string{"data", "stringData"} {
			if m, ok := obj[field].(map[string]any); ok {
				keys := make(map[string]any, len(m))
				for k := range m {
					keys[k] = ""
				}
				obj[field] = keys
			}
		}
	}
	// encoding/json writes map keys sorted: the same object, the same bytes.
	data, err := json.Marshal(obj)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func helmReleases(ctx context.Context, c *fluxobj.Clients, opts Options) ([]HelmRelease, error) {
	items, err := listFlux(ctx, c, helmv2.HelmReleaseKind)
	if err != nil {
		return []HelmRelease{}, err
	}
	charts, err := listFlux(ctx, c, "HelmChart")
	if err != nil {
		return []HelmRelease{}, err
	}
	chartDigests := map[string]string{}
	for i := range charts {
		d, _, _ := unstructured.NestedString(charts[i].Object, "status", "artifact", "digest")
		chartDigests[charts[i].GetNamespace()+"/"+charts[i].GetName()] = d
	}
	out := []HelmRelease{}
	var errs []error
	for i := range items {
		hr, err := helmReleaseOf(&items[i], chartDigests, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, hr)
	}
	slices.SortFunc(out, func(a, b HelmRelease) int { return strings.Compare(a.Ref, b.Ref) })
	return out, errors.Join(errs...)
}

// HelmReleaseOf reads the latest release of a HelmRelease from its status
// (status.history, else the last attempted chart version), and the digests
// of its spec.values. chartDigests maps "<ns>/<name>" of HelmCharts to their
// artifact digest, for releases whose chart came from a HelmRepository.
func HelmReleaseOf(u *unstructured.Unstructured, chartDigests map[string]string) (HelmRelease, error) {
	return helmReleaseOf(u, chartDigests, Options{})
}

func helmReleaseOf(u *unstructured.Unstructured, chartDigests map[string]string, opts Options) (HelmRelease, error) {
	ref := fluxobj.RefOf(u).String()
	var obj helmv2.HelmRelease
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &obj); err != nil {
		return HelmRelease{Ref: ref}, fmt.Errorf("%s: decoding: %w", ref, err)
	}
	st := obj.Status
	// Read as the API server returned them: the typed object holds the
	// values as raw JSON bytes.
	values, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "values")
	hr := HelmRelease{Ref: ref, Version: st.LastAttemptedRevision, ChartDigest: st.LastAttemptedRevisionDigest, ConfigDigest: st.LastAttemptedConfigDigest,
		Values: Values(values, opts.RawValues)}
	if latest := st.History.Latest(); latest != nil {
		hr.Chart, hr.Version, hr.AppVersion = latest.ChartName, latest.ChartVersion, latest.AppVersion
		hr.ConfigDigest, hr.Release, hr.Status = latest.ConfigDigest, latest.Version, latest.Status
		if latest.OCIDigest != "" {
			hr.ChartDigest = latest.OCIDigest
		}
	}
	if hr.ChartDigest == "" && st.HelmChart != "" {
		hr.ChartDigest = chartDigests[st.HelmChart]
	}
	if hr.Chart == "" && obj.Spec.Chart != nil {
		hr.Chart = obj.Spec.Chart.Spec.Chart
	}
	return hr, nil
}

func workloads(ctx context.Context, c *fluxobj.Clients) ([]Workload, error) {
	apps := c.Kube.AppsV1()
	deploys, err := apps.Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []Workload{}, fmt.Errorf("listing Deployments: %w", err)
	}
	sets, err := apps.StatefulSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []Workload{}, fmt.Errorf("listing StatefulSets: %w", err)
	}
	daemons, err := apps.DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []Workload{}, fmt.Errorf("listing DaemonSets: %w", err)
	}
	rss, err := apps.ReplicaSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []Workload{}, fmt.Errorf("listing ReplicaSets: %w", err)
	}
	pods, err := c.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []Workload{}, fmt.Errorf("listing Pods: %w", err)
	}
	return Workloads(deploys.Items, sets.Items, daemons.Items, rss.Items, pods.Items), nil
}

// Workloads joins workloads with their running pods (a Deployment's through
// its ReplicaSets): each container's template image and the image digests
// its pods run. Pods without a workload are listed as Pod/<ns>/<name>; the
// kind node's own namespaces are left out.
func Workloads(deploys []appsv1.Deployment, sets []appsv1.StatefulSet, daemons []appsv1.DaemonSet, rss []appsv1.ReplicaSet, pods []corev1.Pod) []Workload {
	byRef := map[string]*Workload{}
	add := func(kind, ns, name string, spec corev1.PodSpec) {
		if fluxobj.IsSystemNamespace(ns) {
			return
		}
		w := &Workload{Ref: kind + "/" + ns + "/" + name, Containers: []Container{}}
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			w.Containers = append(w.Containers, Container{Name: c.Name, Image: c.Image})
		}
		byRef[w.Ref] = w
	}
	for _, d := range deploys {
		add("Deployment", d.Namespace, d.Name, d.Spec.Template.Spec)
	}
	for _, s := range sets {
		add("StatefulSet", s.Namespace, s.Name, s.Spec.Template.Spec)
	}
	for _, d := range daemons {
		add("DaemonSet", d.Namespace, d.Name, d.Spec.Template.Spec)
	}
	rsOwner := map[string]string{} // ns/rs → Deployment/ns/name
	for _, rs := range rss {
		if o := metav1.GetControllerOf(&rs); o != nil && o.Kind == "Deployment" {
			rsOwner[rs.Namespace+"/"+rs.Name] = "Deployment/" + rs.Namespace + "/" + o.Name
		}
	}
	for i := range pods {
		p := &pods[i]
		if fluxobj.IsSystemNamespace(p.Namespace) {
			continue
		}
		owner := ""
		if o := metav1.GetControllerOf(p); o != nil {
			switch o.Kind {
			case "ReplicaSet":
				owner = rsOwner[p.Namespace+"/"+o.Name]
			case "StatefulSet", "DaemonSet":
				owner = o.Kind + "/" + p.Namespace + "/" + o.Name
			}
		}
		w := byRef[owner]
		if w == nil {
			add("Pod", p.Namespace, p.Name, p.Spec)
			w = byRef["Pod/"+p.Namespace+"/"+p.Name]
		}
		for _, cs := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
			if cs.ImageID == "" {
				continue
			}
			j := slices.IndexFunc(w.Containers, func(c Container) bool { return c.Name == cs.Name })
			if j < 0 {
				w.Containers = append(w.Containers, Container{Name: cs.Name, Image: cs.Image})
				j = len(w.Containers) - 1
			}
			if !slices.Contains(w.Containers[j].ImageIDs, cs.ImageID) {
				w.Containers[j].ImageIDs = append(w.Containers[j].ImageIDs, cs.ImageID)
				slices.Sort(w.Containers[j].ImageIDs)
			}
		}
	}
	out := make([]Workload, 0, len(byRef))
	for _, w := range byRef {
		out = append(out, *w)
	}
	slices.SortFunc(out, func(a, b Workload) int { return strings.Compare(a.Ref, b.Ref) })
	return out
}
