package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The log carries the runs' errors: it and a directory made for it are the
// owner's only, an older log at the same path included.
func TestCreateRunLogIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work")
	fresh := filepath.Join(dir, "bench.log")
	older := filepath.Join(t.TempDir(), "older.log")
	if err := os.WriteFile(older, []byte("an older run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fresh, older} {
		f, err := createRunLog(path)
		if err != nil {
			t.Fatalf("createRunLog(%s): %v", path, err)
		}
		f.Close()
		assertPerm(t, path, 0o600)
	}
	assertPerm(t, dir, 0o700)
	if data, _ := os.ReadFile(older); len(data) != 0 {
		t.Errorf("the older log was not emptied: %q", data)
	}
}

func assertPerm(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}
