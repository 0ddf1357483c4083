package backend

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/internal/basicauth"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// testBackend is a Backend with random credentials, serving its three
// handlers on loopback test servers.
type testBackend struct {
	*Backend
	cfg                  Config
	log                  *testsupport.SyncBuffer
	serve, admin, health *httptest.Server
}

func newTestBackend(t *testing.T) *testBackend {
	t.Helper()
	testsupport.RequireGit(t, "the fleet server applies bundles and serves upload-pack with git")
	log := &testsupport.SyncBuffer{}
	cfg := Config{DataDir: t.TempDir(), Log: log}
	_, cfg.AdminToken = basicauth.Random("admin-")
	cfg.GitUser, cfg.GitPass = basicauth.Random("fleet-")
	cfg.ChartUser, cfg.ChartPass = basicauth.Random("charts-")
	b, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tb := &testBackend{Backend: b, cfg: cfg, log: log,
		serve: httptest.NewServer(b.ServeHandler()), admin: httptest.NewServer(b.AdminHandler()), health: httptest.NewServer(b.HealthHandler())}
	t.Cleanup(func() { tb.serve.Close(); tb.admin.Close(); tb.health.Close() })
	return tb
}

// put sends body to an admin path of base with the token given and
// returns the status and answer.
func put(t *testing.T, base, path, token string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// do sends req and returns the status and answer.
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sourceRepo is a repository with one commit on main; it returns the
// directory and the commit.
func sourceRepo(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	testsupport.Git(t, dir, "init", "--quiet", "--initial-branch=main")
	commit(t, dir, "kustomization.yaml", "resources: []\n")
	return dir, testsupport.Git(t, dir, "rev-parse", "HEAD")
}

func commit(t *testing.T, dir, name, content string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	testsupport.Git(t, dir, "add", name)
	testsupport.Git(t, dir, "commit", "--quiet", "-m", "edit "+name)
	return testsupport.Git(t, dir, "rev-parse", "HEAD")
}

// bundle is `git bundle create` of revs in dir.
func bundle(t *testing.T, dir string, revs ...string) []byte {
	t.Helper()
	file := filepath.Join(t.TempDir(), "b.bundle")
	testsupport.Git(t, dir, append([]string{"bundle", "create", "--quiet", file}, revs...)...)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lsRemote lists the served refs through the git CLI, with credentials.
func (tb *testBackend) lsRemote(t *testing.T) string {
	t.Helper()
	u, _ := url.Parse(tb.serve.URL + RepoPath)
	u.User = url.UserPassword(tb.cfg.GitUser, tb.cfg.GitPass)
	return testsupport.Git(t, "", "ls-remote", u.String())
}

func TestApplyBundle(t *testing.T) {
	tb := newTestBackend(t)
	dir, first := sourceRepo(t)
	status, answer := put(t, tb.admin.URL, AdminGitPath, tb.cfg.AdminToken, bytes.NewReader(bundle(t, dir, "main")))
	if status != http.StatusOK || !strings.Contains(answer, first+" refs/heads/main") {
		t.Fatalf("PUT %s: HTTP %d %q, want 200 naming %s refs/heads/main", AdminGitPath, status, answer, first)
	}
	if refs := tb.lsRemote(t); !strings.Contains(refs, first+"\trefs/heads/main") || !strings.Contains(refs, first+"\tHEAD") {
		t.Fatalf("served refs after the push:\n%s\nwant %s as main and HEAD", refs, first)
	}

	// A second bundle with a new history replaces the branch, and a branch
	// not in it is pruned.
	second := commit(t, dir, "b.yaml", "b: 1\n")
	testsupport.Git(t, dir, "branch", "extra")
	if status, answer := put(t, tb.admin.URL, AdminGitPath, tb.cfg.AdminToken, bytes.NewReader(bundle(t, dir, "main", "extra"))); status != http.StatusOK {
		t.Fatalf("second push: HTTP %d %q", status, answer)
	}
	if status, answer := put(t, tb.admin.URL, AdminGitPath, tb.cfg.AdminToken, bytes.NewReader(bundle(t, dir, "main"))); status != http.StatusOK {
		t.Fatalf("third push: HTTP %d %q", status, answer)
	}
	refs := tb.lsRemote(t)
	if !strings.Contains(refs, second+"\trefs/heads/main") || strings.Contains(refs, "refs/heads/extra") {
		t.Fatalf("served refs after the later pushes:\n%s\nwant main at %s and no extra", refs, second)
	}
}

func TestBadBundleKeepsServedRefs(t *testing.T) {
	tb := newTestBackend(t)
	dir, first := sourceRepo(t)
	if status, answer := put(t, tb.admin.URL, AdminGitPath, tb.cfg.AdminToken, bytes.NewReader(bundle(t, dir, "main"))); status != http.StatusOK {
		t.Fatalf("first push: HTTP %d %q", status, answer)
	}
	other, _ := sourceRepo(t)
	base := commit(t, other, "x.yaml", "x: 1\n")
	commit(t, other, "y.yaml", "y: 1\n")
	testsupport.Git(t, other, "tag", "v1")
	tests := []struct {
		name string
		body []byte
		want string // in git's reason
	}{
		{"not a bundle", []byte("this is not a bundle\n"), "does not look like a v2 or v3 bundle"},
		// An incremental bundle whose base the server never had.
		{"missing prerequisite", bundle(t, other, base+"..main"), "lacks these prerequisite commits"},
		{"a tag, not a branch", bundle(t, other, "v1"), `holds "refs/tags/v1": only branches`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := put(t, tb.admin.URL, AdminGitPath, tb.cfg.AdminToken, bytes.NewReader(tc.body))
			if status != http.StatusBadRequest || !strings.Contains(answer, tc.want) {
				t.Errorf("HTTP %d %q, want 400 with %q", status, answer, tc.want)
			}
			if strings.Contains(answer, tb.cfg.DataDir) {
				t.Errorf("the answer names the server's directory: %q", answer)
			}
			if refs := tb.lsRemote(t); !strings.Contains(refs, first+"\trefs/heads/main") {
				t.Errorf("served refs after the refused bundle:\n%s\nwant main still at %s", refs, first)
			}
		})
	}
}
