package testsupport

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FakeKindLogExport puts a docker on PATH that answers kind's log export for
// the one node of cluster name, every answer carrying proxy credentials
// with the password secret: its inspect (Config.Env) takes delay, then
// touches done. TMPDIR moves to a directory of the test's, tmpDir, so that
// what the export leaves there can be checked.
func FakeKindLogExport(t testing.TB, name, secret string, delay time.Duration) (tmpDir, done string) {
	t.Helper()
	bin, tmpDir := t.TempDir(), t.TempDir()
	done = filepath.Join(t.TempDir(), "inspect-done")
	script := `#!/bin/sh
case "$1" in
ps) echo "` + name + `-control-plane" ;;
inspect)
	if [ "$2" = "--format" ]; then echo control-plane; exit 0; fi
	sleep ` + strconv.FormatFloat(delay.Seconds(), 'f', 3, 64) + `
	echo '[{"Config":{"Env":["HTTP_PROXY=http://u:` + secret + `@proxy:3128"]}}]'
	touch '` + done + `' ;;
*) echo "HTTPS_PROXY=u:` + secret + `@proxy:3128" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("TMPDIR", tmpDir)
	return tmpDir, done
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
