package fluxinstall

import (
	"maps"
	"slices"
	"testing"
)

func TestHarnessControllerArgs(t *testing.T) {
	kustomize := []string{"--feature-gates=CancelHealthCheckOnNewRevision=true", "--requeue-dependency=500ms"}
	helm := []string{"--requeue-dependency=500ms"}
	tests := []struct {
		name       string
		components []string
		want       map[string][]string
	}{
		{"default components", nil, map[string][]string{"kustomize-controller": kustomize, "helm-controller": helm}},
		{"no helm-controller", []string{"source-controller", "kustomize-controller"}, map[string][]string{"kustomize-controller": kustomize}},
		{"only source-controller", []string{"source-controller"}, map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HarnessControllerArgs(tt.components)
			if !maps.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("HarnessControllerArgs(%v) = %v, want %v", tt.components, got, tt.want)
			}
		})
	}
}

// The flags must be accepted by the generated manifests' controllers: every
// controller they name is among the default components.
func TestHarnessControllerArgsNameInstalledControllers(t *testing.T) {
	for name := range HarnessControllerArgs(nil) {
		if !slices.Contains(DefaultComponents(), name) {
			t.Errorf("flags for %s, which is not a default component", name)
		}
	}
	c := DefaultComponents()
	c[0] = "changed"
	if DefaultComponents()[0] == "changed" {
		t.Error("DefaultComponents returns the package's own slice; a caller's edit changed the default")
	}
}
