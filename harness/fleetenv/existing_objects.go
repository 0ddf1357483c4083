package fleetenv

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// fleetObjectsCheckTimeout bounds looking up the fleet's objects on one
// cluster the harness did not create.
const fleetObjectsCheckTimeout = time.Minute

// appliedByLabel and appliedByNamespaceLabel are the labels
// kustomize-controller puts on every object it applies, naming the
// Kustomization (kustomize-controller v1.9.5 internal/controller: "%s/name"
// and "%s/namespace" of kustomizev1.GroupVersion.Group). A Flux that is gone
// (flux uninstall keeps what it applied) leaves them behind, so they prove
// the harness applied an object only where the harness's own Flux is
// installed and the label names a Kustomization of the fleet.
var (
	appliedByLabel          = kustomizev1.GroupVersion.Group + "/name"
	appliedByNamespaceLabel = kustomizev1.GroupVersion.Group + "/namespace"
)

// checkFleetObjectsFree refuses a cluster the harness did not create when
// it already holds an object the fleet declares for e (declared, from
// declaredByEnv) that no Flux of the harness applied: the sync would take
// it over (server-side apply adopts it) and the teardown, which deletes
// what the fleet applied, would delete it. harnessFlux reports a Flux an
// earlier run of the harness installed (cluster.CheckOptIn); without one,
// nothing there is the harness's. Nothing is changed.
func checkFleetObjectsFree(ctx context.Context, e *Environment, declared []*validate.Object, harnessFlux bool) error {
	ctx, cancel := context.WithTimeoutCause(ctx, fleetObjectsCheckTimeout,
		fmt.Errorf("%s: looking up the fleet's objects on context %s took longer than %s", e.Name, e.Cluster.Context, fleetObjectsCheckTimeout))
	defer cancel()
	ours := fleetKustomizations(declared, harnessFlux)
	var taken []string
	for _, o := range declared {
		there, err := presentUnapplied(ctx, e, o, ours)
		if err != nil {
			return fmt.Errorf("%s: looking up %s on context %s: %w", e.Name, o.Ref, e.Cluster.Context, err)
		}
		if there && !slices.Contains(taken, o.Ref.String()) {
			taken = append(taken, o.Ref.String())
		}
	}
	if len(taken) == 0 {
		return nil
	}
	return &cluster.RefusedError{
		Cluster: e.Cluster.Context, Server: e.Cluster.RESTConfig.Host,
		Reason: fmt.Sprintf("it already holds %s, which the fleet declares for %s and no run of the harness applied: "+
			"the sync would take it over and the teardown delete it", strings.Join(taken, ", "), e.Name),
		Fix: "remove or rename it on the cluster, or use a cluster without it",
	}
}

// declaredByEnv is, per environment, what the trees the run serves declare,
// as the offline checks build them; the bootstrap's own objects
// (flux-system and the sync) are the harness's and left out.
func declaredByEnv(ctx context.Context, trees []fleetTree) (map[string][]*validate.Object, error) {
	out := map[string][]*validate.Object{}
	for _, t := range trees {
		res, err := validate.Validate(ctx, t.Dir)
		if err != nil {
			return nil, fmt.Errorf("building the fleet (%s) to look for its objects on the clusters: %w", t.Label, err)
		}
		for _, e := range res.Envs {
			for _, o := range e.Objects {
				if !o.Implicit && !o.External {
					out[e.Name] = append(out[e.Name], o)
				}
			}
		}
	}
	return out, nil
}

// fleetKustomizations are the Kustomizations ("namespace/name") whose
// applied-by labels mark an object as the harness's: the fleet's and the
// sync's, and none when the harness's own Flux is not installed.
func fleetKustomizations(declared []*validate.Object, harnessFlux bool) map[string]bool {
	if !harnessFlux {
		return nil
	}
	sync := fluxobj.SyncKustomization()
	ours := map[string]bool{sync.Namespace + "/" + sync.Name: true}
	for _, o := range declared {
		if o.Ref.Kind == kustomizev1.KustomizationKind {
			ours[o.Ref.Namespace+"/"+o.Ref.Name] = true
		}
	}
	return ours
}

// presentUnapplied reports whether o exists on e's cluster without labels
// naming one of the Kustomizations ours as what applied it; a kind the
// cluster does not serve holds nothing.
func presentUnapplied(ctx context.Context, e *Environment, o *validate.Object, ours map[string]bool) (bool, error) {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return false, err
	}
	mapping, err := e.Clients.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: o.Ref.Kind}, gv.Version)
	if apimeta.IsNoMatchError(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	res := e.Clients.Metadata.Resource(mapping.Resource)
	get := res.Get
	if mapping.Scope.Name() == apimeta.RESTScopeNameNamespace {
		ns := o.Ref.Namespace
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		get = res.Namespace(ns).Get
	}
	got, err := get(ctx, o.Ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	labels := got.GetLabels()
	return !ours[labels[appliedByNamespaceLabel]+"/"+labels[appliedByLabel]], nil
}
