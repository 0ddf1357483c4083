package testsupport

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestSyncBufferTakeEmpties(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(&b, "line %d\n", i)
		}()
	}
	wg.Wait()
	if got := len(b.String()); got != 8*len("line 0\n") {
		t.Fatalf("String() has %d bytes after 8 concurrent lines, want %d", got, 8*len("line 0\n"))
	}
	if got := b.Take(); len(got) != 8*len("line 0\n") {
		t.Errorf("Take() = %q, want the 8 lines", got)
	}
	fmt.Fprint(&b, "after")
	if got := b.Take(); got != "after" {
		t.Errorf("second Take() = %q, want only what came after the first", got)
	}
	if got := b.String(); got != "" {
		t.Errorf("String() after Take = %q, want empty", got)
	}
}

// The caller's GIT_* variables and configuration must not reach git: a
// commit is made by the fixed identity even when the caller names another
// and points git at a different directory.
func TestGitIgnoresCallerEnvironment(t *testing.T) {
	RequireGit(t, "the helper under test runs it")
	dir := t.TempDir()
	t.Setenv("GIT_AUTHOR_NAME", "someone else")
	t.Setenv("GIT_DIR", filepath.Join(t.TempDir(), "elsewhere"))
	Git(t, dir, "init", "--quiet", "--initial-branch=main")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, dir, "add", "f")
	Git(t, dir, "commit", "--quiet", "-m", "one")
	if got, want := Git(t, dir, "log", "-1", "--format=%an <%ae> / %cn <%ce>"),
		"test <test@example.invalid> / test <test@example.invalid>"; got != want {
		t.Errorf("commit identity = %q, want %q", got, want)
	}
}

func TestRepoRootHoldsGoMod(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot() = %s without go.mod: %v", root, err)
	}
	if _, err := os.Stat(filepath.Join(root, "harness", "testsupport", "testsupport.go")); err != nil {
		t.Errorf("RepoRoot() = %s, which does not hold this package: %v", root, err)
	}
}
