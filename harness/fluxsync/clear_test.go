package fluxsync

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

func TestKeepSyncObjects(t *testing.T) {
	tests := []struct {
		name string
		ref  fluxobj.ObjectRef
		want bool
	}{
		{"Flux's namespace", fluxobj.ObjectRef{Kind: "Namespace", Name: "flux-system"}, true},
		{"the sync's GitRepository", fluxobj.SyncSource(), true},
		{"the sync's Kustomization", fluxobj.SyncKustomization(), true},
		{"a fleet namespace", fluxobj.ObjectRef{Kind: "Namespace", Name: "apps"}, false},
		{"a child Kustomization", fluxobj.ObjectRef{Group: "kustomize.toolkit.fluxcd.io", Kind: "Kustomization", Namespace: "flux-system", Name: "apps"}, false},
		{"a source named like the sync in another namespace", fluxobj.ObjectRef{Group: "source.toolkit.fluxcd.io", Kind: "GitRepository", Namespace: "apps", Name: "flux-system"}, false},
		{"a HelmRepository in flux-system", fluxobj.ObjectRef{Group: "source.toolkit.fluxcd.io", Kind: "HelmRepository", Namespace: "flux-system", Name: "flux-system"}, false},
		{"a namespaced object named flux-system", fluxobj.ObjectRef{Kind: "Namespace", Group: "example.com", Name: "flux-system"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keep(tt.ref, fluxobj.Namespace, fluxobj.SyncName); got != tt.want {
				t.Errorf("keep(%s) = %v, want %v", tt.ref, got, tt.want)
			}
		})
	}
}

func TestStubsOf(t *testing.T) {
	refs := []fluxobj.ObjectRef{
		{Group: "helm.toolkit.fluxcd.io", Version: "v2", Kind: "HelmRelease", Namespace: "nginx", Name: "nginx"},
		{Version: "v1", Kind: "Namespace", Name: "apps"},
	}
	got := stubsOf(refs)
	if len(got) != len(refs) {
		t.Fatalf("stubsOf returned %d objects for %d refs", len(got), len(refs))
	}
	for i, u := range got {
		r := refs[i]
		if gvk := u.GroupVersionKind(); gvk.Group != r.Group || gvk.Version != r.Version || gvk.Kind != r.Kind || u.GetNamespace() != r.Namespace || u.GetName() != r.Name {
			t.Errorf("stub %d = %s %s/%s, want %s", i, u.GroupVersionKind(), u.GetNamespace(), u.GetName(), r)
		}
	}
}

// TestWaitGone: a deleted object held by its finalizer keeps the wait going
// until ctx ends, and the error names it with the finalizer; one that is
// gone ends the wait at once.
func TestWaitGone(t *testing.T) {
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "held", Finalizers: []string{"example.com/hold"}}}
	c := &fluxobj.Clients{Client: fake.NewClientBuilder().WithObjects(held).Build()}
	heldRef := fluxobj.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "apps", Name: "held"}
	goneRef := fluxobj.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "apps", Name: "gone"}

	if err := waitGone(t.Context(), c, []fluxobj.ObjectRef{goneRef}); err != nil {
		t.Errorf("an object that is gone: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*clearPoll)
	defer cancel()
	err := waitGone(ctx, c, []fluxobj.ObjectRef{goneRef, heldRef})
	var pe *poll.Error
	if !errors.As(err, &pe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an object held by its finalizer: error = %v; want a *poll.Error at ctx's deadline", err)
	}
	want := "stopped waiting for 2 deleted object(s) to be gone after " + pe.Waited.Round(time.Millisecond).String() +
		": context deadline exceeded; last: 1 object(s) still there: ConfigMap/apps/held (finalizers example.com/hold)"
	if err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
}
