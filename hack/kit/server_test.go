package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fakeDocker puts a docker command that records its calls first on PATH's
// returned directory; assertNoDocker fails the test if it ran.
func fakeDocker(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$@\" >>" + calls + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_DOCKER_CALLS", calls)
	return dir
}

func assertNoDocker(t *testing.T) {
	t.Helper()
	if raw, err := os.ReadFile(os.Getenv("FAKE_DOCKER_CALLS")); err == nil {
		t.Errorf("docker was called:\n%s", raw)
	}
}

// writeTree writes files (relative path → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGoSources: the digest follows exactly what building the command
// compiles of the module: its own and its imported packages' Go and
// embedded files, go.mod and go.sum; not tests, nor packages it does not
// import.
func TestGoSources(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"go.mod":               "module example.com/m\n\ngo 1.22\n",
		"go.sum":               "",
		"cmd/server/main.go":   "package main\n\nimport \"example.com/m/lib\"\n\nfunc main() { lib.Serve() }\n",
		"lib/lib.go":           "package lib\n\nimport _ \"embed\"\n\n//go:embed page.html\nvar page string\n\nfunc Serve() { _ = page }\n",
		"lib/page.html":        "<p>1</p>\n",
		"lib/lib_test.go":      "package lib\n",
		"lib/notes.txt":        "not compiled\n",
		"other/other.go":       "package other\n",
		"cmd/server/x_test.go": "package main\n",
	})
	env := kitEnv(os.Environ(), t.TempDir(), "debian", nil)
	digest := func() string {
		t.Helper()
		d, err := goSources(context.Background(), dir, env, "./cmd/server")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := digest()
	for _, tc := range []struct {
		file    string
		changes bool
	}{
		{"lib/lib.go", true},
		{"lib/page.html", true},
		{"cmd/server/main.go", true},
		{"go.sum", true},
		{"lib/lib_test.go", false},
		{"cmd/server/x_test.go", false},
		{"lib/notes.txt", false},
		{"other/other.go", false},
	} {
		path := filepath.Join(dir, filepath.FromSlash(tc.file))
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(append([]byte{}, orig...), "// edited\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := digest(); (got != base) != tc.changes {
			t.Errorf("editing %s: digest changed = %v, want %v", tc.file, got != base, tc.changes)
		}
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := goSources(context.Background(), dir, env, "./nonexistent"); err == nil || !strings.Contains(err.Error(), "listing the Go sources of ./nonexistent") {
		t.Errorf("goSources of a missing package: err = %v, want it to name the package", err)
	}
}

func TestKitHash(t *testing.T) {
	a := map[string]string{"debian-base": "0123456789ab", "fleet-server": "ba9876543210"}
	h := kitHash(a)
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(h) {
		t.Fatalf("kitHash = %q, want 12 hex digits", h)
	}
	if got := kitHash(map[string]string{"fleet-server": "ba9876543210", "debian-base": "0123456789ab"}); got != h {
		t.Errorf("kitHash depends on the map's order: %s and %s", h, got)
	}
	for _, other := range []map[string]string{
		{"debian-base": "0123456789ab", "fleet-server": "ba9876543211"},
		{"debian-base": "0123456789ab"},
		{"debian-base": "0123456789ab", "fleet-server": "ba9876543210", "flux-base-manifests": "000000000000"},
	} {
		if kitHash(other) == h {
			t.Errorf("kitHash(%v) = kitHash(%v)", other, a)
		}
	}
}

// TestHashFlag runs go run ./hack/kit -hash as CI does: one line of hex,
// the same twice, without Docker (a fake one records any call) and without
// creating the kit directory. It reads the module versions go.mod selects
// and the modules' directories, as a build does.
func TestHashFlag(t *testing.T) {
	kit := filepath.Join(t.TempDir(), "kit")
	t.Setenv("FLEET_KIT_DIR", kit)
	t.Setenv("PATH", fakeDocker(t)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var first string
	for i := range 2 {
		var out, errOut bytes.Buffer
		start := time.Now()
		if code := run([]string{"-hash"}, &out, &errOut); code != 0 {
			t.Fatalf("kit -hash: exit %d\n%s", code, errOut.String())
		}
		t.Logf("kit -hash took %s", time.Since(start).Round(time.Millisecond))
		if !regexp.MustCompile(`^[0-9a-f]{12}\n$`).MatchString(out.String()) {
			t.Fatalf("kit -hash printed %q, want one line of 12 hex digits", out.String())
		}
		if i == 0 {
			first = out.String()
		} else if out.String() != first {
			t.Errorf("kit -hash printed %q, then %q", first, out.String())
		}
	}
	assertNoDocker(t)
	if _, err := os.Stat(kit); !os.IsNotExist(err) {
		t.Errorf("kit -hash created the kit directory %s (stat: %v)", kit, err)
	}
}
