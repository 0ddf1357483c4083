package privatefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteCreatesPrivateDirAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "out.json")
	if err := Write(path, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	assertMode(t, dir, DirMode|os.ModeDir)
	assertMode(t, path, FileMode)
	if got, err := os.ReadFile(path); err != nil || string(got) != "{}\n" {
		t.Errorf("content = %q, %v; want %q", got, err, "{}\n")
	}
}

// An older file readable by others is replaced with a private one, and no
// temporary file is left beside it.
func TestWriteReplacesOlderFileAndItsMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	if err := os.WriteFile(path, []byte("old, longer content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, FileMode)
	if got, _ := os.ReadFile(path); string(got) != "new\n" {
		t.Errorf("content = %q, want %q", got, "new\n")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only out.json", len(entries))
	}
}

func TestWriteErrorNamesPath(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "out.json")
	err := Write(path, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "creating its directory") {
		t.Errorf("Write under a regular file: err = %v, want one naming %s and the directory", err, path)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

// A link planted where a file goes (a kubeconfig, say) is replaced: the file
// it leads to is neither written nor made readable to the link's owner.
func TestWriteReplacesALinkWithoutFollowingIt(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "someone-elses")
	if err := os.WriteFile(victim, []byte("theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "staging.kubeconfig")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("credentials\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "theirs\n" {
		t.Errorf("the link's target now holds %q: Write followed the link", got)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		t.Errorf("%s is still a link", path)
	}
	assertMode(t, path, FileMode)
}

// TestWriteRefusesADirectoryAnotherUserMadeFirst: below a shared sticky
// directory (as /tmp), another user can make the directory a run writes
// to before the run does; its owner could then swap the files in it.
func TestWriteRefusesADirectoryAnotherUserMadeFirst(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(shared, "work")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	chownForeign(t, theirs)
	path := filepath.Join(theirs, "kubeconfig")
	err := Write(path, []byte("secret"))
	wantUntrusted(t, err, theirs, "owned by uid 54321")
	if _, serr := os.Lstat(path); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("%s was written (%v); want nothing written", path, serr)
	}
}
