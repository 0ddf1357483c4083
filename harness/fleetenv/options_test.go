package fleetenv

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	e2eflags "sigs.k8s.io/e2e-framework/pkg/flags"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// update rewrites the generated configuration docs (TestGeneratedDocs).
var update = flag.Bool("update", false, "rewrite README.md's option table and docs/configuration.md from the option table")

// optionVars are every variable ResolveOptions reads ($KUBECONFIG too), and
// the kit profile's variables, which it must not read; all are cleared for
// each case.
func optionVars() []string {
	vars := []string{"KUBECONFIG"}
	for _, o := range optionTable() {
		vars = append(vars, o.env)
	}
	return append(vars, kitprofile.NodeImageVar, kitprofile.NodeImageBareVar, kitprofile.KindConfigVar, kitprofile.FluxManifestsVar,
		kitprofile.FluxComponentsVar, kitprofile.PreloadImagesVar, kitprofile.ExtraChartsVar)
}

func setOptionVars(t *testing.T, env map[string]string) {
	t.Helper()
	for _, v := range optionVars() {
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
	kindConfig := writeFile(t, filepath.Join(t.TempDir(), "kind.yaml"), "kind: Cluster\n")
	kitProfile := writeFile(t, filepath.Join(t.TempDir(), "profile.env"), "# a kit\n"+kitprofile.NodeImageVar+"=n:1\n"+
		kitprofile.KindConfigVar+"="+kindConfig+"\n"+kitprofile.FluxManifestsVar+"="+manifests+"\n"+
		kitprofile.PreloadImagesVar+"=a:1,b:2\n"+kitprofile.FluxComponentsVar+"=source-controller,kustomize-controller,helm-controller\n"+
		kitprofile.ExtraChartsVar+"="+chart+"\n")
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
		{"offline profile picks the kit's controllers", "", map[string]string{"E2E_KIT": kitProfile}, func(t *testing.T, o Options) {
			if !o.Offline() || !slices.Equal(o.FluxComponents, []string{"source-controller", "kustomize-controller", "helm-controller"}) || !slices.Equal(o.Kit.PreloadImages, []string{"a:1", "b:2"}) {
				t.Errorf("got %+v", o)
			}
		}},
		{"charts: relative to the root, and the kit's extra ones", "", map[string]string{"E2E_CHARTS": "fixtures/charts", "E2E_KIT": kitProfile}, func(t *testing.T, o Options) {
			if !slices.Equal(o.ChartDirs, []string{filepath.Join(root, "fixtures", "charts"), chart}) {
				t.Errorf("ChartDirs = %q", o.ChartDirs)
			}
		}},
		{"the profile's variables in the environment are not read", "", map[string]string{kitprofile.FluxManifestsVar: manifests, kitprofile.ExtraChartsVar: chart}, func(t *testing.T, o Options) {
			if o.Offline() || slices.Contains(o.ChartDirs, chart) {
				t.Errorf("options took the kit from %s/%s: %+v", kitprofile.FluxManifestsVar, kitprofile.ExtraChartsVar, o)
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
	open := filepath.Join(root, "open")
	mkdirs(t, root, "open")
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	// A file that is no kubeconfig, as /etc/passwd, and one without the
	// context of production.
	notKubeconfig := writeFile(t, filepath.Join(t.TempDir(), "passwd"), "root:x:0:0:root:/root:/bin/bash\n")
	notKubeconfig2 := writeFile(t, filepath.Join(t.TempDir(), "hosts"), "127.0.0.1 localhost\n")
	stagingOnly := kubeconfigFor(t, t.TempDir(), "planted-token", "staging")
	kubeconfigRun := func(env map[string]string) map[string]string {
		env["E2E_CLUSTERS"], env["E2E_SERVER_IMAGE"] = "kubeconfig", "fleet-kit/fleet-server:x"
		return env
	}
	const contextsUnset = `E2E_CONTEXTS (unset, default "each environment's context is named like it")`
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"duration with a stray space", map[string]string{"E2E_TIMEOUT": " 5m"}, []string{`E2E_TIMEOUT=" 5m": ` + ws}},
		{"duration without a unit", map[string]string{"E2E_TIMEOUT": "5"}, []string{`E2E_TIMEOUT="5": not a duration: want a number with a unit, such as 10m or 90s`}},
		{"duration with a space inside", map[string]string{"E2E_POD_FAILURE_GRACE": "5 m"}, []string{`E2E_POD_FAILURE_GRACE="5 m": not a duration: want a number with a unit, such as 10m or 90s`}},
		{"negative duration", map[string]string{"E2E_TIMEOUT": "-1s"}, []string{`E2E_TIMEOUT="-1s": not positive: want a duration above zero, such as 10m`}},
		{"duration out of range", map[string]string{"E2E_TIMEOUT": "99999999999h"}, []string{`E2E_TIMEOUT="99999999999h": out of range: want at most 2562047h47m16s, such as 10m`}},
		{"duration whose number overflows", map[string]string{"E2E_POD_FAILURE_GRACE": "99999999999999999999ns"}, []string{
			`E2E_POD_FAILURE_GRACE="99999999999999999999ns": out of range: want at most 2562047h47m16s, such as 10m`}},
		{"duration with an unknown unit", map[string]string{"E2E_TIMEOUT": "5d"}, []string{`E2E_TIMEOUT="5d": not a duration: want a number with a unit, such as 10m or 90s`}},
		{"kubeconfig list of no file", kubeconfigRun(map[string]string{"E2E_KUBECONFIG": ":::"}), []string{
			`E2E_KUBECONFIG=":::": names no kubeconfig file: want a file, or a list of files as $KUBECONFIG takes`}},
		{"$KUBECONFIG of no file", kubeconfigRun(map[string]string{"KUBECONFIG": ":"}), []string{
			`E2E_KUBECONFIG (unset, default "$KUBECONFIG"): $KUBECONFIG=":" names no kubeconfig file: want a file, or a list of files as $KUBECONFIG takes`}},
		{"kubeconfig that is no kubeconfig", kubeconfigRun(map[string]string{"E2E_KUBECONFIG": notKubeconfig}), []string{
			`E2E_KUBECONFIG="` + notKubeconfig + `": reading kubeconfig ` + notKubeconfig + `: *`}},
		{"every kubeconfig of a list that is none", kubeconfigRun(map[string]string{"KUBECONFIG": notKubeconfig + ":" + stagingOnly + ":" + notKubeconfig2}), []string{
			`E2E_KUBECONFIG (unset, default "$KUBECONFIG"): reading kubeconfig ` + notKubeconfig + `: *`,
			`E2E_KUBECONFIG (unset, default "$KUBECONFIG"): reading kubeconfig ` + notKubeconfig2 + `: *`}},
		{"kubeconfig without an environment's context", kubeconfigRun(map[string]string{"E2E_KUBECONFIG": stagingOnly}), []string{
			contextsUnset + `: environment "production": kubeconfig ` + stagingOnly + ` has no context "production" (it has: staging)`}},
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
		{"work directory below one every user may write", map[string]string{"E2E_WORKDIR": "open/work"}, []string{
			`E2E_WORKDIR="open/work": ` + filepath.Join(open, "work") + `: directory ` + open + ` is writable by every user (mode -rwxrwxrwx, no sticky bit), who could replace what the run writes there (kubeconfigs with admin credentials, artifacts) with links elsewhere: choose a directory no other user can write, or run as its owner`,
			`E2E_ARTIFACTS (unset, default "<workdir>/artifacts"): ` + filepath.Join(open, "work", "artifacts") + `: directory ` + open + ` is writable by every user*`}},
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

// TestKitProfileErrors: the kit profile's problems name -kit or E2E_KIT,
// the file and, where one line is at fault, the line; they are reported with
// the other options' problems, not instead.
func TestKitProfileErrors(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "clusters/staging", "clusters/production")
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.env")
	tests := []struct {
		name, file, want string // file "" writes none
	}{
		{"no such file", "", `E2E_KIT="` + missing + `": kit profile ` + missing + ` does not exist (build the kit: go run ./hack/kit)`},
		{"garbled line", "# kit\nFLEET_NODE_IMAGE n:1\n", `E2E_KIT="%s": %s:2: "FLEET_NODE_IMAGE n:1" is not NAME=value`},
		{"unknown variable", "FLEET_NODE_IMAGE=n:1\nE2E_ENVS=staging\n", `E2E_KIT="%s": %s:2: unknown variable "E2E_ENVS"`},
		{"blank before =", "FLEET_NODE_IMAGE =n:1\n", `E2E_KIT="%s": %s:1: unknown variable "FLEET_NODE_IMAGE "`},
		{"extra chart that is not a chart", "FLEET_NODE_IMAGE=n:1\n\nFLEET_EXTRA_CHARTS=" + root + "\n", `E2E_KIT="%s": %s:3: FLEET_EXTRA_CHARTS: ` + root + ` is not a chart directory`},
		{"manifests dir without manifests", "FLEET_FLUX_MANIFESTS=" + root + "\n", `E2E_KIT="%s": %s:1: FLEET_FLUX_MANIFESTS=` + root + ` is not an offline manifests directory`},
		{"kind config missing", "FLEET_KIND_CONFIG=" + filepath.Join(root, "nope.yaml") + "\n", `E2E_KIT="%s": %s:1: FLEET_KIND_CONFIG: open ` + filepath.Join(root, "nope.yaml") + ": no such file or directory"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, want := missing, tt.want
			if tt.file != "" {
				path = writeFile(t, filepath.Join(dir, tt.name+".env"), tt.file)
				want = strings.ReplaceAll(tt.want, "%s", path)
			}
			_, err := resolve(t, root, map[string]string{"E2E_KEEP": "sometimes", "E2E_KIT": path}, nil)
			if err == nil {
				t.Fatalf("case %d: no error", i)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], `E2E_KEEP="sometimes": unknown keep policy`) || !strings.HasPrefix(lines[1], want) {
				t.Fatalf("error:\n%v\nwant the E2E_KEEP problem, then a line starting\n%s", err, want)
			}
		})
	}
}

// TestIncompleteKit: a kit profile that loads but lacks what a run needs is
// an error naming -kit or E2E_KIT, the file and what it lacks, not "no kit"
// (which would send the run to registries), and the server image the run
// takes from the kit must be in it.
func TestIncompleteKit(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "clusters/staging", "clusters/production")
	dir := t.TempDir()
	empty := writeFile(t, filepath.Join(dir, "empty.env"), "")
	truncated := writeFile(t, filepath.Join(dir, "truncated.env"), kitprofile.NodeImageVar+"=x\n")
	noServer, _ := wholeKit(t)
	withServer, want := wholeKit(t)
	want.FleetServerImage = "fleet-kit/fleet-server:0123456789ab"
	if err := want.Write(withServer); err != nil {
		t.Fatal(err)
	}
	const rebuild = ": it is empty, truncated or not the kit's (rebuild the kit: go run ./hack/kit)"
	const imageUnset = "E2E_SERVER_IMAGE (unset, default \"the kit's `FLEET_SERVER_IMAGE`\")"
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string // nil: resolves, with the kit's server image
	}{
		{"empty profile", map[string]string{"E2E_KIT": empty}, nil, []string{
			`E2E_KIT="` + empty + `": kit profile ` + empty + ` has no FLEET_NODE_IMAGE, FLEET_KIND_CONFIG, FLEET_FLUX_MANIFESTS` + rebuild}},
		{"node image only, by flag", nil, []string{"-kit=" + truncated}, []string{
			`-kit="` + truncated + `": kit profile ` + truncated + ` has no FLEET_KIND_CONFIG, FLEET_FLUX_MANIFESTS` + rebuild}},
		{"incomplete kit with servers in the clusters: the kit's error alone", map[string]string{"E2E_KIT": truncated, "E2E_SERVERS": "cluster"}, nil, []string{
			`E2E_KIT="` + truncated + `": kit profile ` + truncated + ` has no FLEET_KIND_CONFIG, FLEET_FLUX_MANIFESTS` + rebuild}},
		{"servers in the clusters, kit without a server image", map[string]string{"E2E_KIT": noServer, "E2E_SERVERS": "cluster"}, nil, []string{
			imageUnset + `: -servers=cluster needs the fleet server's image, and the kit profile E2E_KIT="` + noServer + `" has no FLEET_SERVER_IMAGE: set it, or rebuild the kit (go run ./hack/kit), which builds one`}},
		{"servers in the clusters, the kit's server image", map[string]string{"E2E_KIT": withServer, "E2E_SERVERS": "cluster"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := resolve(t, root, tc.env, tc.args)
			if tc.want == nil {
				if err != nil || o.FleetServerImage() != want.FleetServerImage {
					t.Fatalf("FleetServerImage() = %q, %v; want the kit's %q", o.FleetServerImage(), err, want.FleetServerImage)
				}
				return
			}
			if err == nil || err.Error() != strings.Join(tc.want, "\n") {
				t.Fatalf("error:\n%v\nwant\n%s", err, strings.Join(tc.want, "\n"))
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

// resolve is ResolveOptions with args parsed as a test binary's flags and
// env as the whole environment.
func resolve(t *testing.T, root string, env map[string]string, args []string) (Options, error) {
	t.Helper()
	fs := flag.NewFlagSet("e2e.test", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	return ResolveOptions(t.Context(), root, fs, lookup)
}

func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// committedFleet is a git repository holding two fleets (the root's and
// "other"), a chart directory and a file, committed once, so that every
// option has a value that resolves.
func committedFleet(t *testing.T) string {
	t.Helper()
	testsupport.RequireGit(t, "options resolve revisions of a committed fleet")
	root := t.TempDir()
	for _, f := range []string{"clusters/staging/k.yaml", "clusters/production/k.yaml", "other/clusters/staging/k.yaml",
		"other/clusters/production/k.yaml", "a-file"} {
		writeFile(t, filepath.Join(root, f), "kind: Kustomization\n")
	}
	writeFile(t, filepath.Join(root, "fixtures", "charts", "c", "Chart.yaml"), "apiVersion: v2\nname: c\nversion: 0.1.0\n")
	testsupport.Git(t, root, "init", "--quiet", "--initial-branch=main")
	testsupport.Git(t, root, "add", ".")
	testsupport.Git(t, root, "commit", "--quiet", "-m", "fleet")
	return root
}

// wholeKit writes a complete kit profile with what it points at, as
// go run ./hack/kit would.
func wholeKit(t *testing.T) (path string, want kitprofile.Profile) {
	t.Helper()
	dir := t.TempDir()
	want = kitprofile.Profile{
		NodeImage:      "fleet-kit/node-preloaded:v1",
		NodeImageBare:  "fleet-kit/node:v1",
		KindConfigPath: writeFile(t, filepath.Join(dir, "kind-config.yaml"), "kind: Cluster\n"),
		KindConfig:     []byte("kind: Cluster\n"),
		FluxManifests:  filepath.Dir(writeFile(t, filepath.Join(dir, "manifests", "source-controller.yaml"), "")),
		FluxComponents: []string{"source-controller", "kustomize-controller"},
		PreloadImages:  []string{"fleet-kit/nginx:bookworm"},
		ExtraCharts:    []string{filepath.Dir(writeFile(t, filepath.Join(dir, "podinfo", "Chart.yaml"), "apiVersion: v2\nname: podinfo\nversion: 6.9.2\n"))},
	}
	path = filepath.Join(dir, kitprofile.ProfileFile)
	if err := want.Write(path); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// optionValues are, per flag, a value other than the default that resolves
// and one that is an error. Every option of the table must have both, so
// that a new option comes with its checks.
func optionValues(root, kit string) map[string]struct{ good, bad string } {
	return map[string]struct{ good, bad string }{
		"fleet":                {"other", "nope"},
		"envs":                 {"staging", "Staging"},
		"revision":             {"HEAD", "no-such-revision"},
		"base":                 {"HEAD", "no-such-revision"},
		"max-failed-requests":  {"3", "three"},
		"cluster-prefix":       {"x-", "My_"},
		"keep":                 {"always", "sometimes"},
		"reuse":                {"true", "maybe"},
		"ready-timeout":        {"3m", "5"},
		"pod-failure-grace":    {"1m", "0s"},
		"kit":                  {kit, "missing.env"},
		"flux-components":      {"source-controller", "image-controller"},
		"flux-base":            {"v2.8.0", "2.8"},
		"charts":               {filepath.Join(root, "fixtures", "charts", "c"), "charts-gone"},
		"offline-checks":       {"false", "maybe"},
		"preflight":            {"false", "maybe"},
		"workdir":              {"out", "a-file"},
		"artifacts":            {"arts", "a-file"},
		"artifacts-raw-values": {"true", "maybe"},
		"clusters":             {"kubeconfig", "eks"},
		"cluster-kubeconfig":   {filepath.Join(root, "kubeconfig"), "no-kubeconfig"},
		"contexts":             {"staging=other-staging", "staging"},
		"servers":              {"cluster", "remote"},
		"server-image":         {"fleet-kit/fleet-server:0123456789ab", "fleet server"},
	}
}

// optionsNeeded are, per flag, the variables without which its values mean
// nothing (the kubeconfig options apply only to -clusters=kubeconfig), set
// in every resolve of TestEveryOption for that option; paths are relative
// to the root, which holds a kubeconfig (kubeconfigFor).
func optionsNeeded(kubeconfig string) map[string]map[string]string {
	const image = "fleet-kit/fleet-server:0123456789ab"
	return map[string]map[string]string{
		"clusters":           {"E2E_KUBECONFIG": kubeconfig, "E2E_SERVER_IMAGE": image},
		"cluster-kubeconfig": {"E2E_CLUSTERS": "kubeconfig", "E2E_SERVER_IMAGE": image},
		"contexts":           {"E2E_CLUSTERS": "kubeconfig", "E2E_KUBECONFIG": kubeconfig, "E2E_SERVER_IMAGE": image},
		"servers":            {"E2E_SERVER_IMAGE": image},
	}
}

// kubeconfigFor writes a kubeconfig with a context per name into dir and
// returns its path; its token is planted, for tests that it goes nowhere.
func kubeconfigFor(t *testing.T, dir, token string, contexts ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\nusers:\n- name: u\n  user:\n    token: " + token + "\ncontexts:\n")
	for _, c := range contexts {
		b.WriteString("- name: " + c + "\n  context:\n    cluster: c\n    user: u\n")
	}
	return writeFile(t, filepath.Join(dir, "kubeconfig"), b.String())
}

// TestEveryOption: for each option, a good value given by its flag or its
// variable sets the Options field the table names, and the flag beats the
// variable; a bad value is one error line naming the flag or the variable
// that carried it, and a bad variable under a good flag is no error.
func TestEveryOption(t *testing.T) {
	root := committedFleet(t)
	kit, _ := wholeKit(t)
	values := optionValues(root, kit)
	needed := optionsNeeded(kubeconfigFor(t, root, "planted-token", "staging", "production", "other-staging"))
	defaults, err := resolve(t, root, nil, nil)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	field := func(o Options, name string) any { return reflect.ValueOf(o).FieldByName(name).Interface() }
	for _, opt := range optionTable() {
		v, ok := values[opt.flag]
		if !ok {
			t.Errorf("option -%s has no good and bad value in optionValues: add them", opt.flag)
			continue
		}
		t.Run(opt.flag, func(t *testing.T) {
			with := func(env map[string]string) map[string]string {
				merged := maps.Clone(needed[opt.flag])
				if merged == nil {
					merged = map[string]string{}
				}
				maps.Copy(merged, env)
				return merged
			}
			byFlag, err := resolve(t, root, with(nil), []string{"-" + opt.flag + "=" + v.good})
			if err != nil {
				t.Fatalf("-%s=%s: %v", opt.flag, v.good, err)
			}
			if reflect.DeepEqual(field(byFlag, opt.field), field(defaults, opt.field)) {
				t.Errorf("-%s=%s left %s at its default %v", opt.flag, v.good, opt.field, field(defaults, opt.field))
			}
			byVar, err := resolve(t, root, with(map[string]string{opt.env: v.good}), nil)
			if err != nil || !reflect.DeepEqual(field(byVar, opt.field), field(byFlag, opt.field)) {
				t.Errorf("%s=%s: %s = %v, %v; want %v as from the flag", opt.env, v.good, opt.field, field(byVar, opt.field), err, field(byFlag, opt.field))
			}
			overridden, err := resolve(t, root, with(map[string]string{opt.env: v.bad}), []string{"-" + opt.flag + "=" + v.good})
			if err != nil || !reflect.DeepEqual(field(overridden, opt.field), field(byFlag, opt.field)) {
				t.Errorf("-%s=%s with %s=%s: %s = %v, %v; want the flag's %v", opt.flag, v.good, opt.env, v.bad, opt.field, field(overridden, opt.field), err, field(byFlag, opt.field))
			}
			for _, tc := range []struct {
				env    map[string]string
				args   []string
				prefix string
			}{
				{nil, []string{"-" + opt.flag + "=" + v.bad}, "-" + opt.flag + `="` + v.bad + `": `},
				{map[string]string{opt.env: v.bad}, nil, opt.env + `="` + v.bad + `": `},
			} {
				_, err := resolve(t, root, with(tc.env), tc.args)
				if err == nil {
					t.Errorf("%s: no error", strings.TrimSuffix(tc.prefix, ": "))
					continue
				}
				if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], tc.prefix) {
					t.Errorf("error:\n%v\nwant one line starting %q", err, tc.prefix)
				}
			}
		})
	}
}

// TestPrecedence: flag beats variable beats default, option by option.
func TestPrecedence(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "clusters/staging", "clusters/production")
	env := map[string]string{"E2E_ENVS": "production", "E2E_TIMEOUT": "2m", "E2E_REUSE": "true"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want func(Options) bool
	}{
		{"defaults", nil, nil, func(o Options) bool {
			return slices.Equal(o.Envs, []string{"staging", "production"}) && o.Timeout == 10*time.Minute && !o.Reuse
		}},
		{"variables beat defaults", env, nil, func(o Options) bool {
			return slices.Equal(o.Envs, []string{"production"}) && o.Timeout == 2*time.Minute && o.Reuse
		}},
		{"flags beat variables", env, []string{"-envs=staging", "-ready-timeout", "3m", "-reuse=false"}, func(o Options) bool {
			return slices.Equal(o.Envs, []string{"staging"}) && o.Timeout == 3*time.Minute && !o.Reuse
		}},
		{"a flag beats only its own variable", env, []string{"-envs=staging"}, func(o Options) bool {
			return slices.Equal(o.Envs, []string{"staging"}) && o.Timeout == 2*time.Minute && o.Reuse
		}},
		{"a bare boolean flag is true", nil, []string{"-reuse", "-preflight=false"}, func(o Options) bool {
			return o.Reuse && !o.Preflight && o.OfflineChecks
		}},
		{"an empty flag is the default, not the variable", env, []string{"-envs="}, func(o Options) bool {
			return slices.Equal(o.Envs, []string{"staging", "production"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := resolve(t, root, tt.env, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(o) {
				t.Errorf("env %v, flags %q: Envs %q Timeout %s Reuse %t Preflight %t OfflineChecks %t", tt.env, tt.args, o.Envs, o.Timeout, o.Reuse, o.Preflight, o.OfflineChecks)
			}
		})
	}
}

// TestFlagErrorTexts: a flag's bad value is worded as its variable's, with
// the flag named; whitespace gets no hint about env files.
func TestFlagErrorTexts(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "clusters/staging", "clusters/production")
	long := strings.Repeat("a", 43)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-ready-timeout= 5m"}, []string{`-ready-timeout=" 5m": leading or trailing whitespace: remove it`}},
		{[]string{"-envs=staging,qa", "-keep=sometimes"}, []string{
			`-envs="staging,qa": environment "qa": fleet ` + root + ` has no clusters/qa directory`,
			`-keep="sometimes": unknown keep policy: want never, on-failure or always`}},
		{[]string{"-cluster-prefix=" + long, "-envs=staging"}, []string{
			`-envs="staging": cluster name "` + long + `staging" (-cluster-prefix and environment "staging") is longer than 49 characters, too long for kind's node host names`}},
		{[]string{"-max-failed-requests=-2"}, []string{`-max-failed-requests="-2": want a number of failed requests allowed, 0 or more (unset: report only)`}},
	} {
		_, err := resolve(t, root, nil, tc.args)
		if err == nil || err.Error() != strings.Join(tc.want, "\n") {
			t.Errorf("flags %q: error\n%v\nwant\n%s", tc.args, err, strings.Join(tc.want, "\n"))
		}
	}
}

// TestKitFlag: -kit loads the profile file hack/kit writes, relative to the
// root too, and the run takes the kit's controllers and charts from it.
func TestKitFlag(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "clusters/staging", "clusters/production")
	path, want := wholeKit(t)
	rel := filepath.Join("kit", kitprofile.ProfileFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, rel), string(raw))
	for _, arg := range []string{path, rel} {
		o, err := resolve(t, root, nil, []string{"-kit", arg})
		if err != nil {
			t.Fatalf("-kit %s: %v", arg, err)
		}
		if !reflect.DeepEqual(o.Kit, want) || !o.Offline() || !slices.Equal(o.FluxComponents, want.FluxComponents) || !slices.Equal(o.ChartDirs, want.ExtraCharts) {
			t.Errorf("-kit %s: Kit %+v FluxComponents %q ChartDirs %q\nwant Kit %+v with its components and charts", arg, o.Kit, o.FluxComponents, o.ChartDirs, want)
		}
	}
}

func TestResolveOptionsNeedsParsedFlags(t *testing.T) {
	fs := flag.NewFlagSet("e2e.test", flag.ContinueOnError)
	RegisterFlags(fs)
	_, err := ResolveOptions(context.Background(), t.TempDir(), fs, func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), `flag set "e2e.test" is not parsed yet`) {
		t.Fatalf("err = %v, want it to say the flag set is not parsed", err)
	}
}

// TestFlagNamesAreFree: no option's flag is one the test binary (go test's
// -test.*, this package's -update) or e2e-framework (its envconf flags and
// klog's, which its flag parsing registers) already has.
func TestFlagNamesAreFree(t *testing.T) {
	if flag.Lookup("kubeconfig") == nil {
		// Registers e2e-framework's flags on flag.CommandLine, as
		// envconf.NewFromFlags does; once per test binary, as flag allows.
		if _, err := e2eflags.ParseArgs(nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"test.v", "test.run", "kubeconfig", "namespace", "parallel", "context", "v"} {
		if flag.Lookup(name) == nil {
			t.Fatalf("flag.CommandLine has no -%s: the check below would prove nothing", name)
		}
	}
	for _, opt := range optionTable() {
		if f := flag.Lookup(opt.flag); f != nil {
			t.Errorf("-%s is taken already: %s", opt.flag, f.Usage)
		}
		if strings.HasPrefix(opt.flag, "test.") {
			t.Errorf("-%s has go test's prefix test.", opt.flag)
		}
	}
}

// TestHelp: -help lists every option with flag, variable, default and
// meaning, then the flag set's other flags, without ours again.
func TestHelp(t *testing.T) {
	fs := flag.NewFlagSet("e2e.test", flag.ContinueOnError)
	fs.Bool("test.v", false, "verbose: print additional output")
	RegisterFlags(fs)
	var out bytes.Buffer
	fs.SetOutput(&out)
	if err := fs.Parse([]string{"-help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-help) = %v, want flag.ErrHelp", err)
	}
	help := out.String()
	ours, others, ok := strings.Cut(help, "\nOther flags:\n")
	if !ok || !strings.Contains(others, "-test.v") {
		t.Fatalf("-help has no other flags section listing -test.v:\n%s", help)
	}
	for _, o := range optionTable() {
		entry := "  -" + o.flag + "  " + o.env + "  default: " + plain(o.defaultText()) + "\n        " + plain(o.meaning) + "\n"
		if !strings.Contains(ours, entry) {
			t.Errorf("-help lacks\n%s", entry)
		}
		if strings.Contains(others, "-"+o.flag+" ") || strings.Contains(others, "-"+o.flag+"\n") {
			t.Errorf("-help lists -%s again among the other flags:\n%s", o.flag, others)
		}
	}
	var direct bytes.Buffer
	PrintUsage(&direct)
	if direct.String() != ours+"\n" && direct.String() != ours {
		t.Errorf("PrintUsage differs from -help's options part:\n%s\n---\n%s", direct.String(), ours)
	}
}

// TestOptionTable: every Options field has its row (or is set by the
// caller), every row names a field, and no flag, variable or meaning is
// missing or twice.
func TestOptionTable(t *testing.T) {
	notOptions := map[string]string{"Root": "ResolveOptions' root", "Deadline": "set by the caller from go test -timeout"}
	rows := map[string]string{}
	flags, vars := map[string]bool{}, map[string]bool{}
	for _, o := range optionTable() {
		switch {
		case o.flag == "" || o.env == "" || o.meaning == "" || o.field == "" || o.resolve == nil:
			t.Errorf("option %+v lacks a flag, variable, meaning, field or resolve", o)
		case flags[o.flag] || vars[o.env]:
			t.Errorf("-%s / %s declared twice", o.flag, o.env)
		case o.def == "" && o.defNote == "":
			t.Errorf("-%s says nothing of its default", o.flag)
		case strings.HasSuffix(o.meaning, "."):
			t.Errorf("-%s: the meaning %q ends in a period; the docs add it", o.flag, o.meaning)
		}
		flags[o.flag], vars[o.env] = true, true
		if prev, ok := rows[o.field]; ok {
			t.Errorf("field %s is set by -%s and -%s", o.field, prev, o.flag)
		}
		rows[o.field] = o.flag
	}
	typ := reflect.TypeFor[Options]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		_, row := rows[f.Name]
		_, caller := notOptions[f.Name]
		if row == caller {
			t.Errorf("Options.%s: an option row (%t) or set by the caller (%t): want exactly one", f.Name, row, caller)
		}
	}
	for field, fl := range rows {
		if _, ok := typ.FieldByName(field); !ok {
			t.Errorf("-%s names field %s, which Options does not have", fl, field)
		}
	}
}

// TestOptionsMarkdown: one row per option naming its flag and variable, no
// cell longer than a reader takes in at a glance.
func TestOptionsMarkdown(t *testing.T) {
	const maxCell = 160
	lines := strings.Split(strings.TrimSuffix(OptionsMarkdown(), "\n"), "\n")
	all := optionTable()
	if len(lines) != 2+len(all) {
		t.Fatalf("%d lines, want a header, a rule and %d rows:\n%s", len(lines), len(all), OptionsMarkdown())
	}
	for i, o := range all {
		row := lines[2+i]
		if !strings.HasPrefix(row, "| `-"+o.flag+"` / `"+o.env+"` | ") {
			t.Errorf("row %d = %s, want -%s / %s first", i, row, o.flag, o.env)
		}
		cells := strings.Split(strings.Trim(row, "|"), " | ")
		if len(cells) != 3 {
			t.Errorf("row %d has %d cells, want 3 (a | in a text?): %s", i, len(cells), row)
		}
		for _, c := range cells {
			if n := len([]rune(strings.TrimSpace(c))); n > maxCell {
				t.Errorf("-%s: a cell of %d characters, over %d: %s", o.flag, n, maxCell, c)
			}
		}
	}
	doc := ConfigurationDoc()
	for _, o := range all {
		if !strings.Contains(doc, "### `-"+o.flag+"` / `"+o.env+"`\n") || (o.details != "" && !strings.Contains(doc, o.details)) {
			t.Errorf("docs/configuration.md lacks -%s or its details", o.flag)
		}
	}
}

const (
	optionsBegin = "<!-- options:begin -->"
	optionsEnd   = "<!-- options:end -->"
)

// TestGeneratedDocs: README.md holds exactly OptionsMarkdown() between its
// option markers and docs/configuration.md is ConfigurationDoc(); -update
// writes both.
func TestGeneratedDocs(t *testing.T) {
	docPath := filepath.Join("..", "..", "docs", "configuration.md")
	readmePath := filepath.Join("..", "..", "README.md")
	if *update {
		if err := os.WriteFile(docPath, []byte(ConfigurationDoc()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("reading %s (go test ./harness/fleetenv -run TestGeneratedDocs -update writes it): %v", docPath, err)
	}
	if diff := firstDifference(ConfigurationDoc(), string(doc)); diff != "" {
		t.Errorf("%s is not generated from the option table (-update rewrites it): %s", docPath, diff)
	}

	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readme), "\n")
	begin, end := slices.Index(lines, optionsBegin), slices.Index(lines, optionsEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s has no line %s followed by a line %s around the option table", readmePath, optionsBegin, optionsEnd)
	}
	table := strings.Join(lines[begin+1:end], "\n") + "\n"
	if *update {
		fresh := slices.Concat(lines[:begin+1], strings.Split(strings.TrimSuffix(OptionsMarkdown(), "\n"), "\n"), lines[end:])
		if err := os.WriteFile(readmePath, []byte(strings.Join(fresh, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		table = OptionsMarkdown()
	}
	if diff := firstDifference(OptionsMarkdown(), table); diff != "" {
		t.Errorf("%s's option table (after line %d) is not OptionsMarkdown() (-update rewrites it): %s", readmePath, begin+1, diff)
	}
}

// firstDifference names the first line where got differs from want; "" when
// they are equal.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		switch {
		case i >= len(g):
			return fmt.Sprintf("it ends before line %d, want\n\t%q", i+1, w[i])
		case i >= len(w):
			return fmt.Sprintf("line %d is one too many:\n\t%q", i+1, g[i])
		case w[i] != g[i]:
			return fmt.Sprintf("line %d is\n\t%q\nwant\n\t%q", i+1, g[i], w[i])
		}
	}
	return ""
}

func TestFirstDifference(t *testing.T) {
	for _, tc := range []struct{ want, got, diff string }{
		{"a\nb\n", "a\nb\n", ""},
		{"a\nb\n", "a\nc\n", "line 2 is\n\t\"c\"\nwant\n\t\"b\""},
		{"a\nb\n", "a\nb\nc\n", "line 3 is\n\t\"c\"\nwant\n\t\"\""},
		{"a\n", "a", "it ends before line 2, want\n\t\"\""},
		{"a", "a\n", "line 2 is one too many:\n\t\"\""},
	} {
		if got := firstDifference(tc.want, tc.got); got != tc.diff {
			t.Errorf("firstDifference(%q, %q) = %q, want %q", tc.want, tc.got, got, tc.diff)
		}
	}
}
