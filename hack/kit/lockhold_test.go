package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// The environment that makes the test binary act as a kit build (see
// TestMain): its kit directory, recipes file, the file the recipe writes
// its process IDs to, and whether it handles the stop signals as the kit does.
const (
	helperEnv        = "KIT_TEST_HELPER_KIT"
	helperDirEnv     = "KIT_TEST_HELPER_DIR"
	helperScriptEnv  = "KIT_TEST_HELPER_SCRIPT"
	helperPidsEnv    = "KIT_TEST_HELPER_PIDS"
	helperSignalsEnv = "KIT_TEST_HELPER_SIGNALS"
)

// helperGrace is the helper kit's grace for a stopped recipe (runner.grace).
const helperGrace = 3 * time.Second

// slack is added to every bound below: two test lanes and a kit build
// share two cores, so a process may wait seconds to be scheduled.
const slack = 30 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperKit())
	}
	// Under nohup the tests ignore SIGHUP, and an ignored signal stays
	// ignored across exec, so the helper kits would too. Caught instead
	// (and dropped, as ignoring it would), it reaches them with its default
	// action, as in a terminal.
	if signal.Ignored(syscall.SIGHUP) {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	}
	os.Exit(m.Run())
}

// helperKit is a kit build reduced to its lock and one recipe, through
// the code a build runs: holdingLock, runner.recipe, and the kit's signal
// handling and exit status when helperSignalsEnv is "kit". The recipe
// writes into an unfinished output, as a binaries build does.
func helperKit() int {
	ctx := context.Background()
	if os.Getenv(helperSignalsEnv) == "kit" {
		var stop func()
		ctx, stop = stopOnSignals(ctx)
		defer stop()
	}
	dir := os.Getenv(helperDirEnv)
	log := newLogger(os.Stderr)
	b := &builder{repo: dir, kitDir: dir, pid: os.Getpid(), log: log, run: &runner{
		repo: dir, script: os.Getenv(helperScriptEnv), env: []string{"PATH=" + os.Getenv("PATH")},
		log: log, timeout: time.Hour, grace: helperGrace,
	}}
	partial := fmt.Sprintf("%s.partial.%d", filepath.Join(dir, "bin", "kubernetes-0123456789ab"), b.pid)
	err := b.holdingLock(ctx, func() error {
		return b.recipe(ctx, "node-image", "holds", partial, os.Getenv(helperPidsEnv))
	})
	return exitStatus(ctx, err, log)
}

// holdingRecipes is the helper kit's recipes.sh: holds makes its output
// directory and waits on a child, writing "<its own pid> <child's pid>"
// once both run.
const holdingRecipes = `set -eu
holds() { mkdir -p "$1"; sleep 600 & echo "$$ $!" >"$2.tmp"; mv "$2.tmp" "$2"; wait; }
"$@"
`

// needTool fails under CI=true and skips elsewhere when name is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed: %v", name, err)
		}
		t.Skipf("no %s: %v", name, err)
	}
}

// helperBuild is a running helper kit.
type helperBuild struct {
	cmd        *exec.Cmd
	exited     chan error
	stderr     string
	group, kid int // the recipe's process group and its child
	partial    string
}

// startHelperKit starts the helper kit on kitDir and waits until its
// recipe runs.
func startHelperKit(t *testing.T, kitDir, signals string) *helperBuild {
	t.Helper()
	needTool(t, "bash")
	needTool(t, "sleep")
	scratch := t.TempDir()
	script := filepath.Join(scratch, "recipes.sh")
	if err := os.WriteFile(script, []byte(holdingRecipes), 0o644); err != nil {
		t.Fatal(err)
	}
	pids := filepath.Join(scratch, "pids")
	h := &helperBuild{stderr: filepath.Join(scratch, "stderr"), exited: make(chan error, 1)}
	stderr, err := os.Create(h.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	h.cmd = exec.Command(os.Args[0])
	h.cmd.Env = append(os.Environ(), helperEnv+"=1", helperDirEnv+"="+kitDir, helperScriptEnv+"="+script,
		helperPidsEnv+"="+pids, helperSignalsEnv+"="+signals)
	h.cmd.Stderr = stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.exited <- h.cmd.Wait() }()
	t.Cleanup(func() {
		// Whatever a failed test left running goes with it.
		_ = h.cmd.Process.Kill()
		if h.group > 0 {
			_ = syscall.Kill(-h.group, syscall.SIGKILL)
		}
	})
	h.partial = fmt.Sprintf("%s.partial.%d", filepath.Join(kitDir, "bin", "kubernetes-0123456789ab"), h.cmd.Process.Pid)
	for deadline := time.Now().Add(slack); ; time.Sleep(20 * time.Millisecond) {
		raw, _ := os.ReadFile(pids)
		if n, _ := fmt.Sscanf(string(raw), "%d %d", &h.group, &h.kid); n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the helper kit's recipe did not start within %s; its log:\n%s", slack, h.log())
		}
	}
	if _, err := os.Stat(h.partial); err != nil {
		t.Fatalf("the recipe made no unfinished output: %v", err)
	}
	return h
}

func (h *helperBuild) log() string {
	raw, _ := os.ReadFile(h.stderr)
	return string(raw)
}

// wait waits up to bound for the helper kit to exit and returns how it
// ended.
func (h *helperBuild) wait(t *testing.T, bound time.Duration) syscall.WaitStatus {
	t.Helper()
	select {
	case <-h.exited:
	case <-time.After(bound):
		t.Fatalf("the helper kit did not exit within %s; its log:\n%s", bound, h.log())
	}
	return h.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// lockHeld reports whether a process holds the flock on path, trying it
// as another build would (and letting it go at once).
func lockHeld(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true
	}
	if err != nil {
		t.Fatalf("trying the lock %s: %v", path, err)
	}
	return false
}

