package scenarios

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// childTimeout is the `go test -timeout` of the e2e child below: shorter
// than one bring-up, so its work context ends mid-way (at childTimeout minus
// fleetenv.Reserve, 20 s here) and the teardown must finish in the reserve.
const childTimeout = 45 * time.Second

// TestTestTimeoutLeavesNothing runs the e2e suite with a -timeout shorter
// than a bring-up: the run must stop its work in time to delete its cluster,
// stop its servers and remove its temporary files before go test would
// panic the binary — no "test timed out" panic, nothing left behind.
func TestTestTimeoutLeavesNothing(t *testing.T) {
	t.Parallel() // see parallelNote
	opts := options(t, filepath.Join(testsupport.RepoRoot(t), "fixtures", "fleets", "basic"), "ff-deadline-")
	requireKit(t, opts)
	ctx, cancel := context.WithTimeout(contextBeforeTestTimeout(t), 10*time.Minute)
	defer cancel()
	bin := buildE2E(ctx, t)
	tmp, work := t.TempDir(), t.TempDir()
	cmd := e2eChild(ctx, t, bin, "ff-deadline-", tmp, work, "-test.timeout="+childTimeout.String())
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	t.Logf("the child ended after %s (-timeout %s): %v", took.Round(100*time.Millisecond), childTimeout, err)
	text := string(out)
	t.Logf("the child's last lines:\n%s", tail(text, 12))
	if strings.Contains(text, "panic: test timed out") {
		t.Fatalf("go test's -timeout panicked the child before its teardown ended:\n%s", tail(text, 40))
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		t.Logf("the bring-up and checks fitted in %s on this machine; the teardown still had to finish in time", childTimeout)
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		if !strings.Contains(text, "the run's time is up") {
			t.Errorf("the child failed without saying the run's time was up:\n%s", tail(text, 40))
		}
	default:
		t.Fatalf("child exit = %v, want 1 (work stopped by the deadline) or 0:\n%s", err, tail(text, 40))
	}
	assertNothingLeft(t, "ff-deadline-", tmp, nil)
	if left, _ := filepath.Glob(filepath.Join(work, "*.kubeconfig")); len(left) > 0 {
		t.Errorf("kubeconfigs left in the work directory: %v", left)
	}
}

// buildE2E compiles the e2e suite into a test binary of t's, with
// -trimpath as make test builds its tests, so that the two share compiles.
func buildE2E(ctx context.Context, t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "e2e.test")
	build := exec.CommandContext(ctx, "go", "test", "-trimpath", "-c", "-o", bin, "./e2e/")
	build.Dir = testsupport.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the e2e suite: %v\n%s", err, out)
	}
	return bin
}

// e2eChild is the e2e suite as a child process on the plain fixture fleet,
// staging only, with its own temporary and work directories.
func e2eChild(ctx context.Context, t *testing.T, bin, prefix, tmp, work string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-test.v", "-test.count=1"}, args...)...)
	cmd.Dir = filepath.Join(testsupport.RepoRoot(t), "e2e")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "E2E_WORKDIR="+work, "E2E_KEEP=never",
		"E2E_FLEET=fixtures/fleets/basic", "E2E_ENVS=staging", "E2E_CLUSTER_PREFIX="+prefix,
		"E2E_REVISION=", "E2E_BASE=")
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	return cmd
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
