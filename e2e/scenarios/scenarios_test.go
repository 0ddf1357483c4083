// Package scenarios runs the harness against fleets that must fail, and the
// fix-and-re-run loop of a kept cluster: each broken fixture fleet must fail
// fast with the right reason in the summary, the real fleet must fail fast
// where no chart repository or registry is reachable, and an edit to a broken
// fleet must be re-synced to the same cluster in seconds.
package scenarios

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/envfuncs"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
)

func TestMain(m *testing.M) {
	// controller-runtime (used by the ssa applier) warns with a stack trace
	// when no logger is set; the harness reports through its own lines.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// repoRoot is the repository root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// options returns the run options for one scenario: the E2E_* and FLEET_*
// settings, with the given fleet and one env (staging) on a cluster of its own.
func options(t *testing.T, fleetDir, clusterPrefix string) envfuncs.Options {
	t.Helper()
	if reason := envfuncs.Unavailable(t.Context()); reason != "" {
		t.Skip(reason)
	}
	opts, err := envfuncs.OptionsFromEnv(repoRoot(t))
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

// requireKitImages skips tests of fixture fleets where the offline kit's
// workload images are not loaded.
func requireKitImages(t *testing.T) {
	t.Helper()
	if !strings.Contains(os.Getenv("FLEET_PRELOAD_IMAGES"), "fleet-kit/") {
		t.Skip("fixture fleets run on images the offline kit builds (FLEET_PRELOAD_IMAGES has no fleet-kit/ image): run `make test`, which builds and loads them")
	}
}

// bringUp runs Setup and registers Finish; it returns the staging environment.
func bringUp(t *testing.T, opts envfuncs.Options) (*envfuncs.Run, *envfuncs.Environment, time.Duration) {
	t.Helper()
	run := envfuncs.New(opts, testWriter{t})
	start := time.Now()
	_, err := run.Setup(contextBeforeTestTimeout(t), nil)
	took := time.Since(start)
	t.Cleanup(func() {
		run.MarkFailed() // every scenario fails on purpose: keep only if E2E_KEEP=always
		if _, err := run.Finish(context.Background(), nil); err != nil {
			t.Errorf("tearing down: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	e := run.Env("staging")
	if e == nil {
		t.Fatal("environment staging was not brought up")
	}
	return run, e, took
}

func TestBrokenFleetsFailFast(t *testing.T) {
	tests := []struct {
		fleet string
		// reason must match the failure the harness reports, object and all.
		reason *regexp.Regexp
		object string
	}{
		{"broken-image", regexp.MustCompile(`ErrImagePull|ImagePullBackOff`), "fleet-app"},
		{"wrong-path", regexp.MustCompile(`(?i)BuildFailed|ArtifactFailed|not found|no such file`), "Kustomization flux-system/apps"},
	}
	for _, tt := range tests {
		t.Run(tt.fleet, func(t *testing.T) {
			t.Parallel()
			requireKitImages(t)
			fleet := filepath.Join(repoRoot(t), "fixtures", "fleets", tt.fleet)
			_, e, took := bringUp(t, options(t, fleet, "ff-"+tt.fleet+"-"))
			assertFailedFast(t, e, took, tt.reason, tt.object)
		})
	}
}

func assertFailedFast(t *testing.T, e *envfuncs.Environment, took time.Duration, reason *regexp.Regexp, object string) {
	t.Helper()
	if e.Ready == nil {
		t.Fatalf("the environment became Ready; want a failure matching %s", reason)
	}
	var failure *readiness.FailureError
	if !errors.As(e.Ready, &failure) {
		t.Fatalf("want a fail-fast *readiness.FailureError, got %T: %v", e.Ready, e.Ready)
	}
	if !reason.MatchString(failure.Error()) {
		t.Errorf("failure %q does not match %s", failure.Error(), reason)
	}
	if !strings.Contains(failure.Error(), object) {
		t.Errorf("failure %q does not name %s", failure.Error(), object)
	}
	if !reason.MatchString(e.Summary) {
		t.Errorf("the diagnostics summary does not show the reason %s:\n%s", reason, e.Summary)
	}
	t.Logf("failed fast in %s (setup included): %v", took.Round(100*time.Millisecond), failure)
}

// TestRealFleetFailsFastOffline syncs the repository's own fleet where no
// chart repository or registry can be reached: the harness must say so
// within minutes instead of waiting for the full timeout.
func TestRealFleetFailsFastOffline(t *testing.T) {
	if os.Getenv("FLEET_FLUX_MANIFESTS") == "" {
		t.Skip("runs with the offline kit only (FLEET_FLUX_MANIFESTS unset): where registries are reachable the real fleet is expected to converge, which the nightly workflow proves")
	}
	_, e, took := bringUp(t, options(t, repoRoot(t), "ff-real-"))
	assertFailedFast(t, e, took,
		regexp.MustCompile(`(?i)fetch|pull|no such host|dial tcp|lookup|helm-controller|not installed`), "")
}

// TestFixBrokenRollout is the local reproduce-fix-re-run loop: a crashing
// app fails fast, the fix is edited into the (copied) fleet, published, and
// the same cluster converges.
func TestFixBrokenRollout(t *testing.T) {
	requireKitImages(t)
	fleet := t.TempDir()
	if err := os.CopyFS(fleet, os.DirFS(filepath.Join(repoRoot(t), "fixtures", "fleets", "crashing-app"))); err != nil {
		t.Fatal(err)
	}
	run, e, took := bringUp(t, options(t, fleet, "ff-fix-"))
	assertFailedFast(t, e, took, regexp.MustCompile(`CrashLoopBackOff|Error`), "fleet-app")

	fixed := fixCrash(t, fleet)
	t.Logf("fixed %s; publishing", fixed)
	resync, err := run.Republish(contextBeforeTestTimeout(t))
	if err != nil {
		t.Fatalf("re-sync after the fix: %v", err)
	}
	if e.Ready != nil {
		t.Fatalf("still not Ready after the fix: %v", e.Ready)
	}
	t.Logf("fix applied and environment green %s after publishing (cluster kept, Flux not reinstalled)", resync.Round(100*time.Millisecond))
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
// panic the binary, so that waits give up and the cleanup still deletes
// the scenario's cluster.
func contextBeforeTestTimeout(t *testing.T) context.Context {
	deadline, ok := t.Deadline()
	if !ok {
		return t.Context()
	}
	ctx, cancel := context.WithDeadline(t.Context(), deadline.Add(-time.Minute))
	t.Cleanup(cancel)
	return ctx
}

// testWriter sends the run's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
