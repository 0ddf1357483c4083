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

// optionVars are every variable OptionsFromEnv reads, cleared for each case.
var optionVars = []string{"E2E_ENVS", "E2E_FLEET", "E2E_WORKDIR", "E2E_ARTIFACTS", "E2E_CLUSTER_PREFIX", "E2E_KEEP", "E2E_REUSE",
	"E2E_OFFLINE_CHECKS", "E2E_PREFLIGHT", "E2E_TIMEOUT", "E2E_POD_FAILURE_GRACE", "E2E_FLUX_COMPONENTS", "E2E_CHARTS",
	"E2E_REVISION", "E2E_BASE", "E2E_MAX_FAILED_REQUESTS",
	"FLEET_NODE_IMAGE", "FLEET_NODE_IMAGE_BARE", "FLEET_KIND_CONFIG", "FLEET_FLUX_MANIFESTS", "FLEET_PRELOAD_IMAGES", "FLEET_FLUX_COMPONENTS", "FLEET_EXTRA_CHARTS"}

func setOptionVars(t *testing.T, env map[string]string) {
	t.Helper()
	for _, v := range optionVars {
		t.Setenv(v, env[v])
	}
}

func mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOptionsFromEnv(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "clusters/staging", "clusters/production", "fixtures/charts")
	// A fleet without fixtures/charts: the default chart directory is
	// left out rather than an error, since nobody asked for it.
	bare := t.TempDir()
	mkdirs(t, bare, "clusters/staging", "clusters/production")
	manifests := t.TempDir()
	if err := os.WriteFile(filepath.Join(manifests, "source-controller.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	artifacts := filepath.Join(t.TempDir(), "artifacts")
	chart := t.TempDir()
	if err := os.WriteFile(filepath.Join(chart, "Chart.yaml"), []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		root  string // default root
		env   map[string]string
		check func(t *testing.T, o Options)
	}{
		{"defaults", "", nil, func(t *testing.T, o Options) {
			if !slices.Equal(o.Envs, []string{"staging", "production"}) || o.FleetDir != root || o.ClusterPrefix != "" ||
				o.Keep != cluster.KeepOnFailure || o.Reuse || !o.OfflineChecks || !o.Preflight ||
				o.Timeout != 10*time.Minute || o.PodFailureGrace != 45*time.Second || o.MaxFailedRequests != -1 ||
				o.FluxComponents != nil || o.Offline() {
				t.Errorf("unexpected defaults: %+v", o)
			}
			if o.WorkDir != filepath.Join(root, ".work") || o.ArtifactsDir != filepath.Join(root, ".work", "artifacts") {
				t.Errorf("work dirs: %s, %s", o.WorkDir, o.ArtifactsDir)
			}
			if !slices.Equal(o.ChartDirs, []string{filepath.Join(root, "fixtures", "charts")}) {
				t.Errorf("ChartDirs = %q", o.ChartDirs)
			}
		}},
		{"default chart directory missing: none", bare, nil, func(t *testing.T, o Options) {
			if len(o.ChartDirs) != 0 {
				t.Errorf("ChartDirs = %q, want none", o.ChartDirs)
			}
		}},
		{"one env, prefix, keep, reuse, durations, components", "", map[string]string{"E2E_ENVS": "staging", "E2E_CLUSTER_PREFIX": "plain-", "E2E_KEEP": "always", "E2E_REUSE": "true",
			"E2E_PREFLIGHT": "0", "E2E_TIMEOUT": "3m", "E2E_POD_FAILURE_GRACE": "1m30s", "E2E_FLUX_COMPONENTS": "source-controller,kustomize-controller"}, func(t *testing.T, o Options) {
			if !slices.Equal(o.Envs, []string{"staging"}) || o.ClusterName("staging") != "plain-staging" || o.Keep != cluster.KeepAlways || !o.Reuse || o.Preflight ||
				o.Timeout != 3*time.Minute || o.PodFailureGrace != 90*time.Second || !slices.Equal(o.FluxComponents, []string{"source-controller", "kustomize-controller"}) {
				t.Errorf("got %+v", o)
			}
		}},
		{"work and artifacts directories to be created", "", map[string]string{"E2E_WORKDIR": "out", "E2E_ARTIFACTS": artifacts}, func(t *testing.T, o Options) {
			if o.WorkDir != filepath.Join(root, "out") || o.ArtifactsDir != artifacts {
				t.Errorf("work dirs: %s, %s", o.WorkDir, o.ArtifactsDir)
			}
		}},
		{"offline profile picks the kit's controllers", "", map[string]string{"FLEET_FLUX_MANIFESTS": manifests, "FLEET_PRELOAD_IMAGES": "a:1, b:2",
			"FLEET_FLUX_COMPONENTS": "source-controller,kustomize-controller,helm-controller"}, func(t *testing.T, o Options) {
			if !o.Offline() || !slices.Equal(o.FluxComponents, []string{"source-controller", "kustomize-controller", "helm-controller"}) || !slices.Equal(o.Kit.PreloadImages, []string{"a:1", "b:2"}) {
				t.Errorf("got %+v", o)
			}
		}},
		{"charts: relative to the root, and the kit's extra ones", "", map[string]string{"E2E_CHARTS": "fixtures/charts", "FLEET_EXTRA_CHARTS": chart}, func(t *testing.T, o Options) {
			if !slices.Equal(o.ChartDirs, []string{filepath.Join(root, "fixtures", "charts"), chart}) {
				t.Errorf("ChartDirs = %q", o.ChartDirs)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setOptionVars(t, tt.env)
			r := root
			if tt.root != "" {
				r = tt.root
			}
			o, err := OptionsFromEnv(r)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

// TestOptionsFromEnvRejects: every bad value is an error line naming the
// variable, its value quoted and the reason, all lines at once. The lines
// are the user-facing contract of a bad configuration, so they are spelled
// out whole; a line ending in "*" is compared up to there (the rest is
// another package's wording).
func TestOptionsFromEnvRejects(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "clusters/staging", "clusters/production", "fixtures/charts", "no-clusters", "only-staging/clusters/staging")
	file := filepath.Join(root, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const ws = "leading or trailing whitespace (env files often carry it unseen): remove it"
	long := strings.Repeat("a", 43)
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"duration with a stray space", map[string]string{"E2E_TIMEOUT": " 5m"}, []string{`E2E_TIMEOUT=" 5m": ` + ws}},
		{"duration without a unit", map[string]string{"E2E_TIMEOUT": "5"}, []string{`E2E_TIMEOUT="5": not a duration: want a number with a unit, such as 10m or 90s`}},
		{"duration with a space inside", map[string]string{"E2E_POD_FAILURE_GRACE": "5 m"}, []string{`E2E_POD_FAILURE_GRACE="5 m": not a duration: want a number with a unit, such as 10m or 90s`}},
		{"negative duration", map[string]string{"E2E_TIMEOUT": "-1s"}, []string{`E2E_TIMEOUT="-1s": not positive: want a duration above zero, such as 10m`}},
		{"boolean that is not one", map[string]string{"E2E_REUSE": "maybe"}, []string{`E2E_REUSE="maybe": not a boolean: want true or false`}},
		{"boolean yes", map[string]string{"E2E_PREFLIGHT": "yes"}, []string{`E2E_PREFLIGHT="yes": not a boolean: want true or false`}},
		{"boolean with a trailing space", map[string]string{"E2E_OFFLINE_CHECKS": "true "}, []string{`E2E_OFFLINE_CHECKS="true ": ` + ws}},
		{"unknown keep policy", map[string]string{"E2E_KEEP": "sometimes"}, []string{`E2E_KEEP="sometimes": unknown keep policy: want never, on-failure or always`}},
		{"empty env list", map[string]string{"E2E_ENVS": ","}, []string{`E2E_ENVS=",": names no environment: want a comma-separated list such as staging,production`}},
		{"only whitespace", map[string]string{"E2E_ENVS": " "}, []string{`E2E_ENVS=" ": ` + ws}},
		{"environment without a clusters directory", map[string]string{"E2E_ENVS": "staging,qa"}, []string{`E2E_ENVS="staging,qa": environment "qa": fleet ` + root + ` has no clusters/qa directory`}},
		{"environment that is no cluster name", map[string]string{"E2E_ENVS": "Staging,prod_1"}, []string{
			`E2E_ENVS="Staging,prod_1": environment "Staging" is not a valid cluster name part: want lowercase letters, digits, '.' and '-', starting and ending with a letter or digit`,
			`E2E_ENVS="Staging,prod_1": environment "prod_1" is not a valid cluster name part: want lowercase letters, digits, '.' and '-', starting and ending with a letter or digit`}},
		{"environment listed twice", map[string]string{"E2E_ENVS": "staging,staging"}, []string{`E2E_ENVS="staging,staging": environment "staging" is listed twice`}},
		{"default environments the fleet lacks", map[string]string{"E2E_FLEET": "only-staging"}, []string{
			`E2E_ENVS (unset, default "staging,production"): environment "production": fleet ` + filepath.Join(root, "only-staging") + ` has no clusters/production directory`}},
		{"bad cluster prefix", map[string]string{"E2E_CLUSTER_PREFIX": "My_"}, []string{`E2E_CLUSTER_PREFIX="My_": not a valid cluster name prefix: want lowercase letters, digits, '.' and '-', starting with a letter or digit`}},
		{"cluster name too long", map[string]string{"E2E_CLUSTER_PREFIX": long, "E2E_ENVS": "staging"}, []string{
			`E2E_ENVS="staging": cluster name "` + long + `staging" (E2E_CLUSTER_PREFIX and environment "staging") is longer than 49 characters, too long for kind's node host names`}},
		{"fleet that does not exist", map[string]string{"E2E_FLEET": "nope"}, []string{`E2E_FLEET="nope": fleet directory ` + filepath.Join(root, "nope") + ` does not exist`}},
		{"fleet that is a file", map[string]string{"E2E_FLEET": file}, []string{`E2E_FLEET="` + file + `": fleet ` + file + ` is not a directory`}},
		{"fleet without clusters/", map[string]string{"E2E_FLEET": "no-clusters"}, []string{
			`E2E_FLEET="no-clusters": fleet directory ` + filepath.Join(root, "no-clusters") + ` has no clusters/ directory (want the layout clusters/<env>, apps/, infrastructure/)`}},
		{"chart directory that does not exist", map[string]string{"E2E_CHARTS": "fixtures/charts,charts-gone"}, []string{
			`E2E_CHARTS="fixtures/charts,charts-gone": chart directory ` + filepath.Join(root, "charts-gone") + ` does not exist`}},
		{"chart directory that is a file", map[string]string{"E2E_CHARTS": file}, []string{`E2E_CHARTS="` + file + `": chart directory ` + file + ` is not a directory`}},
		{"empty chart list", map[string]string{"E2E_CHARTS": ","}, []string{`E2E_CHARTS=",": names no chart directory: want a comma-separated list of directories`}},
		{"unknown Flux component", map[string]string{"E2E_FLUX_COMPONENTS": "source-controller,image-controller"}, []string{
			`E2E_FLUX_COMPONENTS="source-controller,image-controller": unknown Flux component "image-controller": want some of source-controller, kustomize-controller, helm-controller, *`}},
		{"empty component list", map[string]string{"E2E_FLUX_COMPONENTS": ","}, []string{`E2E_FLUX_COMPONENTS=",": names no component: want a comma-separated list such as source-controller,kustomize-controller`}},
		{"work directory that is a file", map[string]string{"E2E_WORKDIR": file}, []string{`E2E_WORKDIR="` + file + `": ` + file + ` exists and is not a directory`}},
		{"artifacts directory that is a file", map[string]string{"E2E_ARTIFACTS": file}, []string{`E2E_ARTIFACTS="` + file + `": ` + file + ` exists and is not a directory`}},
		{"request budget with a stray space", map[string]string{"E2E_MAX_FAILED_REQUESTS": " 3"}, []string{`E2E_MAX_FAILED_REQUESTS=" 3": ` + ws}},
		{"negative request budget", map[string]string{"E2E_MAX_FAILED_REQUESTS": "-2"}, []string{`E2E_MAX_FAILED_REQUESTS="-2": want a number*`}},
		{"every problem at once, in reading order", map[string]string{"E2E_ENVS": "staging,qa", "E2E_KEEP": "sometimes", "E2E_REUSE": "maybe", "E2E_TIMEOUT": " 5m", "E2E_CHARTS": "charts-gone"}, []string{
			`E2E_ENVS="staging,qa": environment "qa": fleet ` + root + ` has no clusters/qa directory`,
			`E2E_KEEP="sometimes": unknown keep policy: want never, on-failure or always`,
			`E2E_REUSE="maybe": not a boolean: want true or false`,
			`E2E_TIMEOUT=" 5m": ` + ws,
			`E2E_CHARTS="charts-gone": chart directory ` + filepath.Join(root, "charts-gone") + ` does not exist`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setOptionVars(t, tt.env)
			o, err := OptionsFromEnv(root)
			if err == nil {
				t.Fatalf("no error; options %+v", o)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("error has %d lines, want %d:\n%v\nwant:\n%s", len(got), len(tt.want), err, strings.Join(tt.want, "\n"))
			}
			for i, w := range tt.want {
				prefix, cut := strings.CutSuffix(w, "*")
				if got[i] != w && !(cut && strings.HasPrefix(got[i], prefix)) {
					t.Errorf("line %d:\n got %s\nwant %s", i, got[i], w)
				}
			}
		})
	}
}

// TestOptionsFromEnvKitErrors: the offline profile's problems (package
// kitprofile's wording) are reported with the E2E_* ones, not instead.
func TestOptionsFromEnvKitErrors(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "clusters/staging", "clusters/production")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"extra chart that is not a chart", map[string]string{"FLEET_EXTRA_CHARTS": root}, "FLEET_EXTRA_CHARTS: " + root + " is not a chart directory"},
		{"manifests dir without manifests", map[string]string{"FLEET_FLUX_MANIFESTS": root}, "FLEET_FLUX_MANIFESTS=" + root + " is not an offline manifests directory"},
		{"kind config missing", map[string]string{"FLEET_KIND_CONFIG": filepath.Join(root, "nope.yaml")}, "FLEET_KIND_CONFIG: open " + filepath.Join(root, "nope.yaml") + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"E2E_KEEP": "sometimes"}
			for k, v := range tt.env {
				env[k] = v
			}
			setOptionVars(t, env)
			_, err := OptionsFromEnv(root)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `E2E_KEEP="sometimes": unknown keep policy`) {
				t.Fatalf("error = %v\nwant it to hold %q and the E2E_KEEP problem", err, tt.want)
			}
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
