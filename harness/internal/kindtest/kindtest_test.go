package kindtest

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestFluxImages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		preload []string
		want    []string
	}{
		{"none", nil, nil},
		{"only controllers kept", []string{"ghcr.io/fluxcd/source-controller:v1.9.5", "fleet-kit/nginx:bookworm", "ghcr.io/fluxcd/kustomize-controller:v1.9.5"},
			[]string{"ghcr.io/fluxcd/source-controller:v1.9.5", "ghcr.io/fluxcd/kustomize-controller:v1.9.5"}},
		{"no controllers", []string{"fleet-kit/redis:bookworm"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Profile{PreloadImages: tc.preload}).FluxImages(); !slices.Equal(got, tc.want) {
				t.Errorf("FluxImages() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEstablished(t *testing.T) {
	cond := func(typ, status string) any { return map[string]any{"type": typ, "status": status} }
	for _, tc := range []struct {
		name  string
		conds []any
		want  bool
	}{
		{"no status", nil, false},
		{"established", []any{cond("NamesAccepted", "True"), cond("Established", "True")}, true},
		{"not yet", []any{cond("NamesAccepted", "True"), cond("Established", "False")}, false},
		{"names only", []any{cond("NamesAccepted", "True")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{}}
			if tc.conds != nil {
				u.Object["status"] = map[string]any{"conditions": tc.conds}
			}
			if got := established(u); got != tc.want {
				t.Errorf("established() = %v, want %v", got, tc.want)
			}
		})
	}
}
