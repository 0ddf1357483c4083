package kitprofile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

func TestFromEnv(t *testing.T) {
	chart := t.TempDir()
	if err := os.WriteFile(filepath.Join(chart, "Chart.yaml"), []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	manifests := t.TempDir()
	if err := os.WriteFile(filepath.Join(manifests, "source-controller.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	kindConfig := filepath.Join(t.TempDir(), "kind.yaml")
	if err := os.WriteFile(kindConfig, []byte("kind: Cluster\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, p Profile)
	}{
		{"no kit", nil, "", func(t *testing.T, p Profile) {
			if p.Offline() || len(p.Missing()) != 3 {
				t.Errorf("got %+v, missing %v", p, p.Missing())
			}
		}},
		{"whole profile", map[string]string{NodeImageVar: "n:1", KindConfigVar: kindConfig, FluxManifestsVar: manifests,
			FluxComponentsVar: "source-controller, helm-controller", PreloadImagesVar: "a:1,b:2", ExtraChartsVar: chart}, "", func(t *testing.T, p Profile) {
			if !p.Offline() || len(p.Missing()) != 0 || string(p.KindConfig) != "kind: Cluster\n" ||
				!slices.Equal(p.FluxComponents, []string{"source-controller", "helm-controller"}) ||
				!slices.Equal(p.PreloadImages, []string{"a:1", "b:2"}) || !slices.Equal(p.ExtraCharts, []string{chart}) {
				t.Errorf("got %+v", p)
			}
		}},
		{"kind config missing", map[string]string{KindConfigVar: filepath.Join(chart, "nope.yaml")}, KindConfigVar, nil},
		{"not a manifests directory", map[string]string{FluxManifestsVar: chart}, "is not an offline manifests directory", nil},
		{"extra chart that is not a chart", map[string]string{ExtraChartsVar: manifests}, "is not a chart directory", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []string{NodeImageVar, KindConfigVar, FluxManifestsVar, FluxComponentsVar, PreloadImagesVar, ExtraChartsVar} {
				t.Setenv(v, tt.env[v])
			}
			p, err := FromEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}
