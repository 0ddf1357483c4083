package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// holdHelperEnv makes the test binary a helper process that holds a name:
// "<hold dir>|<name>|<work dir>".
const holdHelperEnv = "HX_CLUSTER_HOLD_HELPER"

func TestMain(m *testing.M) {
	if arg := os.Getenv(holdHelperEnv); arg != "" {
		os.Exit(holdHelper(arg))
	}
	os.Exit(m.Run())
}

// holdHelper holds a name, says so on stdout and waits to be killed.
func holdHelper(arg string) int {
	parts := strings.Split(arg, "|")
	if len(parts) != 3 {
		fmt.Fprintf(os.Stderr, "%s=%q: want dir|name|workdir\n", holdHelperEnv, arg)
		return 2
	}
	info := holderInfo(Spec{Name: parts[1], WorkDir: parts[2]}, "helper-run", time.Now())
	h, err := takeHold(parts[0], parts[1], info)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.release()
	fmt.Println("HELD")
	time.Sleep(10 * time.Minute) // the test kills it long before
	return 0
}

// startHolder runs a helper process holding name in dir and returns it
// once the hold is taken.
func startHolder(t *testing.T, dir, name, workDir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), holdHelperEnv+"="+dir+"|"+name+"|"+workDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the holder process: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "HELD\n" {
		t.Fatalf("holder process said %q (%v), want HELD", line, err)
	}
	return cmd
}

// The message is what a user reads when a second run starts: a contract.
func TestHeldErrorMessage(t *testing.T) {
	started := time.Date(2026, 12, 6, 13, 37, 48, 0, time.Local)
	e := &HeldError{Name: "cc-staging", Holder: HolderInfo{PID: 1234, Host: "x", Started: started, WorkDir: "/w", RunID: "20261206-133748-abcdef"}}
	want := `cluster "cc-staging" is in use by another flux-fleet run (pid 1234 on host x, started 2026-12-06 13:37:48, work dir /w, run 20261206-133748-abcdef): wait for it to finish or set E2E_CLUSTER_PREFIX`
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	unknown := &HeldError{Name: "cc-staging", Unknown: "no readable holder record"}
	if got := unknown.Error(); !strings.Contains(got, "(holder unknown: no readable holder record)") {
		t.Errorf("Error() without a record = %q", got)
	}
}

func TestSafeFileName(t *testing.T) {
	for in, want := range map[string]string{
		"TRKA:EJEZ:4AXT:TER5":                  "TRKA-EJEZ-4AXT-TER5",
		"0b3c1f7e-6f0c-4d7e-9c55-1f1b2f0e8a11": "0b3c1f7e-6f0c-4d7e-9c55-1f1b2f0e8a11",
		"../..":                                "-",
		"":                                     "",
	} {
		if got := safeFileName(in); got != want {
			t.Errorf("safeFileName(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(safeFileName(in), "/") {
			t.Errorf("safeFileName(%q) has a path separator", in)
		}
	}
}

func TestTakeHoldExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "holds", "engine")
	info := HolderInfo{PID: os.Getpid(), Host: "h", Started: time.Now().Round(time.Second), WorkDir: "/w", RunID: "r1"}
	first, err := takeHold(dir, "staging", info)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&(fs.ModeSticky|fs.ModePerm) != sharedDirMode {
			t.Errorf("hold directory %s has mode %v, want %v (shared by all users, sticky)", d, fi.Mode(), sharedDirMode)
		}
	}
	// A second open file of the same name conflicts, even in this process.
	_, err = takeHold(dir, "staging", HolderInfo{PID: 1, RunID: "r2"})
	var held *HeldError
	if !errors.As(err, &held) || held.Name != "staging" || held.Holder.PID != info.PID || held.Holder.RunID != "r1" ||
		held.Holder.WorkDir != "/w" || !held.Holder.Started.Equal(info.Started) {
		t.Fatalf("second hold: %v (%#v), want a *HeldError naming the first holder", err, held)
	}
	other, err := takeHold(dir, "production", info)
	if err != nil {
		t.Fatalf("another name is free: %v", err)
	}
	other.release()
	first.release()
	again, err := takeHold(dir, "staging", HolderInfo{PID: 7, RunID: "r3"})
	if err != nil {
		t.Fatalf("hold after release: %v", err)
	}
	again.release()
}

