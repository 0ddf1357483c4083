package testsupport

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// KindLogExport is the fake docker FakeKindLogExport puts on PATH.
type KindLogExport struct {
	TmpDir           string // the test's TMPDIR from then on: what the export leaves there
	Done             string // touched once inspect has answered
	started, release string
}

// FakeKindLogExport puts a docker on PATH that answers kind's log export for
// the one node of cluster name, every answer carrying proxy credentials
// with the password secret. When gated, its inspect (Config.Env) answers
// only once released (CancelOnceStarted), then touches Done. TMPDIR moves
// to a directory of the test's, so that what the export leaves there can
// be checked.
func FakeKindLogExport(t testing.TB, name, secret string, gated bool) *KindLogExport {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	k := &KindLogExport{TmpDir: t.TempDir(), Done: filepath.Join(state, "inspect-done"),
		started: filepath.Join(state, "inspect-started"), release: filepath.Join(state, "inspect-release")}
	if !gated {
		touch(t, k.release)
	}
	script := `#!/bin/sh
case "$1" in
ps) echo "` + name + `-control-plane" ;;
inspect)
	if [ "$2" = "--format" ]; then echo control-plane; exit 0; fi
	touch '` + k.started + `'
	i=0; while [ ! -e '` + k.release + `' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
	echo '[{"Config":{"Env":["HTTP_PROXY=http://u:` + secret + `@proxy:3128"]}}]'
	touch '` + k.Done + `' ;;
*) echo "HTTPS_PROXY=u:` + secret + `@proxy:3128" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("TMPDIR", k.TmpDir)
	return k
}

// CancelOnceStarted cancels with cause as soon as the gated inspect has
// begun, then releases it: the export is cut short in the middle, however
// slowly a loaded machine gets there.
func (k *KindLogExport) CancelOnceStarted(t testing.TB, cancel context.CancelCauseFunc, cause error) {
	stopped := make(chan struct{})
	t.Cleanup(func() { <-stopped })
	go func() {
		defer close(stopped)
		for deadline := time.Now().Add(waitBound); !exists(k.started) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		cancel(cause)
		if err := os.WriteFile(k.release, nil, 0o600); err != nil {
			t.Errorf("releasing the fake inspect: %v", err)
		}
	}()
}

// waitBound is how long WaitFor waits: far above what a loaded machine
// needs for the few processes a fake starts.
const waitBound = time.Minute

// WaitFor waits until cond holds, failing the test after waitBound.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitBound); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitBound, what)
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func touch(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// AssertPrivateTree checks that every directory under root is 0700, every
// file 0600, and that no file holds any of secrets.
func AssertPrivateTree(t testing.TB, root string, secrets ...string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && info.Mode().Perm() != 0o700:
			t.Errorf("directory %s has mode %v, want 0700", path, info.Mode().Perm())
		case info.Mode().IsRegular() && info.Mode().Perm() != 0o600:
			t.Errorf("file %s has mode %v, want 0600", path, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if strings.Contains(string(data), s) {
				t.Errorf("%s holds the planted secret %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
}
