// Package scenarios runs the harness against fleets that must fail, and the
// fix-and-re-run loop of a kept cluster: each broken fixture fleet must fail
// fast naming the object and the reason, a fleet the offline tier rejects
// must fail before any cluster exists, the real fleet must fail fast where
// no chart repository or registry is reachable, and an edit to a broken
// fleet must be re-synced to the same cluster in seconds.
package scenarios

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/preflight"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// interrupted is the process's signal context, set once by TestMain: a
// SIGINT ends every scenario's waits, and each scenario's cleanup deletes its
// cluster before the process exits.
var interrupted context.Context

func TestMain(m *testing.M) {
	// controller-runtime (used by the ssa applier) warns with a stack trace
	// when no logger is set; the harness reports through its own lines.
	ctrllog.SetLogger(logr.Discard())
	ctx, interrupts := fleetenv.WatchInterrupts(context.Background())
	interrupted = ctx
	code := m.Run()
	interrupts.Stop()
	os.Exit(interrupts.ExitCode(code))
}

// requireKind skips (or, under CI=true, fails) where no Docker engine runs.
func requireKind(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("creates kind clusters; skipped with -short")
	}
	if err := fleetenv.Available(t.Context()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and this machine cannot run kind clusters: %v", err)
		}
		t.Skip(err)
	}
}

// options returns the run options for one scenario: the E2E_* variables'
// settings, with the given fleet and one env (staging) on a cluster of its own.
func options(t *testing.T, fleetDir, clusterPrefix string) fleetenv.Options {
	t.Helper()
	opts, err := fleetenv.OptionsFromEnv(testsupport.RepoRoot(t))
	if err != nil {
		t.Fatalf("options: %v", err)
	}
	opts.FleetDir, opts.Envs, opts.ClusterPrefix = fleetDir, []string{"staging"}, clusterPrefix
	if os.Getenv("E2E_KEEP") == "" {
		opts.Keep = cluster.KeepNever
	}
	opts.Timeout = 6 * time.Minute
	if os.Getenv("E2E_POD_FAILURE_GRACE") == "" {
		opts.PodFailureGrace = 20 * time.Second
	}
	return opts
}

