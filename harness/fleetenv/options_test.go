package fleetenv

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
)

func TestOptionsFromEnv(t *testing.T) {
	root := t.TempDir()
	for _, env := range []string{"staging", "production"} {
		if err := os.MkdirAll(filepath.Join(root, "clusters", env), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	manifests := t.TempDir()
	if err := os.WriteFile(filepath.Join(manifests, "source-controller.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	chart := t.TempDir()
	if err := os.WriteFile(filepath.Join(chart, "Chart.yaml"), []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, o Options)
		wantErr string
	}{
		{"defaults", nil, func(t *testing.T, o Options) {
			if !slices.Equal(o.Envs, []string{"staging", "production"}) || o.FleetDir != root ||
				o.Keep != cluster.KeepOnFailure || o.Reuse || o.Timeout != 10*time.Minute || o.Offline() {
				t.Errorf("unexpected defaults: %+v", o)
			}
			if o.WorkDir != filepath.Join(root, ".work") || o.ArtifactsDir != filepath.Join(root, ".work", "artifacts") {
				t.Errorf("work dirs: %s, %s", o.WorkDir, o.ArtifactsDir)
			}
		}, ""},
		{"one env, keep, reuse, timeout", map[string]string{"E2E_ENVS": "staging", "E2E_KEEP": "always", "E2E_REUSE": "true", "E2E_TIMEOUT": "3m"}, func(t *testing.T, o Options) {
			if !slices.Equal(o.Envs, []string{"staging"}) || o.Keep != cluster.KeepAlways || !o.Reuse || o.Timeout != 3*time.Minute {
				t.Errorf("got %+v", o)
			}
		}, ""},
		{"offline profile picks the kit's controllers", map[string]string{"FLEET_FLUX_MANIFESTS": manifests, "FLEET_PRELOAD_IMAGES": "a:1, b:2",
			"FLEET_FLUX_COMPONENTS": "source-controller,kustomize-controller,helm-controller"}, func(t *testing.T, o Options) {
			if !o.Offline() || !slices.Equal(o.FluxComponents, []string{"source-controller", "kustomize-controller", "helm-controller"}) || !slices.Equal(o.Kit.PreloadImages, []string{"a:1", "b:2"}) {
				t.Errorf("got %+v", o)
			}
		}, ""},
		{"charts: the project's and the kit's extra ones", map[string]string{"FLEET_EXTRA_CHARTS": chart}, func(t *testing.T, o Options) {
			if !slices.Equal(o.ChartDirs, []string{filepath.Join(root, "fixtures", "charts"), chart}) {
				t.Errorf("ChartDirs = %q", o.ChartDirs)
			}
		}, ""},
		{"extra chart that is not a chart", map[string]string{"FLEET_EXTRA_CHARTS": root}, nil, "FLEET_EXTRA_CHARTS: " + root + " is not a chart directory"},
		{"unknown environment", map[string]string{"E2E_ENVS": "qa"}, nil, "has no clusters/qa directory"},
		{"bad keep", map[string]string{"E2E_KEEP": "sometimes"}, nil, "E2E_KEEP"},
		{"bad reuse", map[string]string{"E2E_REUSE": "maybe"}, nil, "E2E_REUSE"},
		{"bad timeout", map[string]string{"E2E_TIMEOUT": "-1s"}, nil, "E2E_TIMEOUT"},
		{"manifests dir without manifests", map[string]string{"FLEET_FLUX_MANIFESTS": t.TempDir()}, nil, "not an offline manifests directory"},
		{"kind config missing", map[string]string{"FLEET_KIND_CONFIG": filepath.Join(root, "nope.yaml")}, nil, "FLEET_KIND_CONFIG"},
	}
	vars := []string{"E2E_ENVS", "E2E_FLEET", "E2E_WORKDIR", "E2E_ARTIFACTS", "E2E_CLUSTER_PREFIX", "E2E_KEEP", "E2E_REUSE",
		"E2E_TIMEOUT", "E2E_POD_FAILURE_GRACE", "E2E_FLUX_COMPONENTS", "FLEET_NODE_IMAGE", "FLEET_KIND_CONFIG",
		"FLEET_FLUX_MANIFESTS", "FLEET_PRELOAD_IMAGES", "FLEET_FLUX_COMPONENTS", "FLEET_EXTRA_CHARTS", "E2E_CHARTS",
		"E2E_REVISION", "E2E_BASE", "E2E_MAX_FAILED_REQUESTS"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range vars {
				t.Setenv(v, tt.env[v])
			}
			o, err := OptionsFromEnv(root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestPrefixedWritesWholeLines(t *testing.T) {
	var out bytes.Buffer
	w := prefixed(&out, "staging")
	_, _ = w.Write([]byte("first li"))
	_, _ = w.Write([]byte("ne\nsecond line\npartial"))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 complete lines, got %q", out.String())
	}
	for i, want := range []string{"staging  first line", "staging  second line"} {
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("line %d = %q, want suffix %q", i, lines[i], want)
		}
	}
}
