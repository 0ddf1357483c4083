package renderdiff

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flux-fleet/flux-fleet/fixtures/upgrades"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
	"github.com/flux-fleet/flux-fleet/harness/preflight"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// testOptions renders for the kind node's Kubernetes version, with a cache
// and chart server directory of the test's own.
func testOptions(t *testing.T) Options {
	t.Helper()
	kv, err := preflight.KitKubeVersion(testsupport.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	return Options{KubeVersion: kv, CacheDir: t.TempDir(), TempDir: t.TempDir(), RequestTimeout: 5 * time.Second, Timeout: time.Minute}
}

// pairTrees materializes an upgrade pair's two sides as fleet directories.
func pairTrees(t *testing.T, name string) (base, head Tree) {
	t.Helper()
	p, err := upgrades.Load(testsupport.RepoRoot(t), name)
	if err != nil {
		t.Fatal(err)
	}
	base, head = Tree{Label: "base", FleetDir: t.TempDir()}, Tree{Label: "head", FleetDir: t.TempDir()}
	for _, err := range []error{p.WriteBase(base.FleetDir), p.WriteBase(head.FleetDir), p.WriteHead(head.FleetDir)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return base, head
}

// summary lists an environment's changes as "owner: change object" and
// "owner: chart base → head" lines, in report order.
func summary(e *EnvDiff) []string {
	out := []string{}
	for _, o := range e.Owners {
		if rc := o.Release; rc != nil {
			line := fmt.Sprintf("%s: chart %s → %s", o.Owner, rc.BaseChart, rc.HeadChart)
			if rc.ValuesDiff != "" {
				line += ", values changed"
			}
			out = append(out, line)
		}
		for _, c := range o.Objects {
			out = append(out, fmt.Sprintf("%s: %s %s", o.Owner, c.Change, c.Object))
		}
	}
	return out
}

func envDiff(t *testing.T, r *Report, name string) *EnvDiff {
	t.Helper()
	for _, e := range r.Envs {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no environment %s in the report", name)
	return nil
}

// TestUpgradePairs diffs every upgrade fixture pair offline: exactly the
// objects the head changes, and exactly the hazards the upgrade scenarios
// meet on kind (e2e/scenarios/upgrade_test.go): the API server refusing
// the selector of Deployment/apps/fleet-app, and the Service the Ingress
// routes to pruned.
func TestUpgradePairs(t *testing.T) {
	const apps = "Kustomization/flux-system/apps"
	tests := map[string]struct {
		changes []string
		hazards func(env string) []Hazard
	}{
		"new-message": {
			changes: []string{apps + ": changed Deployment/apps/fleet-app"},
			hazards: func(string) []Hazard { return []Hazard{} },
		},
		"immutable-selector": {
			changes: []string{apps + ": changed Deployment/apps/fleet-app"},
			hazards: func(env string) []Hazard {
				return []Hazard{{Env: env, Owner: apps, Object: "Deployment/apps/fleet-app", Field: "spec.selector", Reason: reasonImmutable,
					Base: `{"matchLabels":{"app.kubernetes.io/name":"fleet-app"}}`,
					Head: `{"matchLabels":{"app.kubernetes.io/component":"web","app.kubernetes.io/name":"fleet-app"}}`}}
			},
		},
		"prune-in-use": {
			changes: []string{apps + ": removed Service/apps/fleet-app"},
			hazards: func(env string) []Hazard {
				return []Hazard{{Env: env, Owner: apps, Object: "Service/apps/fleet-app",
					Reason: "removed while still in use: Flux prunes it and what uses it breaks",
					Base:   "applied by " + apps,
					Head:   "gone; still used by Ingress/apps/fleet-app (spec.rules[0].http.paths[0].backend.service.name)"}}
			},
		},
	}
	names, err := upgrades.Names(testsupport.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range tests {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(names, got) {
		t.Fatalf("fixtures/upgrades has pairs %v; this test covers %v", names, got)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			base, head := pairTrees(t, name)
			report, err := Compare(t.Context(), base, head, testOptions(t))
			if err != nil {
				t.Fatal(err)
			}
			if !report.Changed() {
				t.Error("Changed() = false for a pair whose head changes the fleet")
			}
			for _, env := range []string{"production", "staging"} {
				e := envDiff(t, report, env)
				if diff := cmp.Diff(tests[name].changes, summary(e)); diff != "" {
					t.Errorf("%s: changes (-want +got):\n%s", env, diff)
				}
				if diff := cmp.Diff(tests[name].hazards(env), e.Hazards); diff != "" {
					t.Errorf("%s: hazards (-want +got):\n%s", env, diff)
				}
			}
		})
	}
}

// TestImmutableSelectorReadsLikeTheAPIServer checks the hazard line against
// what the upgrade run on kind reports for the same pair: the object, the
// field and "field is immutable".
func TestImmutableSelectorReadsLikeTheAPIServer(t *testing.T) {
	base, head := pairTrees(t, "immutable-selector")
	report, err := Compare(t.Context(), base, head, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	kind := regexp.MustCompile(`^staging: Deployment/apps/fleet-app \(Kustomization/flux-system/apps\): spec\.selector: field is immutable`)
	var staging []string
	for _, h := range report.Hazards() {
		if h.Env == "staging" {
			staging = append(staging, h.String())
		}
	}
	if len(staging) != 1 || !kind.MatchString(staging[0]) {
		t.Errorf("staging hazards %q, want one matching %s", staging, kind)
	}
}

// settingsTrees are the test fleet (testdata/fleet, one HelmRelease of
// testdata/charts/settings from the chart server, one Secret of its own)
// as base and head; edit changes the head.
func settingsTrees(t *testing.T, edits ...[3]string) (base, head Tree) {
	t.Helper()
	charts, err := filepath.Abs(filepath.Join("testdata", "charts"))
	if err != nil {
		t.Fatal(err)
	}
	base = Tree{Label: "base", FleetDir: t.TempDir(), ChartDirs: []string{charts}}
	head = Tree{Label: "head", FleetDir: t.TempDir(), ChartDirs: []string{charts}}
	copyDir(t, filepath.Join("testdata", "fleet"), base.FleetDir)
	copyDir(t, filepath.Join("testdata", "fleet"), head.FleetDir)
	for _, e := range edits {
		editFile(t, filepath.Join(head.FleetDir, e[0]), e[1], e[2])
	}
	return base, head
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// editFile replaces old by new in a file; the test fails if old is not there.
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestValuesChangeOnlyInConfigMap changes a value only the chart's
// ConfigMap uses: the HelmRelease (its values) and that one rendered object
// change, nothing else.
func TestValuesChangeOnlyInConfigMap(t *testing.T) {
	base, head := settingsTrees(t, [3]string{"apps/release.yaml", "greeting: hello", "greeting: bonjour"})
	report, err := Compare(t.Context(), base, head, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	e := envDiff(t, report, "staging")
	want := []string{
		"Kustomization/flux-system/apps: changed HelmRelease/settings/settings",
		"HelmRelease/settings/settings: chart settings@1.0.0 → settings@1.0.0, values changed",
		"HelmRelease/settings/settings: changed ConfigMap/settings/settings-greeting",
	}
	if diff := cmp.Diff(want, summary(e)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if len(e.Hazards) != 0 {
		t.Errorf("hazards: %v", e.Hazards)
	}
	cm := e.Owners[1].Objects[0].Diff
	for _, line := range []string{"-  greeting: hello", "+  greeting: bonjour"} {
		if !strings.Contains(cm, "\n"+line+"\n") {
			t.Errorf("the ConfigMap's diff lacks %q:\n%s", line, cm)
		}
	}
	const chartLine = "    chart: settings@1.0.0 (HelmRepository/flux-system/charts http://chart-server.flux-system.svc.cluster.local), unchanged\n"
	if text := textOf(t, report); !strings.Contains(text, chartLine) {
		t.Errorf("text output lacks %q:\n%s", chartLine, text)
	}
	if !strings.Contains(e.Owners[1].Release.ValuesDiff, "\n+greeting: bonjour\n") {
		t.Errorf("the values diff lacks the new greeting:\n%s", e.Owners[1].Release.ValuesDiff)
	}
}

// TestSameTreeHasNoChanges renders one tree on both sides: nothing may
// differ, so nothing a render stamps per run is left in the comparison.
func TestSameTreeHasNoChanges(t *testing.T) {
	base, _ := settingsTrees(t)
	head := base
	head.Label = "head"
	report, err := Compare(t.Context(), base, head, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if report.Changed() || len(report.Hazards()) != 0 {
		t.Errorf("the same tree differs from itself: %s", textOf(t, report))
	}
}

func textOf(t *testing.T, r *Report) string {
	t.Helper()
	var b strings.Builder
	if err := r.WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSecretValuesNeverPrinted changes the Secret the Kustomization applies
// (both forms) and the one the chart renders: each shows as changed, with
// digests, and no output holds a value, plain or base64.
func TestSecretValuesNeverPrinted(t *testing.T) {
	base, head := settingsTrees(t,
		[3]string{"apps/token.yaml", "token: plain-secret-base", "token: plain-secret-head"},
		[3]string{"apps/token.yaml", "ZW5jb2RlZC1zZWNyZXQtYmFzZQ==", base64.StdEncoding.EncodeToString([]byte("encoded-secret-head"))},
		[3]string{"apps/release.yaml", "passwordBase64: Y2hhcnQtc2VjcmV0LWJhc2U=", "passwordBase64: " + base64.StdEncoding.EncodeToString([]byte("chart-secret-head"))})
	report, err := Compare(t.Context(), base, head, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	got := summary(envDiff(t, report, "staging"))
	for _, want := range []string{
		"Kustomization/flux-system/apps: changed Secret/settings/token",
		"HelmRelease/settings/settings: changed Secret/settings/settings-password",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("changes lack %q: %v", want, got)
		}
	}
	var text, markdown, js strings.Builder
	for _, err := range []error{report.WriteText(&text, true), report.WriteMarkdown(&markdown), report.WriteJSON(&js)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The chart's value comes base64-encoded in the HelmRelease's values,
	// which are no Secret; only the Secret it renders holds it plain.
	var planted []string
	for _, side := range []string{"base", "head"} {
		for _, s := range []string{"plain-secret-", "encoded-secret-"} {
			planted = append(planted, s+side, base64.StdEncoding.EncodeToString([]byte(s+side)))
		}
		planted = append(planted, "chart-secret-"+side)
	}
	for format, out := range map[string]string{"text": text.String(), "markdown": markdown.String(), "json": js.String()} {
		for _, p := range planted {
			if strings.Contains(out, p) {
				t.Errorf("%s output holds the secret value %q", format, p)
			}
		}
		if !strings.Contains(out, "(secret value: sha256 ") {
			t.Errorf("%s output shows no digest of the changed Secret values", format)
		}
	}
}

// TestUnreachableChartSource is a chart source nothing answers: the error
// names the release and the source, within the request bound.
func TestUnreachableChartSource(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	base, head := settingsTrees(t)
	editFile(t, filepath.Join(head.FleetDir, "apps", "source.yaml"), "http://chart-server.flux-system.svc.cluster.local", "http://"+closed)
	opts := testOptions(t)
	start := time.Now()
	_, err = Compare(t.Context(), base, head, opts)
	took := time.Since(start)
	want := "head: not every HelmRelease could be rendered:\n  staging: HelmRelease/settings/settings did not render: source unreachable: http://" +
		closed + "/index.yaml: dial tcp " + closed + ": connect: connection refused"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	// A refused connection fails at once; the bound is the request timeout
	// plus a margin for rendering both sides on a busy machine.
	if limit := opts.RequestTimeout + 20*time.Second; took > limit {
		t.Errorf("took %s, more than %s", took, limit)
	}
}

// TestUnknownEnvironment is an environment neither side has.
func TestUnknownEnvironment(t *testing.T) {
	base, head := settingsTrees(t)
	opts := testOptions(t)
	opts.Envs = []string{"qa"}
	_, err := Compare(t.Context(), base, head, opts)
	want := fmt.Sprintf(`environment "qa" is in neither %s/clusters (base) nor %s/clusters (head)`, base.FleetDir, head.FleetDir)
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// TestHelmFixtureFleet renders the real-fleet-shaped Helm fixture fleet
// (its charts: fixtures/charts and the offline kit's podinfo) on both
// sides: nothing differs. It logs how long a warm run takes.
func TestHelmFixtureFleet(t *testing.T) {
	root := testsupport.RepoRoot(t)
	charts := []string{filepath.Join(root, "fixtures", "charts")}
	extra := kitExtraCharts(t)
	tree := Tree{Label: "base", FleetDir: filepath.Join(root, "fixtures", "fleets", "helm"), ChartDirs: append(charts, extra...)}
	head := tree
	head.Label = "head"
	opts := testOptions(t)
	for _, run := range []string{"cold", "warm"} {
		report, err := Compare(t.Context(), tree, head, opts)
		if err != nil {
			t.Fatal(err)
		}
		if report.Changed() || len(report.Hazards()) != 0 {
			t.Fatalf("the Helm fixture fleet differs from itself:\n%s", textOf(t, report))
		}
		t.Logf("%s run: both environments, both sides in %.2fs", run, report.Duration.Seconds())
	}
}

// kitExtraCharts are the offline kit's extra charts (podinfo), which the
// Helm fixture fleet needs. Without a built kit the test skips with
// -short, fails under CI and skips elsewhere.
func kitExtraCharts(t *testing.T) []string {
	t.Helper()
	p, err := kitprofile.FromEnv()
	if err == nil && len(p.ExtraCharts) == 0 {
		var path string
		if path, err = kitprofile.ProfilePath(); err == nil {
			p, err = kitprofile.Load(path)
		}
	}
	if err != nil || len(p.ExtraCharts) == 0 {
		if testing.Short() {
			// The CI check job runs -short without building the kit; the
			// full suite (make test) builds it first and runs this test.
			t.Skipf("-short: the offline kit's extra charts (podinfo) are not built: %v", err)
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("the offline kit's extra charts (podinfo) are missing: %v (run make offline-images)", err)
		}
		t.Skipf("the offline kit's extra charts (podinfo) are missing: %v (run make offline-images)", err)
	}
	return p.ExtraCharts
}

// TestJSONRoundTrip checks that the JSON output is the report.
func TestJSONRoundTrip(t *testing.T) {
	base, head := pairTrees(t, "prune-in-use")
	report, err := Compare(context.Background(), base, head, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := report.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	report.Duration = 0
	if diff := cmp.Diff(report, &back); diff != "" {
		t.Errorf("JSON round trip (-report +decoded):\n%s", diff)
	}
}
