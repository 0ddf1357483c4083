package cluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Any user can plant entries in the shared hold directory; a run, maybe
// root's, must never write through them.

// plantVictim makes a file another user's planted link would aim at.
func plantVictim(t *testing.T) (path string, content []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "victim")
	content = []byte("root:secret:0:0\n")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, content
}

// assertUntouched fails unless the victim still has its content and mode.
func assertUntouched(t *testing.T, victim string, content []byte) {
	t.Helper()
	fi, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != string(content) || fi.Mode().Perm() != 0o600 {
		t.Errorf("victim %s now %q, mode %v; want %q, mode 0600", victim, got, fi.Mode(), content)
	}
}

// The reasons a refusal gives, after the path it refuses.
const (
	isSymlink    = "is a symbolic link: refusing to follow it"
	isNotRegular = "is not a regular file"
)

// assertRefused fails unless err names path and gives reason.
func assertRefused(t *testing.T, err error, path, reason string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), reason) {
		t.Errorf("error %v; want one naming %s and saying it %s", err, path, reason)
	}
}

// withTimeout runs f, failing the test if it does not return in time.
func withTimeout[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s hangs", what)
		panic("unreachable")
	}
}

func TestTakeHoldRefusesSymlinkedHoldFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "holds", "engine")
	if err := ensureSharedDir(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "staging"+holdSuffix)
	victim, content := plantVictim(t)
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	h, err := takeHold(dir, "staging", HolderInfo{PID: 1, RunID: "r"})
	if err == nil {
		h.release()
	}
	assertRefused(t, err, path, isSymlink)
	assertUntouched(t, victim, content)

	// A dangling link must not create its target either.
	missing := filepath.Join(t.TempDir(), "created")
	if err := os.Symlink(missing, filepath.Join(dir, "production"+holdSuffix)); err != nil {
		t.Fatal(err)
	}
	if h, err := takeHold(dir, "production", HolderInfo{}); err == nil {
		h.release()
		t.Error("took a hold through a dangling symbolic link")
	}
	if _, err := os.Lstat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dangling link's target was created (%v)", err)
	}
}

// TestTakeHoldRefusesHardLinkedHoldFile: a hard link planted as the hold
// file (where the kernel allows one to a file of someone else's) would have
// the holder written over that file.
func TestTakeHoldRefusesHardLinkedHoldFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "holds", "engine")
	if err := ensureSharedDir(dir); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "victim")
	content := []byte("root:secret:0:0\n")
	if err := os.WriteFile(victim, content, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "staging"+holdSuffix)
	if err := os.Link(victim, path); err != nil {
		t.Fatal(err)
	}
	h, err := takeHold(dir, "staging", HolderInfo{PID: 1, RunID: "r"})
	if err == nil {
		h.release()
	}
	assertRefused(t, err, path, "has other hard links")
	assertUntouched(t, victim, content)
}

// The side record is what a run writes when the hold file is another
// user's; that case needs two users, so the writer is called directly.
func TestWriteHolderRefusesSymlinkedSideRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "staging"+holdSuffix)
	side := path + "." + strconv.Itoa(os.Getuid())
	victim, content := plantVictim(t)
	if err := os.Symlink(victim, side); err != nil {
		t.Fatal(err)
	}
	err := writeHolder(nil, false, path, HolderInfo{PID: 1, RunID: "r"})
	assertRefused(t, err, side, isSymlink)
	assertUntouched(t, victim, content)
}

// A planted link to a readable record must not pass for a holder, nor a
// huge record be read whole.
func TestReadHolderRefusesPlantedRecords(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(t.TempDir(), "record")
	if err := os.WriteFile(record, []byte(`{"pid":1,"runID":"planted"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(dir, "staging"+holdSuffix)
	if err := os.Symlink(record, linked); err != nil {
		t.Fatal(err)
	}
	_, err := readHolder(linked)
	assertRefused(t, err, linked, isSymlink)

	huge := filepath.Join(dir, "production"+holdSuffix)
	padded := `{"pid":1,"runID":"huge"` + strings.Repeat(" ", 1<<20) + `}`
	if err := os.WriteFile(huge, []byte(padded), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := readHolder(huge); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("readHolder of a 1 MiB record = %+v, %v; want it refused", got, err)
	}
}

func TestTakeHoldRefusesSymlinkedHoldDir(t *testing.T) {
	for _, level := range []string{"holds", "engine"} {
		t.Run(level, func(t *testing.T) {
			base, elsewhere := t.TempDir(), t.TempDir()
			dir := filepath.Join(base, "holds", "engine")
			linked := filepath.Join(base, level)
			if level == "engine" {
				linked = dir
				if err := os.Mkdir(filepath.Dir(dir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(elsewhere, linked); err != nil {
				t.Fatal(err)
			}
			h, err := takeHold(dir, "staging", HolderInfo{})
			if err == nil {
				h.release()
			}
			assertRefused(t, err, linked, isSymlink)
			if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
				t.Errorf("wrote %v through the linked hold directory", entries)
			}
		})
	}
}

// A FIFO is refused at once: reading one with no writer would block.
func TestHoldRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	mkfifo := func(p string) {
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		// Frees an open stuck on it, should one be.
		t.Cleanup(func() {
			if f, err := os.OpenFile(p, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
				_ = f.Close()
			}
		})
	}

	path := filepath.Join(dir, "staging"+holdSuffix)
	mkfifo(path)
	err := withTimeout(t, "takeHold of a FIFO", func() error {
		h, err := takeHold(dir, "staging", HolderInfo{})
		if err == nil {
			h.release()
		}
		return err
	})
	assertRefused(t, err, path, isNotRegular)

	// A FIFO as a side record: the real record is still found, and a
	// holder writing its side record is refused at once.
	held := filepath.Join(dir, "production"+holdSuffix)
	h, err := takeHold(dir, "production", HolderInfo{PID: 7, RunID: "real"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.release()
	side := held + "." + strconv.Itoa(os.Getuid())
	mkfifo(side)
	got := withTimeout(t, "readHolder with a FIFO side record", func() HolderInfo {
		got, _ := readHolder(held)
		return got
	})
	if got.RunID != "real" {
		t.Errorf("readHolder = %+v; want the real record", got)
	}
	err = withTimeout(t, "writing a side record into a FIFO", func() error {
		return writeHolder(nil, false, held, HolderInfo{PID: 8})
	})
	assertRefused(t, err, side, isNotRegular)
}