// A holder that could not write the shared file (another user's) leaves
// its record next to it; readers take the newest.
func TestReadHolderNewestRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "staging"+holdSuffix)
	stale := HolderInfo{PID: 1, RunID: "stale"}
	f, _, err := openHoldFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := writeHolder(f, true, path, stale); err != nil {
		t.Fatal(err)
	}
	if got, err := readHolder(path); err != nil || got.RunID != "stale" {
		t.Fatalf("readHolder = %+v, %v; want the only record", got, err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	live := HolderInfo{PID: 2, RunID: "live"}
	if err := writeHolder(nil, false, path, live); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "." + strconv.Itoa(os.Getuid())); err != nil {
		t.Fatalf("no side record: %v", err)
	}
	if got, err := readHolder(path); err != nil || got.RunID != "live" {
		t.Errorf("readHolder = %+v, %v; want the newer side record", got, err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + "." + strconv.Itoa(os.Getuid())); err != nil {
		t.Fatal(err)
	}
	if _, err := readHolder(path); err == nil || !strings.Contains(err.Error(), "no readable holder record") {
		t.Errorf("readHolder of a half-written record: %v, want an error saying none is readable", err)
	}
}

// recordingCreate stands in for the creation a Guard does once it holds
// the names.
type recordingCreate struct {
	mu    sync.Mutex
	names []string
	err   error
}

func (r *recordingCreate) create(_ context.Context, specs []Spec) ([]*Cluster, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Cluster
	for _, s := range specs {
		r.names = append(r.names, s.Name)
		out = append(out, &Cluster{Name: s.Name, KubeconfigPath: s.KubeconfigPath(), held: true})
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// A name held by a live process stops a Guard before anything is touched,
// naming that process; once it is killed the name is free. Docker is not
// needed: the holds come before any docker call.
func TestGuardHeldByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	workDir := t.TempDir()
	holder := startHolder(t, dir, "cc-staging", workDir)
	absWork, _ := filepath.Abs(workDir)

	g := NewGuard(KeepNever, LogfWriter(t.Logf))
	g.HoldDir = dir
	// A kind config prepare refuses: should the holds let a call through,
	// it fails there instead of making real clusters.
	notKind := []byte("kind: [")
	specs := []Spec{{Name: "cc-staging", WorkDir: t.TempDir(), KindConfig: notKind}, {Name: "cc-production", WorkDir: t.TempDir(), KindConfig: notKind}}
	rec := &recordingCreate{}
	// No docker and no waits but the reread of a record being written.
	bound := holderReadTries*holderReadPause + 20*time.Second // a wide margin: a loaded machine can stall a process for seconds
	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"CreateAll", func() error { _, err := g.CreateAll(t.Context(), specs); return err }},
		{"Create", func() error { _, err := g.Create(t.Context(), specs[0]); return err }},
		{"createAll", func() error { _, err := g.createAll(t.Context(), specs, rec.create); return err }},
	} {
		start := time.Now()
		err := call.do()
		elapsed := time.Since(start)
		var held *HeldError
		if !errors.As(err, &held) || held.Name != "cc-staging" || held.Holder.PID != holder.Process.Pid ||
			held.Holder.WorkDir != absWork || held.Holder.RunID != "helper-run" {
			t.Fatalf("%s: error %v, want a *HeldError naming pid %d and work dir %s", call.name, err, holder.Process.Pid, absWork)
		}
		if elapsed > bound {
			t.Errorf("%s: refused after %s, want within %s", call.name, elapsed, bound)
		}
		if _, err := os.Stat(specs[0].KubeconfigPath()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: kubeconfig written for a held name (%v)", call.name, err)
		}
	}
	if len(rec.names) != 0 {
		t.Errorf("creation ran for %v while a name was held", rec.names)
	}
	// cc-production sorts first and was taken before cc-staging failed: it
	// must have been released.
	if h, err := takeHold(dir, "cc-production", HolderInfo{}); err != nil {
		t.Errorf("cc-production still held after the refused call: %v", err)
	} else {
		h.release()
	}

	if err := holder.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = holder.Wait() // the lock goes with the process
	clusters, err := g.createAll(t.Context(), specs, rec.create)
	if err != nil || len(clusters) != 2 {
		t.Fatalf("after the holder was killed: %v, %v; want both names", clusters, err)
	}
	if !slices.Equal(rec.names, []string{"cc-staging", "cc-production"}) {
		t.Errorf("created %v", rec.names)
	}
}

func TestGuardHoldLifetime(t *testing.T) {
	dir := t.TempDir()
	isHeld := func(name string) bool {
		h, err := takeHold(dir, name, HolderInfo{})
		if err != nil {
			return true
		}
		h.release()
		return false
	}
	newGuard := func(keep KeepPolicy) *Guard {
		g := NewGuard(keep, LogfWriter(t.Logf))
		g.HoldDir = dir
		return g
	}

	t.Run("a failed creation releases what it took", func(t *testing.T) {
		g := newGuard(KeepNever)
		rec := &recordingCreate{err: errors.New("kind said no")}
		if _, err := g.createAll(t.Context(), []Spec{{Name: "a"}, {Name: "b"}}, rec.create); err == nil || err.Error() != "kind said no" {
			t.Fatalf("createAll error %v", err)
		}
		if isHeld("a") || isHeld("b") {
			t.Error("holds of a failed creation kept")
		}
	})

	t.Run("held until Cleanup, kept clusters until exit", func(t *testing.T) {
		g := newGuard(KeepAlways)
		rec := &recordingCreate{}
		clusters, err := g.createAll(t.Context(), []Spec{{Name: "kept"}, {Name: "reused"}, {Name: "gone"}}, rec.create)
		if err != nil {
			t.Fatal(err)
		}
		clusters[1].Reused = true
		clusters[2].deleted = true // deleted by hand during the run
		for _, n := range []string{"kept", "reused", "gone"} {
			if !isHeld(n) {
				t.Errorf("%s not held during the run", n)
			}
		}
		// The same Guard may create a name it holds again.
		again, err := g.createAll(t.Context(), []Spec{{Name: "gone"}}, rec.create)
		if err != nil {
			t.Fatalf("recreating a name the Guard holds: %v", err)
		}
		again[0].deleted = true
		if err := g.Cleanup(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if !isHeld("kept") {
			t.Error("a kept cluster's hold was released: another run could take it over")
		}
		if isHeld("reused") || isHeld("gone") {
			t.Error("holds of reused and deleted clusters kept after Cleanup")
		}
	})
}
