package clusterserver

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/chartserver/chartservertest"
	"github.com/flux-fleet/flux-fleet/harness/clusterserver/backend"
	"github.com/flux-fleet/flux-fleet/harness/internal/basicauth"
	"github.com/flux-fleet/flux-fleet/harness/internal/httplog"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// sourceRepo is a repository with one commit on main.
func sourceRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testsupport.Git(t, dir, "init", "--quiet", "--initial-branch=main")
	testsupport.Git(t, dir, "commit", "--quiet", "--allow-empty", "-m", "fleet")
	return dir
}

// TestClientPut sends the client's own tar through put to a real backend:
// the two ends of the admin protocol agree.
func TestClientPut(t *testing.T) {
	testsupport.RequireGit(t, "the fleet server creates its bare repository with git")
	cfg := backend.Config{DataDir: t.TempDir(), AdminToken: randomToken()}
	cfg.GitUser, cfg.GitPass = basicauth.Random("fleet-")
	cfg.ChartUser, cfg.ChartPass = basicauth.Random("charts-")
	b, err := backend.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(b.AdminHandler())
	defer admin.Close()

	s := &Server{adminToken: cfg.AdminToken, log: httplog.New(io.Discard, "")}
	set := chartservertest.Set(t, [2]string{"app", "1.0.0"}, [2]string{"db", "2.0.0"})
	answer, err := s.put(t.Context(), admin.URL+backend.AdminChartsPath, set.WriteTar)
	if err != nil || !strings.Contains(answer, "app 1.0.0 "+set.Entries[0].Digest) || !strings.Contains(answer, "db 2.0.0 "+set.Entries[1].Digest) {
		t.Fatalf("put = %q, %v; want both charts with their digests", answer, err)
	}
	s.adminToken = "wrong"
	_, err = s.put(t.Context(), admin.URL+backend.AdminChartsPath, set.WriteTar)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("put with a wrong token = %v, want HTTP 401", err)
	}
}