// requireKit skips tests of fixture fleets where the offline kit's images are
// not loaded, or fails under CI=true.
func requireKit(t *testing.T, opts fleetenv.Options) {
	t.Helper()
	requireKind(t)
	if !strings.Contains(strings.Join(opts.Kit.PreloadImages, ","), "fleet-kit/") {
		msg := "fixture fleets run on images the offline kit builds (the profile E2E_KIT names has no fleet-kit/ image): run `make test`, which builds and loads them"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// bringUp runs every step and registers the teardown; it returns the staging
// environment and the time from start to the end of the wait.
func bringUp(t *testing.T, opts fleetenv.Options) (*fleetenv.Run, *fleetenv.Environment, time.Duration) {
	t.Helper()
	run := newRun(t, opts)
	e, took := up(t, run)
	return run, e, took
}

// newRun prepares a run whose progress goes to owner's log (and also) and
// whose clusters are deleted when owner ends.
func newRun(owner *testing.T, opts fleetenv.Options, also ...io.Writer) *fleetenv.Run {
	run := fleetenv.New(opts, io.MultiWriter(append([]io.Writer{testWriter{owner}}, also...)...))
	owner.Cleanup(func() {
		run.MarkFailed() // every scenario fails on purpose: keep only if E2E_KEEP=always
		if err := run.Down(context.Background()); err != nil {
			owner.Errorf("tearing down: %v", err)
		}
	})
	return run
}

// up runs every step of run, failing t when one cannot run, and returns
// the staging environment and the time to the end of the wait.
func up(t *testing.T, run *fleetenv.Run) (*fleetenv.Environment, time.Duration) {
	t.Helper()
	start := time.Now()
	err := run.Up(contextBeforeTestTimeout(t))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	e := run.Env("staging")
	if e == nil {
		t.Fatal("environment staging was not brought up")
	}
	return e, took
}

// failure is what a broken fleet must be reported as: the object (exactly,
// or by a pattern where the name is generated, as for pods) and the reason.
type failure struct {
	object  *regexp.Regexp
	reason  string
	message *regexp.Regexp
	// summary, when set, must match the diagnostics screen (log lines).
	summary *regexp.Regexp
}

// TestBrokenFleetsFailFast brings every broken fixture fleet up in turn on
// one cluster, the way a user fixes one rollout after another on a kept
// cluster: the first fleet on a fresh cluster, each next one edited into the
// served copy and published after the previous one was cleared off (Flux
// prunes it, helm-controller uninstalls its releases). Each must fail fast
// naming the object and the reason.
func TestBrokenFleetsFailFast(t *testing.T) {
	t.Parallel() // see parallelNote
	tests := []struct {
		fleet string
		want  failure
	}{
		{"broken-image", failure{regexp.MustCompile(`^Pod/apps/fleet-app-[a-z0-9]+-[a-z0-9]+$`), "ImagePullBackOff", regexp.MustCompile(`fleet-kit/fleet-app:does-not-exist`), nil}},
		{"unschedulable", failure{regexp.MustCompile(`^Pod/apps/fleet-app-[a-z0-9]+-[a-z0-9]+$`), "Unschedulable", regexp.MustCompile(`Insufficient cpu`), nil}},
		{"wrong-path", failure{regexp.MustCompile(`^Kustomization/flux-system/apps$`), "ArtifactFailed", regexp.MustCompile(`kustomization path not found`), nil}},
		{"helm-no-version", failure{regexp.MustCompile(`^HelmChart/flux-system/redis-redis$`), "ChartPullError", regexp.MustCompile(`>=9\.0\.0`), nil}},
		{"helm-bad-value", failure{regexp.MustCompile(`^HelmRelease/nginx/nginx$`), "InstallFailed", regexp.MustCompile(`values don't meet the specifications of the schema`), nil}},
		{"helm-never-ready", failure{regexp.MustCompile(`^Pod/nginx/nginx-[a-z0-9]+-[a-z0-9]+$`), "NotReady", regexp.MustCompile(`running since .* but not ready.*last probe failure: Readiness probe failed: HTTP probe failed with statuscode: 404`), nil}},
		{"helm-missing-image", failure{regexp.MustCompile(`^Pod/podinfo/podinfo-[a-z0-9]+-[a-z0-9]+$`), "ImagePullBackOff", regexp.MustCompile(`ghcr\.io/stefanprodan/podinfo`), nil}},
	}
	shared := newSharedCluster(t, "ff-broken-", func(opts *fleetenv.Options) {
		// The clusters' own fail-fast is what is proven here; the checks
		// before any cluster are TestPreflightStopsBrokenFleets and
		// TestInvalidFleetFailsBeforeAnyCluster.
		opts.OfflineChecks, opts.Preflight = false, false
	})
	// A pod failure and a HelmRelease failure are also looked at in a
	// browser, as a person opens the report.
	inBrowser := []string{"broken-image", "helm-bad-value"}
	for _, tt := range tests {
		t.Run(tt.fleet, func(t *testing.T) {
			e, took := shared.bringUp(t, tt.fleet)
			assertFailedFast(t, e, took, tt.want)
			dir, rep := fleetReport(t, shared.run, tt.fleet)
			assertFailureReported(t, dir, rep, tt.want)
			if tt.fleet == "helm-bad-value" {
				assertPlantedValueHidden(t, e, shared)
			}
			if slices.Contains(inBrowser, tt.fleet) {
				t.Run("report-in-a-browser", func(t *testing.T) { lookAtFailedReport(t, dir, stagingOf(t, rep).Failure) })
			}
		})
	}
}

// sharedCluster is one staging cluster that fixture fleets are brought up
// on in turn, the way a user fixes one rollout after another on a kept
// cluster: the first fleet with every step on a fresh cluster, each next
// one edited into the served copy and published after the previous one was
// cleared off (Flux prunes it, helm-controller uninstalls its releases).
// A cluster and a Flux install are made once for the whole group.
type sharedCluster struct {
	owner     *testing.T // the group's test: the cluster lives as long as it
	prefix    string
	configure func(*fleetenv.Options)
	served    string
	run       *fleetenv.Run
	log       testsupport.SyncBuffer // what run wrote
	last      string
	// dirty: a fleet could not be cleared or published; those after it
	// would be judged on a cluster in an unknown state.
	dirty bool
}

func newSharedCluster(t *testing.T, prefix string, configure func(*fleetenv.Options)) *sharedCluster {
	return &sharedCluster{owner: t, prefix: prefix, configure: configure, served: t.TempDir()}
}

// bringUp puts fixture fleet name on the cluster and returns its
// environment with the readiness outcome, and the time from the start (or
// the publish) to the verdict.
func (s *sharedCluster) bringUp(t *testing.T, name string) (*fleetenv.Environment, time.Duration) {
	t.Helper()
	if s.dirty {
		t.Fatalf("not run: the shared cluster is in an unknown state since %s", s.last)
	}
	previous := s.last
	s.last = name
	if s.run == nil {
		copyFleet(t, s.served, name)
		opts := options(t, s.served, s.prefix)
		if s.configure != nil {
			s.configure(&opts)
		}
		opts.ArtifactsDir = sharedArtifactsDir(s.owner, opts.ArtifactsDir)
		requireKit(t, opts)
		s.run = newRun(s.owner, opts, &s.log)
		s.dirty = true // until the bring-up returned
		e, took := up(t, s.run)
		s.dirty = false
		logTimeToFail(t, s.run)
		return e, took
	}
	ctx := contextBeforeTestTimeout(t)
	s.dirty = true
	cleared, err := s.run.Publisher().Clear(ctx)
	if err != nil {
		t.Fatalf("clearing %s off the shared cluster: %v", previous, err)
	}
	t.Logf("%s cleared off the cluster in %s", previous, cleared.Round(100*time.Millisecond))
	copyFleet(t, s.served, name)
	took, err := s.run.Publisher().Republish(ctx)
	if err != nil {
		t.Fatalf("publishing %s: %v", name, err)
	}
	s.dirty = false
	t.Logf("verdict %s after the publish", took.Round(100*time.Millisecond))
	return s.run.Env("staging"), took
}

// edit runs f on the served copy of the current fleet and publishes it:
// the edit → re-sync loop on the kept cluster.
func (s *sharedCluster) edit(t *testing.T, f func(dir string)) time.Duration {
	t.Helper()
	f(s.served)
	took, err := s.run.Publisher().Republish(contextBeforeTestTimeout(t))
	if err != nil {
		s.dirty = true
		t.Fatalf("re-sync after editing %s: %v", s.last, err)
	}
	return took
}

// realFleet names the repository's own fleet in sharedCluster.bringUp.
const realFleet = "the real fleet"

// copyFleet makes dir hold exactly the fixture fleet name, or the
// repository's own fleet (its apps, infrastructure and clusters) for
// realFleet.
func copyFleet(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if err := os.RemoveAll(filepath.Join(dir, en.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if name != realFleet {
		if err := os.CopyFS(dir, os.DirFS(filepath.Join(testsupport.RepoRoot(t), "fixtures", "fleets", name))); err != nil {
			t.Fatalf("copying fleet %s: %v", name, err)
		}
		return
	}
	for _, sub := range []string{"apps", "infrastructure", "clusters"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join(testsupport.RepoRoot(t), sub))); err != nil {
			t.Fatalf("copying the real fleet's %s: %v", sub, err)
		}
	}
}

func assertFailedFast(t *testing.T, e *fleetenv.Environment, took time.Duration, want failure) {
	t.Helper()
	if e.Ready == nil {
		t.Fatalf("the environment became Ready; want %s to fail with %s", want.object, want.reason)
	}
	var got *readiness.FailureError
	if !errors.As(e.Ready, &got) {
		t.Fatalf("want a fail-fast *readiness.FailureError, got %T: %v", e.Ready, e.Ready)
	}
	if !want.object.MatchString(got.Object) || got.Reason != want.reason {
		t.Errorf("failed object %q reason %q; want object %s reason %s (%v)", got.Object, got.Reason, want.object, want.reason, got)
	}
	if !want.message.MatchString(got.Error()) {
		t.Errorf("failure %q does not say %s", got.Error(), want.message)
	}
	if want.summary != nil && !want.summary.MatchString(e.Summary) {
		t.Errorf("the diagnostics summary does not show %s:\n%s", want.summary, e.Summary)
	}
	if !strings.Contains(e.Summary, got.Object) || !strings.Contains(e.Summary, want.reason) {
		t.Errorf("the diagnostics summary does not show %s with %s:\n%s", got.Object, want.reason, e.Summary)
	}
	t.Logf("failed fast in %s (setup included): %v", took.Round(100*time.Millisecond), got)
}

// logTimeToFail prints how long the readiness wait ran before it failed:
// the time from the sync to the verdict.
func logTimeToFail(t *testing.T, run *fleetenv.Run) {
	t.Helper()
	for _, st := range run.Timings() {
		if st.Name == "wait" {
			t.Logf("time to fail after the sync: %s", st.Took.Round(100*time.Millisecond))
		}
	}
}

// TestPreflightStopsBrokenFleets: the broken HelmRelease fleets that can be
// told from their charts alone fail at the pre-flight, in seconds, before
// any cluster exists, each with exactly one finding: its file, object and
// reason.
func TestPreflightStopsBrokenFleets(t *testing.T) {
	helmRelease := func(ns, name string) validate.ObjectRef {
		return validate.ObjectRef{Kind: "HelmRelease", Namespace: ns, Name: name}
	}
	tests := []struct {
		fleet string
		want  preflight.Finding
	}{
		{"helm-no-version", preflight.Finding{File: "infrastructure/redis/release.yaml", Object: helmRelease("redis", "redis"),
			Reason: `spec.chart.spec.version ">=9.0.0": no tag matches at oci://` + chartserver.InClusterHost + `/charts/redis (newest: 0.1.0)`}},
		{"helm-bad-value", preflight.Finding{File: "infrastructure/nginx/release.yaml", Object: helmRelease("nginx", "nginx"),
			Reason: "values rejected by values.schema.json of chart nginx 0.1.0: nginx: at '/clusterDomain': '<" + testsupport.PlantedValueDigest +
				">' does not match pattern " + testsupport.PlantedValuePattern + "; nginx: at '/replicaCount': got string, want integer"}},
		// Offline the clusters can pull nothing: an image the kit did not
		// build is a finding without asking a registry.
		{"helm-missing-image", preflight.Finding{File: "apps/base/podinfo/release.yaml", Object: helmRelease("podinfo", "podinfo"),
			Reason: "image ghcr.io/stefanprodan/podinfo:does-not-exist: not among the images the clusters have (KnownImages), and they cannot pull others"}},
	}
	for _, tt := range tests {
		t.Run(tt.fleet, func(t *testing.T) {
			opts := options(t, filepath.Join(testsupport.RepoRoot(t), "fixtures", "fleets", tt.fleet), "ff-pre-")
			requirePreflightKit(t, opts)
			run := fleetenv.New(opts, testWriter{t})
			t.Cleanup(func() { _ = run.Down(context.Background()) })
			start := time.Now()
			err := run.Up(t.Context())
			took := time.Since(start)
			if err == nil {
				t.Fatal("a broken fleet passed the pre-flight")
			}
			if !strings.HasPrefix(err.Error(), "pre-flight: ") {
				t.Fatalf("want the pre-flight step to fail, got: %v", err)
			}
			want := tt.want
			want.Env = "staging"
			if got := reportedFindings(err); !slices.Equal(got, []string{want.String()}) {
				t.Fatalf("pre-flight findings:\n  %s\nwant exactly:\n  %s\n(error: %v)", strings.Join(got, "\n  "), want, err)
			}
			if run.Env("staging") != nil {
				t.Fatal("a cluster was created for a fleet the pre-flight rejects")
			}
			t.Logf("stopped by the pre-flight in %s: %v", took.Round(10*time.Millisecond), err)
		})
	}
}

// reportedFindings are the findings a pre-flight error lists, one per
// "FAIL " line of its report (the format the README documents).
func reportedFindings(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if f, ok := strings.CutPrefix(line, "FAIL "); ok {
			out = append(out, f)
		}
	}
	return out
}

// requirePreflightKit skips (under CI=true fails) where the pre-flight
// cannot judge the Helm fixture fleets as the kit's clusters would: it needs
// the kit's podinfo chart (FLEET_EXTRA_CHARTS) and its offline mode (only
// the kit's images count as pullable).
func requirePreflightKit(t *testing.T, opts fleetenv.Options) {
	t.Helper()
	if len(opts.Kit.ExtraCharts) > 0 && opts.Offline() {
		return
	}
	msg := "the pre-flight of the Helm fixture fleets needs the offline kit profile (E2E_KIT, with podinfo's chart and the Flux manifests): run `make test`, which builds and loads it"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestInvalidFleetFailsBeforeAnyCluster: a fleet the offline tier rejects
// fails in seconds, before any cluster or server exists.
func TestInvalidFleetFailsBeforeAnyCluster(t *testing.T) {
	tests := []struct {
		fleet string
		want  string
	}{
		{"invalid/dependson-cycle", "Kustomization/flux-system/apps: spec.dependsOn forms a cycle"},
		{"fleets/wrong-path", `Kustomization/flux-system/apps: spec.path "./apps/does-not-exist" does not exist in the repository`},
	}
	for _, tt := range tests {
		t.Run(tt.fleet, func(t *testing.T) {
			opts := options(t, filepath.Join(testsupport.RepoRoot(t), "fixtures", tt.fleet), "ff-invalid-")
			run := fleetenv.New(opts, testWriter{t})
			t.Cleanup(func() { _ = run.Down(context.Background()) })
			start := time.Now()
			err := run.Up(t.Context())
			took := time.Since(start)
			if err == nil {
				t.Fatal("the fleet was brought up")
			}
			if !strings.HasPrefix(err.Error(), "offline checks: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want the offline checks to report %q, got: %v", tt.want, err)
			}
			if run.Env("staging") != nil {
				t.Fatal("a cluster was created for a fleet the offline checks reject")
			}
			t.Logf("rejected in %s, before any cluster: %v", took.Round(10*time.Millisecond), err)
		})
	}
}

// realFleetFailsFastOffline syncs the repository's own fleet where no
// chart repository or registry can be reached: the harness must name a
// source of the fleet and its fetch failure within minutes.
func realFleetFailsFastOffline(t *testing.T, shared *sharedCluster) {
	if !options(t, testsupport.RepoRoot(t), shared.prefix).Offline() {
		t.Skip("runs with the offline kit only (no E2E_KIT profile with Flux manifests): where registries are reachable the real fleet is expected to converge, which the nightly workflow proves")
	}
	e, took := shared.bringUp(t, realFleet)
	// Whichever of the fleet's public sources the harness sees failing
	// first; each is named with the reason source-controller gives it.
	var got *readiness.FailureError
	if !errors.As(e.Ready, &got) {
		t.Fatalf("want a fail-fast *readiness.FailureError, got %T: %v", e.Ready, e.Ready)
	}
	wants := map[string]failure{
		"HelmRepository/flux-system/podinfo":      {reason: "Failed", message: regexp.MustCompile(`stefanprodan\.github\.io`)},
		"OCIRepository/flux-system/nginx-ingress": {reason: "ReadOperationFailed", message: regexp.MustCompile(`ghcr\.io/nginx/charts/nginx-ingress`)},
		"HelmChart/flux-system/redis-redis":       {reason: "ChartPullError", message: regexp.MustCompile(`registry-1\.docker\.io`)},
	}
	want, ok := wants[got.Object]
	if !ok {
		t.Fatalf("failure names %q, not one of the real fleet's public sources: %v", got.Object, got)
	}
	want.object = regexp.MustCompile("^" + regexp.QuoteMeta(got.Object) + "$")
	assertFailedFast(t, e, took, want)
}

// TestEditsOnAKeptCluster is the local reproduce-fix-re-run loop, on one
// kept cluster: the real fleet fails fast (no registry is reachable here);
// a crashing app fails fast, the fix is edited into the (copied) fleet,
// published, and the same cluster converges; then the Helm fleet is brought
// up on it and a HelmRelease value edited the same way.
func TestEditsOnAKeptCluster(t *testing.T) {
	t.Parallel() // see parallelNote
	shared := newSharedCluster(t, "ff-edit-", nil)
	t.Run("real-fleet-fails-fast-offline", func(t *testing.T) { realFleetFailsFastOffline(t, shared) })
	t.Run("fix-broken-rollout", func(t *testing.T) { fixBrokenRollout(t, shared) })
	t.Run("second-run-cannot-take-the-cluster", func(t *testing.T) { secondRunCannotTakeTheCluster(t, shared) })
	t.Run("helm-value-resync", func(t *testing.T) { helmValueResync(t, shared) })
}

func fixBrokenRollout(t *testing.T, shared *sharedCluster) {
	e, took := shared.bringUp(t, "crashing-app")
	assertFailedFast(t, e, took, failure{regexp.MustCompile(`^Pod/apps/fleet-app-[a-z0-9]+-[a-z0-9]+$`), "CrashLoopBackOff",
		regexp.MustCompile(`last exit code 1 \(Error\), [1-9] restarts`), regexp.MustCompile(`\| .*crash mode enabled`)})

	resync := shared.edit(t, func(fleet string) { t.Logf("fixed %s; publishing", fixCrash(t, fleet)) })
	if e.Ready != nil {
		t.Fatalf("still not Ready after the fix: %v", e.Ready)
	}
	t.Logf("fix applied and environment green %s after publishing (cluster kept, Flux not reinstalled)", resync.Round(100*time.Millisecond))
	dir, rep := fleetReport(t, shared.run, "crashing-app-fixed")
	assertGreenReported(t, dir, rep)
}

// fixCrash rewrites the fleet's APP_CRASH setting to "false" and returns the
// file it changed.
func fixCrash(t *testing.T, fleet string) string {
	t.Helper()
	crash := regexp.MustCompile(`(?s)(name:\s*APP_CRASH\s*\n\s*value:\s*)"?[^"\n]*"?`)
	var changed string
	err := filepath.WalkDir(fleet, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if crash.Match(data) {
			changed, _ = filepath.Rel(fleet, path)
			return os.WriteFile(path, crash.ReplaceAll(data, []byte(`${1}"false"`)), 0o644)
		}
		return nil
	})
	if err != nil || changed == "" {
		t.Fatalf("no APP_CRASH setting found to fix in %s (err %v)", fleet, err)
	}
	return changed
}

// contextBeforeTestTimeout ends shortly before `go test -timeout` would
// panic the binary, or at the first SIGINT/SIGTERM, so that waits give up
// and the cleanup still deletes the scenario's cluster.
func contextBeforeTestTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(interrupted)
	t.Cleanup(cancel)
	if deadline, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-time.Minute))
		t.Cleanup(cancel)
	}
	return ctx
}

// testWriter sends the run's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