// nextBuild takes the lock on kitDir as the next build does, giving up
// after wait, and lets it go at once.
func nextBuild(kitDir string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	b := &builder{repo: kitDir, kitDir: kitDir, pid: os.Getpid(), log: newLogger(&testsupport.SyncBuffer{}), run: &runner{}}
	return b.holdingLock(ctx, func() error { return nil })
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestLockOutlivesAKilledKit kills the kit process while its recipe runs,
// as SIGKILL or a closed terminal's SIGHUP would (the latter as a kit
// that does not handle it): the lock stays held while the recipe lives,
// so the next build waits and leaves the recipe's output alone; once the
// recipe is gone the next build gets the lock and removes that output.
func TestLockOutlivesAKilledKit(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{{"SIGKILL", syscall.SIGKILL}, {"SIGHUP", syscall.SIGHUP}} {
		t.Run(tc.name, func(t *testing.T) {
			kitDir := t.TempDir()
			finished := filepath.Join(kitDir, "bin", "kubernetes-ba9876543210")
			if err := os.MkdirAll(finished, 0o755); err != nil {
				t.Fatal(err)
			}
			lockPath := filepath.Join(kitDir, ".lock")
			h := startHelperKit(t, kitDir, "none")
			if !lockHeld(t, lockPath) {
				t.Fatal("the lock is free while the kit runs")
			}
			if err := h.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			if ws := h.wait(t, slack); !ws.Signaled() || ws.Signal() != tc.sig {
				t.Fatalf("the kit ended with %s, want killed by %s", h.cmd.ProcessState, tc.name)
			}
			if dead(h.kid) {
				t.Fatalf("the recipe's child %d died with the kit: nothing left to test", h.kid)
			}
			if !lockHeld(t, lockPath) {
				t.Fatalf("the lock is free while the killed kit's recipe (%d) still runs", h.kid)
			}
			// How long the next build waits only bounds the test: any wait
			// ends the same way while the recipe runs.
			if err := nextBuild(kitDir, 2*time.Second); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the next build's lock: err = %v, want it still waiting at its deadline", err)
			}
			if !exists(t, h.partial) {
				t.Fatalf("%s was removed while the recipe writing it still ran", h.partial)
			}

			if err := syscall.Kill(-h.group, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(slack); lockHeld(t, lockPath); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the lock is still held %s after the recipe's group was killed", slack)
				}
			}
			if err := nextBuild(kitDir, slack); err != nil {
				t.Fatal(err)
			}
			if exists(t, h.partial) {
				t.Errorf("%s: the dead build's unfinished output is still there", h.partial)
			}
			if !exists(t, finished) {
				t.Errorf("%s: a finished output was removed", finished)
			}
		})
	}
}

// TestSIGHUPStopsTheBuild sends SIGHUP to a kit handling signals as the
// kit does: it stops its recipe as for SIGINT, removes its own unfinished
// output and exits with 128+SIGHUP (the documented status), and the lock
// is free once it has.
func TestSIGHUPStopsTheBuild(t *testing.T) {
	kitDir := t.TempDir()
	lockPath := filepath.Join(kitDir, ".lock")
	h := startHelperKit(t, kitDir, "kit")
	if err := h.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The recipe gets the grace to exit, then its group is killed.
	if ws := h.wait(t, helperGrace+slack); !ws.Exited() || ws.ExitStatus() != 128+int(syscall.SIGHUP) {
		t.Fatalf("the kit ended with %s, want it to exit with status %d; its log:\n%s", h.cmd.ProcessState, 128+int(syscall.SIGHUP), h.log())
	}
	if !strings.Contains(h.log(), "interrupted by SIGHUP") {
		t.Errorf("the kit's log does not say SIGHUP stopped it:\n%s", h.log())
	}
	for deadline := time.Now().Add(slack); !dead(h.kid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the recipe's child %d outlived the stopped kit by %s", h.kid, slack)
		}
	}
	for deadline := time.Now().Add(slack); lockHeld(t, lockPath); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the lock is still held %s after the stopped kit's recipe died", slack)
		}
	}
	if exists(t, h.partial) {
		t.Errorf("%s: the stopped kit left its unfinished output", h.partial)
	}
}

// TestRemoveDeadPartials: holding the lock, every unfinished output (any
// pid) at the depths the kit writes is a dead build's; nothing else goes.
func TestRemoveDeadPartials(t *testing.T) {
	kit := t.TempDir()
	gone := []string{"bin/kubernetes-0123456789ab.partial.4242", "flux-manifests-0123456789ab.partial.1",
		"bin/etcd-0123456789ab.partial." + strconv.Itoa(os.Getpid())}
	kept := []string{
		"bin/kubernetes-0123456789ab",
		"flux-manifests-0123456789ab",
		"src/deep/x.partial.4242", // deeper than the kit puts its outputs
		"notes.partial.",
		"notes.partial.x1",
		".partial.12",
	}
	for _, p := range append(append([]string{}, gone...), kept...) {
		if err := os.MkdirAll(filepath.Join(kit, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeDeadPartials(kit); err != nil {
		t.Fatal(err)
	}
	for _, p := range gone {
		if exists(t, filepath.Join(kit, p)) {
			t.Errorf("%s: still there", p)
		}
	}
	for _, p := range kept {
		if !exists(t, filepath.Join(kit, p)) {
			t.Errorf("%s: removed", p)
		}
	}
}
