package fluxsync

import (
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
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
