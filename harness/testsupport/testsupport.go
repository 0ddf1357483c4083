// Package testsupport holds the helpers the module's tests share: a log
// buffer that goroutines write while a test reads it, git run the same way
// in every test repository, the repository root, and the CI rule that a
// missing tool fails a test rather than skipping it. It is not under
// harness/internal, so that the tests of hack/ and e2e/ may import it too;
// only tests and their helper packages import it.
package testsupport

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer guarded by a mutex: servers and loggers
// write it from their own goroutines while the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Take returns what was written since the last Take and empties the buffer,
// so a test can look at one phase's lines only.
func (b *SyncBuffer) Take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// RepoRoot is the module's root: the nearest directory holding go.mod at or
// above the test's working directory (its package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("finding the repository root: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("finding the repository root: no go.mod at or above the test's directory")
		}
		dir = parent
	}
}

// SkipOrFail skips the test with msg, or fails it under CI=true, where a
// missing tool or resource must not pass unnoticed.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: this test must run)", msg)
	}
	t.Skip(msg)
}

// RequireGit skips a test that needs the git CLI when it is missing (fails
// it under CI=true); why says what the test needs git for.
func RequireGit(t testing.TB, why string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		SkipOrFail(t, "git binary not found: "+why)
	}
}

// The author and committer of every commit Git makes: a fixed neutral one,
// so no test depends on who runs it.
const (
	gitIdentityName  = "test"
	gitIdentityEmail = "test@example.invalid"
)

// GitEnv is the environment for a git command in a test: the process's
// environment without any GIT_* variable, a fixed identity, no system or
// global configuration and no credential prompt, so the developer's own
// settings (signing, hooks, default branch) cannot change a result.
func GitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"GIT_AUTHOR_NAME="+gitIdentityName, "GIT_AUTHOR_EMAIL="+gitIdentityEmail,
		"GIT_COMMITTER_NAME="+gitIdentityName, "GIT_COMMITTER_EMAIL="+gitIdentityEmail,
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
	)
}

// Git runs git with args in dir (the current directory when empty) under
// GitEnv, fails the test with git's output when it fails, and returns its
// combined output without surrounding white space.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = GitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// WriteFile writes content to dir/name (a slash-separated path), making
// the directories it needs.
func WriteFile(t testing.TB, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteChart writes a minimal chart (a Chart.yaml and one ConfigMap
// template) at <root>/<name> and returns its directory.
func WriteChart(t testing.TB, root, name, version string) string {
	t.Helper()
	dir := filepath.Join(root, name)
	WriteFile(t, dir, "Chart.yaml", "apiVersion: v2\nname: "+name+"\nversion: "+version+"\n")
	WriteFile(t, dir, "templates/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "+name+"\n")
	return dir
}

// WriteCharts writes a minimal chart (WriteChart) of each name and version
// into a new directory and returns it.
func WriteCharts(t testing.TB, charts ...[2]string) string {
	t.Helper()
	root := t.TempDir()
	for _, c := range charts {
		WriteChart(t, root, c[0], c[1])
	}
	return root
}
