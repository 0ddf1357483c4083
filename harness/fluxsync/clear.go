package fluxsync

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// clearPoll is how often Clear looks whether what it deleted is gone.
const clearPoll = 500 * time.Millisecond

// Clear takes the fleet off a synced cluster and keeps the cluster, Flux
// and the sync objects, so that another fleet can be published to the same
// cluster (scenarios that share one cluster). In order: every Kustomization
// is suspended (the sync namespace/name too; Resume undoes that), which
// stops new applies and cancels health checks in flight; every HelmRelease
// is deleted and helm-controller uninstalls it while its namespace still
// exists (an install in flight finishes first); the Kustomizations are
// deleted, suspended, so their finalizers prune nothing; then everything
// their inventories and the sync's list is deleted, namespaces included.
// Clear returns once none of it remains; ctx bounds it, and a timeout
// names what is still there with its finalizers.
func Clear(ctx context.Context, c *fluxobj.Clients, namespace, name string) error {
	ksKind, _ := fluxobj.KindOf(kustomizationGK.Kind)
	hrKind, _ := fluxobj.KindOf(helmv2.HelmReleaseKind)
	kustomizations, err := c.Dynamic.Resource(ksKind.GVR()).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing Kustomizations: %w", err)
	}
	for _, k := range kustomizations.Items {
		if err := setSuspend(ctx, c, k.GetNamespace(), k.GetName(), true); err != nil {
			return err
		}
	}
	if err := deleteEvery(ctx, c, hrKind); err != nil {
		return err
	}

	// Suspended, the Kustomizations applied nothing since: their
	// inventories are what is left to delete.
	kustomizations, err = c.Dynamic.Resource(ksKind.GVR()).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing Kustomizations: %w", err)
	}
	var children, applied []fluxobj.ObjectRef
	for i := range kustomizations.Items {
		k := &kustomizations.Items[i]
		inv, err := fluxobj.Inventory(k)
		if err != nil {
			return err
		}
		applied = append(applied, inv...)
		if k.GetNamespace() != namespace || k.GetName() != name {
			children = append(children, fluxobj.RefOf(k))
		}
	}
	if err := deleteAll(ctx, c, children); err != nil {
		return err
	}
	if err := waitGone(ctx, c, children); err != nil {
		return fmt.Errorf("clearing the fleet: %w", err)
	}
	// A HelmRelease an apply in flight created after the first round.
	if err := deleteEvery(ctx, c, hrKind); err != nil {
		return err
	}

	var rest []fluxobj.ObjectRef
	for _, r := range applied {
		if keep(r, namespace, name) || slices.Contains(rest, r) || slices.Contains(children, r) || r.Kind == helmv2.HelmReleaseKind {
			continue
		}
		rest = append(rest, r)
	}
	if err := deleteAll(ctx, c, rest); err != nil {
		return err
	}
	if err := waitGone(ctx, c, rest); err != nil {
		return fmt.Errorf("clearing the fleet: %w", err)
	}
	return nil
}

// deleteEvery deletes every object of a Flux kind in the cluster and waits
// until their finalizers have run.
func deleteEvery(ctx context.Context, c *fluxobj.Clients, k fluxobj.Kind) error {
	list, err := c.Dynamic.Resource(k.GVR()).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing %s: %w", k.Resource, err)
	}
	var refs []fluxobj.ObjectRef
	for i := range list.Items {
		refs = append(refs, fluxobj.RefOf(&list.Items[i]))
	}
	if err := deleteAll(ctx, c, refs); err != nil {
		return err
	}
	if err := waitGone(ctx, c, refs); err != nil {
		return fmt.Errorf("clearing the fleet: %w", err)
	}
	return nil
}

// Resume lifts the suspension Clear leaves on the sync Kustomization.
func Resume(ctx context.Context, c *fluxobj.Clients, namespace, name string) error {
	return setSuspend(ctx, c, namespace, name, false)
}

func setSuspend(ctx context.Context, c *fluxobj.Clients, namespace, name string, suspend bool) error {
	k, _ := fluxobj.KindOf(kustomizationGK.Kind)
	patch := fmt.Appendf(nil, `{"spec":{"suspend":%t}}`, suspend)
	_, err := c.Dynamic.Resource(k.GVR()).Namespace(namespace).Patch(ctx, name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: fluxobj.FieldManager})
	if err != nil {
		return fmt.Errorf("setting suspend=%t on Kustomization %s/%s: %w", suspend, namespace, name, err)
	}
	return nil
}

// keep reports whether an object the sync applied belongs to the sync
// itself: Flux's namespace and the sync's own source.
func keep(r fluxobj.ObjectRef, namespace, name string) bool {
	if r.Kind == "Namespace" && r.Group == "" && r.Name == namespace {
		return true
	}
	return r.Namespace == namespace && r.Name == name && (r.GroupKind() == gitRepositoryGK || r.GroupKind() == kustomizationGK)
}

// deleteAll deletes refs with the environment's ssa manager (background
// propagation; those already gone are fine).
func deleteAll(ctx context.Context, c *fluxobj.Clients, refs []fluxobj.ObjectRef) error {
	if _, err := c.Resources.DeleteAll(ctx, stubsOf(refs), ssa.DefaultDeleteOptions()); err != nil {
		return fmt.Errorf("deleting the fleet's objects: %w", err)
	}
	return nil
}

// waitGone waits until none of refs exists; when ctx ends first the error
// lists those left with their finalizers. (ssa's WaitForTermination would
// not end at ctx, only at its own timeout.)
func waitGone(ctx context.Context, c *fluxobj.Clients, refs []fluxobj.ObjectRef) error {
	spec := poll.Every(clearPoll).For(fmt.Sprintf("%d deleted object(s) to be gone", len(refs)))
	return poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		var left []string
		for i, u := range stubsOf(refs) {
			obj := &metav1.PartialObjectMetadata{}
			obj.SetGroupVersionKind(u.GroupVersionKind())
			err := c.Client.Get(ctx, client.ObjectKeyFromObject(u), obj)
			switch {
			case apierrors.IsNotFound(err):
				continue
			case err != nil:
				left = append(left, fmt.Sprintf("%s (%v)", refs[i], err))
			default:
				left = append(left, fmt.Sprintf("%s (finalizers %s)", refs[i], strings.Join(obj.Finalizers, ", ")))
			}
		}
		if len(left) > 0 {
			return false, fmt.Errorf("%d object(s) still there: %s", len(left), strings.Join(left, "; "))
		}
		return true, nil
	})
}

// stubsOf are refs as the ssa manager and the client address objects:
// group, version, kind, namespace and name.
func stubsOf(refs []fluxobj.ObjectRef) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(refs))
	for _, r := range refs {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind})
		u.SetNamespace(r.Namespace)
		u.SetName(r.Name)
		out = append(out, u)
	}
	return out
}
