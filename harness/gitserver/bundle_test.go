package gitserver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// TestBundle bundles the served branch and clones it elsewhere: the clone
// holds exactly the served revision and its history.
func TestBundle(t *testing.T) {
	requireGit(t)
	s, err := Start(t.Context(), Options{Addr: "127.0.0.1", SourceDir: fixtureRepo(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := s.Revision()
	second, err := s.Publish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Bundle(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "fleet.bundle")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if heads := testsupport.Git(t, "", "bundle", "list-heads", file); heads != second+" refs/heads/main" {
		t.Fatalf("bundle heads %q, want %s refs/heads/main", heads, second)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	testsupport.Git(t, "", "clone", "--quiet", "--bare", file, clone)
	if log := testsupport.Git(t, clone, "log", "--format=%H", "main"); log != second+"\n"+first {
		t.Fatalf("history in the bundle:\n%s\nwant %s then %s", log, second, first)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Bundle(t.Context(), &buf); err == nil {
		t.Fatal("Bundle after Close succeeded")
	}
}

func TestNewHandler(t *testing.T) {
	requireGit(t)
	bare := filepath.Join(t.TempDir(), "x.git")
	testsupport.Git(t, "", "init", "--quiet", "--bare", bare)
	for _, bad := range []struct{ name, user, pass string }{{"../x", "u", "p"}, {"x", "", "p"}, {"x", "u", ""}} {
		if _, err := NewHandler(bad.name, bare, bad.user, bad.pass, nil); err == nil {
			t.Errorf("NewHandler(%q, user %q, password %q) = nil error", bad.name, bad.user, bad.pass)
		}
	}
	h, err := NewHandler("fleet.git", bare, "u", "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for path, want := range map[string]int{"/fleet.git/info/refs?service=git-upload-pack": http.StatusUnauthorized, "/x.git/info/refs?service=git-upload-pack": http.StatusNotFound} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: HTTP %d, want %d", path, resp.StatusCode, want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/fleet.git/info/refs?service=git-upload-pack", nil)
	req.SetBasicAuth("u", "p")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "upload-pack-advertisement") {
		t.Errorf("with credentials: HTTP %d %s, want 200 and an advertisement", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
