package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestControllerVersion(t *testing.T) {
	flux := t.TempDir()
	dir := filepath.Join(flux, "manifests", "bases", "helm-controller")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	kustomization := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - https://github.com/fluxcd/helm-controller/releases/download/v1.6.4/helm-controller.crds.yaml
  - https://github.com/fluxcd/helm-controller/releases/download/v1.6.4/helm-controller.deployment.yaml
`
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := controllerVersion(flux, "helm-controller"); err != nil || v != "v1.6.4" {
		t.Errorf("controllerVersion = %q, %v; want v1.6.4", v, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("resources: [deployment.yaml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := controllerVersion(flux, "helm-controller"); err == nil || !strings.Contains(err.Error(), "no helm-controller release URL") {
		t.Errorf("no release URL: err = %v", err)
	}
	if _, err := controllerVersion(flux, "image-automation-controller"); err == nil || !strings.Contains(err.Error(), "reading the image-automation-controller version bundled by flux2") {
		t.Errorf("no such controller: err = %v", err)
	}
}

func TestChartImage(t *testing.T) {
	for _, tc := range []struct {
		name, values, chart, want, wantErr string
	}{
		{name: "podinfo's layout", values: "replicaCount: 1\nhost: #0.0.0.0\nimage:\n  repository: ghcr.io/stefanprodan/podinfo\n  tag: 6.9.2\n  pullPolicy: IfNotPresent\nui:\n  color: \"#34577c\"\n",
			chart: "apiVersion: v1\nname: podinfo\nversion: 6.9.2\nappVersion: 6.9.2\n", want: "ghcr.io/stefanprodan/podinfo:6.9.2"},
		{name: "a tag YAML would read as a number", values: "image:\n  repository: r/app\n  tag: 6.10\n", chart: "appVersion: \"6.10\"\n", want: "r/app:6.10"},
		{name: "no tag", values: "image:\n  repository: r/app\n", chart: "appVersion: 1.0.0\n", wantErr: "values.yaml: no image.repository or image.tag"},
		{name: "tag differs from appVersion", values: "image:\n  repository: r/app\n  tag: 1.0.0\n", chart: "appVersion: 1.0.1\n",
			wantErr: "values.yaml image.tag 1.0.0 differs from Chart.yaml appVersion 1.0.1"},
		{name: "not YAML", values: "image: [\n", chart: "appVersion: 1\n", wantErr: "values.yaml: yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range map[string]string{"values.yaml": tc.values, "Chart.yaml": tc.chart} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := chartImage(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("chartImage = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
