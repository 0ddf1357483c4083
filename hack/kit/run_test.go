package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

func TestKitEnv(t *testing.T) {
	base := []string{"HOME=/home/u", "GOFLAGS=-mod=vendor", "KUBERNETES_VERSION=v1.30.0", "PATH=/usr/bin", "KIT_DIR=/elsewhere"}
	got := kitEnv(base, "/kit", "fleet-kit/debian:bookworm", []version{{Name: "KUBERNETES_VERSION", Value: "v1.37.2"}, {Name: "DEBIAN_SUITE", Value: "bookworm"}})
	want := []string{
		"CGO_ENABLED=0", "DEBIAN_IMAGE=fleet-kit/debian:bookworm", "DEBIAN_SUITE=bookworm", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local",
		"HOME=/home/u", "KIT_DIR=/kit", "KIT_LABEL=" + hashLabel, "KUBERNETES_VERSION=v1.37.2", "PATH=/usr/bin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("kitEnv =\n%q\nwant\n%q", got, want)
	}
}

func TestRemovePartials(t *testing.T) {
	kit := t.TempDir()
	pid := 4242
	own := []string{"bin/kubernetes-0123456789ab.partial.4242", "flux-manifests-0123456789ab.partial.4242"}
	kept := []string{
		"bin/kubernetes-0123456789ab",
		"bin/kubernetes-ba9876543210.partial.4243", // another build's work in progress
		"flux-manifests-0123456789ab",
		"src/deep/x.partial.4242", // deeper than the kit puts its outputs
		"profile.env.partial.42420",
	}
	for _, p := range append(slices.Clone(own), kept...) {
		if err := os.MkdirAll(filepath.Join(kit, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := removePartials(kit, pid); err != nil {
		t.Fatal(err)
	}
	for _, p := range own {
		if _, err := os.Stat(filepath.Join(kit, p)); !os.IsNotExist(err) {
			t.Errorf("%s: still there (stat: %v)", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(filepath.Join(kit, p)); err != nil {
			t.Errorf("%s: removed: %v", p, err)
		}
	}
}

// fakeRecipes is a recipes.sh stand-in: the runner only needs "bash
// SCRIPT FUNCTION ARGS...".
const fakeRecipes = `set -eu
ok() { echo "out $1"; echo "err $2" >&2; }
query() { echo "  value "; echo "note" >&2; }
fails() { echo "about to fail" >&2; exit 3; }
# hangs leaves a child that ignores SIGINT, as background jobs of a
# non-interactive shell do, and that holds the output pipe.
hangs() { sleep 60 & echo $! >"$1"; wait; }
"$@"
`

func testRunner(t *testing.T, out *testsupport.SyncBuffer) *runner {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "recipes.sh")
	if err := os.WriteFile(script, []byte(fakeRecipes), 0o644); err != nil {
		t.Fatal(err)
	}
	return &runner{repo: dir, script: script, env: []string{"PATH=" + os.Getenv("PATH")}, log: newLogger(out),
		timeout: time.Minute, grace: 300 * time.Millisecond}
}

func TestRunnerStreamsAndCaptures(t *testing.T) {
	var out testsupport.SyncBuffer
	r := testRunner(t, &out)
	ctx := context.Background()
	if err := r.recipe(ctx, "node-image", "ok", "a", "b"); err != nil {
		t.Fatal(err)
	}
	v, err := r.query(ctx, "controlplane-images", "query")
	if err != nil || v != "value" {
		t.Errorf("query = %q, %v; want value", v, err)
	}
	err = r.recipe(ctx, "debian-base", "fails")
	if err == nil || err.Error() != "recipe fails failed: exit status 3 (its output is above)" {
		t.Errorf("failing recipe: err = %v", err)
	}
	log := out.String()
	for _, want := range []string{"] node-image: out a\n", "] node-image: err b\n", "] controlplane-images: note\n", "] debian-base: about to fail\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "value") {
		t.Errorf("a query's standard output went to the log:\n%s", log)
	}
}

// dead reports whether pid has exited (gone, or a zombie nobody reaped).
func dead(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

func TestRunnerStopsTheWholeRecipe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stop    func(r *runner, cancel context.CancelCauseFunc)
		wantErr string
	}{
		{"SIGINT", func(_ *runner, cancel context.CancelCauseFunc) { cancel(interrupted{syscall.SIGINT}) },
			"recipe hangs stopped: interrupted by SIGINT"},
		// Long enough for bash to start its child on a loaded machine.
		{"timeout", func(r *runner, _ context.CancelCauseFunc) { r.timeout = 5 * time.Second },
			"recipe hangs stopped: recipe hangs took longer than 5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out testsupport.SyncBuffer
			r := testRunner(t, &out)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			pidFile := filepath.Join(t.TempDir(), "child")
			done := make(chan error, 1)
			if tc.name == "timeout" {
				tc.stop(r, cancel)
			}
			go func() { done <- r.recipe(ctx, "podinfo-image", "hangs", pidFile) }()
			var child int
			for deadline := time.Now().Add(10 * time.Second); child == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the recipe never started its child")
				}
				raw, _ := os.ReadFile(pidFile)
				child, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
			}
			if tc.name != "timeout" {
				tc.stop(r, cancel)
			}
			select {
			case err := <-done:
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the stopped recipe did not return")
			}
			for deadline := time.Now().Add(5 * time.Second); !dead(child); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					syscall.Kill(child, syscall.SIGKILL)
					t.Fatalf("the recipe's child %d outlived it", child)
				}
			}
		})
	}
}
