package fluxsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// clearPoll is how often Clear looks whether what it deleted is gone.
const clearPoll = 500 * time.Millisecond

// Clear takes the fleet off a synced cluster and keeps the cluster, Flux
// and the sync objects, so that another fleet can be published to the same
// cluster (scenarios that share one cluster). It is what Flux does when the
// synced directory is emptied, without waiting for a commit: the sync
// Kustomization namespace/name is suspended (Resume undoes that), every
// other Kustomization and every HelmRelease is deleted first, so that their
// finalizers prune what they applied and helm-controller uninstalls the
// releases, then the rest of what the sync applied. Clear returns once
// none of it remains; ctx bounds the wait, and a timeout names what is
// still there.
func Clear(ctx context.Context, c *fluxobj.Clients, namespace, name string) error {
	if err := setSuspend(ctx, c, namespace, name, true); err != nil {
		return err
	}
	ksKind, _ := fluxobj.KindOf(kustomizationGK.Kind)
	root, err := c.Dynamic.Resource(ksKind.GVR()).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading Kustomization %s/%s: %w", namespace, name, err)
	}
	applied, err := fluxobj.Inventory(root)
	if err != nil {
		return err
	}
	self := fluxobj.RefOf(root)

	// Flux's own objects first: their finalizers need the namespaces and
	// sources they refer to.
	var roots []fluxobj.ObjectRef
	for _, k := range fluxobj.Kinds() {
		if k.Source {
			continue
		}
		list, err := c.Dynamic.Resource(k.GVR()).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing %s: %w", k.Resource, err)
		}
		for i := range list.Items {
			ref := fluxobj.RefOf(&list.Items[i])
			if ref.GroupKind() == self.GroupKind() && ref.Namespace == self.Namespace && ref.Name == self.Name {
				continue
			}
			roots = append(roots, ref)
			// Their inventories' namespaces must be gone too before the
			// next fleet may create them again.
			inv, _ := fluxobj.Inventory(&list.Items[i])
			applied = append(applied, namespacesOf(inv)...)
		}
	}
	if err := deleteAll(ctx, c, roots); err != nil {
		return err
	}
	// A Kustomization in a health check finishes it before its finalizer
	// runs, unless a new request cancels the check.
	for _, r := range roots {
		if r.GroupKind() == kustomizationGK {
			if err := requestReconcileOf(ctx, c, r); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	if err := waitGone(ctx, c, roots); err != nil {
		return fmt.Errorf("clearing the fleet: %w", err)
	}

	var rest []fluxobj.ObjectRef
	for _, r := range applied {
		if keep(r, namespace, name) || slices.Contains(rest, r) || slices.Contains(roots, r) {
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

func requestReconcileOf(ctx context.Context, c *fluxobj.Clients, r fluxobj.ObjectRef) error {
	gvr, err := resourceOf(c, r)
	if err != nil {
		return err
	}
	_, err = c.Dynamic.Resource(gvr).Namespace(r.Namespace).Patch(ctx, r.Name, types.MergePatchType, annotationPatch(time.Now()),
		metav1.PatchOptions{FieldManager: fluxobj.FieldManager})
	return err
}

// keep reports whether an object the sync applied belongs to the sync
// itself: Flux's namespace and the sync's own source.
func keep(r fluxobj.ObjectRef, namespace, name string) bool {
	if r.Kind == "Namespace" && r.Group == "" && r.Name == namespace {
		return true
	}
	return r.Namespace == namespace && r.Name == name && (r.GroupKind() == gitRepositoryGK || r.GroupKind() == kustomizationGK)
}

// namespacesOf are the Namespaces in an inventory.
func namespacesOf(inv []fluxobj.ObjectRef) []fluxobj.ObjectRef {
	var out []fluxobj.ObjectRef
	for _, r := range inv {
		if r.Group == "" && r.Kind == "Namespace" {
			out = append(out, r)
		}
	}
	return out
}

func resourceOf(c *fluxobj.Clients, r fluxobj.ObjectRef) (schema.GroupVersionResource, error) {
	var versions []string
	if r.Version != "" {
		versions = append(versions, r.Version)
	}
	m, err := c.Mapper.RESTMapping(r.GroupKind(), versions...)
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("mapping %s to its resource: %w", r, err)
	}
	return m.Resource, nil
}

func deleteAll(ctx context.Context, c *fluxobj.Clients, refs []fluxobj.ObjectRef) error {
	background := metav1.DeletePropagationBackground
	for _, r := range refs {
		gvr, err := resourceOf(c, r)
		if err != nil {
			return err
		}
		err = c.Dynamic.Resource(gvr).Namespace(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{PropagationPolicy: &background})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s: %w", r, err)
		}
	}
	return nil
}

// waitGone waits until none of refs exists; on timeout the error lists
// those left with their finalizers.
func waitGone(ctx context.Context, c *fluxobj.Clients, refs []fluxobj.ObjectRef) error {
	var left []string
	err := wait.PollUntilContextCancel(ctx, clearPoll, true, func(ctx context.Context) (bool, error) {
		left = left[:0]
		for _, r := range refs {
			gvr, err := resourceOf(c, r)
			if err != nil {
				return false, err
			}
			obj, err := c.Metadata.Resource(gvr).Namespace(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				continue
			case err != nil:
				left = append(left, fmt.Sprintf("%s (%v)", r, err))
			default:
				left = append(left, fmt.Sprintf("%s (finalizers %s)", r, strings.Join(obj.Finalizers, ", ")))
			}
		}
		return len(left) == 0, nil
	})
	if err != nil && len(left) > 0 && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%d object(s) still there: %s: %w", len(left), strings.Join(left, "; "), err)
	}
	return err
}
