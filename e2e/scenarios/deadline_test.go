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
	opts := options(t, filepath.Join(repoRoot(t), "fixtures", "fleets", "basic"), "ff-deadline-")
	requireKit(t, opts)
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "e2e.test")
	ctx, cancel := context.WithTimeout(contextBeforeTestTimeout(t), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./e2e/")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the e2e suite: %v\n%s", err, out)
	}

	tmp, work := t.TempDir(), t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "-test.v", "-test.count=1", "-test.timeout="+childTimeout.String())
	cmd.Dir = filepath.Join(root, "e2e")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "E2E_WORKDIR="+work, "E2E_KEEP=never",
		"E2E_FLEET=fixtures/fleets/basic", "E2E_ENVS=staging", "E2E_CLUSTER_PREFIX=ff-deadline-",
		"E2E_REVISION=", "E2E_BASE=")
	cmd.Cancel = func() error { return cmd.Process.Kill() }
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

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
