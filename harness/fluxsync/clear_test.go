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
