package gitserver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// confinedServer starts a server on the fixture repository and creates two
// bare repositories with commits it must not serve: a sibling beside the
// served one, and one elsewhere on the host.
func confinedServer(t *testing.T) (s *Server, sibling, elsewhere string, logBuf *testsupport.SyncBuffer) {
	t.Helper()
	requireGit(t)
	repo := fixtureRepo(t)
	logBuf = &testsupport.SyncBuffer{}
	s, err := Start(t.Context(), Options{Addr: "127.0.0.1", SourceDir: repo, Log: logBuf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	sibling = filepath.Join(filepath.Dir(s.bareDir), "sibling.git")
	testsupport.Git(t, "", "clone", "--quiet", "--bare", repo, sibling)
	elsewhere = filepath.Join(t.TempDir(), "secret.git")
	testsupport.Git(t, "", "clone", "--quiet", "--bare", repo, elsewhere)
	return s, sibling, elsewhere, logBuf
}

// rawRequest sends one HTTP/1.1 request with the target exactly as given
// (no client-side cleaning or escaping) and returns status and body.
func rawRequest(t *testing.T, addr, method, target, auth string, body []byte, header ...string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", method, target, addr, len(body))
	if auth != "" {
		fmt.Fprintf(&req, "Authorization: Basic %s\r\n", auth)
	}
	for _, h := range header {
		req.WriteString(h + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: reading response: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return resp.StatusCode, string(b)
}

var commitID = regexp.MustCompile(`[0-9a-f]{40}`)

// TestConfinedToServedRepository sends real HTTP requests for every way of
// naming another repository: only the served repository's two upload-pack
// URLs answer, everything else is 404 and shows no ref.
func TestConfinedToServedRepository(t *testing.T) {
	s, _, elsewhere, _ := confinedServer(t)
	addr := s.listener.Addr().String()
	user, pass := s.Credentials()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	wrongAuth := base64.StdEncoding.EncodeToString([]byte(user + ":x" + pass))
	const adv = "/info/refs?service=git-upload-pack"
	up := strings.Repeat("/..", 12) // more than enough to reach / from the server's directory
	upEncoded := strings.Repeat("/%2e%2e", 12)
	elsewhereDir := filepath.ToSlash(filepath.Dir(elsewhere))

	tests := []struct {
		name   string
		method string
		target string
		auth   string
		want   int
	}{
		{"served repository", "GET", "/fleet.git" + adv, auth, 200},
		{"served repository without credentials", "GET", "/fleet.git" + adv, "", 401},
		{"served repository, wrong password", "GET", "/fleet.git" + adv, wrongAuth, 401},
		{"served upload-pack with GET", "GET", "/fleet.git/git-upload-pack", auth, 405},
		{"served info/refs with POST", "POST", "/fleet.git" + adv, auth, 405},

		{"sibling by name", "GET", "/sibling.git" + adv, auth, 404},
		{"sibling through ..", "GET", "/fleet.git/../sibling.git" + adv, auth, 404},
		{"sibling through encoded ..", "GET", "/fleet.git/%2e%2e/sibling.git" + adv, auth, 404},
		{"sibling through encoded .. and slash", "GET", "/fleet.git%2f%2e%2e%2fsibling.git" + adv, auth, 404},
		{"sibling upload-pack", "POST", "/sibling.git/git-upload-pack", auth, 404},
		{"sibling upload-pack through ..", "POST", "/fleet.git/../sibling.git/git-upload-pack", auth, 404},
		{"elsewhere through ..", "GET", up + elsewhereDir + "/secret.git" + adv, auth, 404},
		{"elsewhere through encoded ..", "GET", upEncoded + elsewhereDir + "/secret.git" + adv, auth, 404},
		{"elsewhere through .. without credentials", "GET", up + elsewhereDir + "/secret.git" + adv, "", 404},
		{"elsewhere by absolute path", "GET", elsewhereDir + "/secret.git" + adv, auth, 404},
		{"served repository by absolute path", "GET", filepath.ToSlash(s.bareDir) + adv, auth, 404},
		{"served repository, encoded slash", "GET", "/fleet.git%2finfo%2frefs?service=git-upload-pack", auth, 404},
		{"served repository, encoded letter", "GET", "/%66leet.git" + adv, auth, 404},
		{"served repository, leading double slash", "GET", "//fleet.git" + adv, auth, 404},
		{"served repository, inner double slash", "GET", "/fleet.git//info/refs?service=git-upload-pack", auth, 404},
		{"served repository, dot segment", "GET", "/fleet.git/./info/refs?service=git-upload-pack", auth, 404},
		{"served repository, trailing slash", "GET", "/fleet.git/info/refs/?service=git-upload-pack", auth, 404},
		{"served repository, other case", "GET", "/Fleet.git" + adv, auth, 404},
		{"name without .git", "GET", "/fleet" + adv, auth, 404},
		{"push advertisement", "GET", "/fleet.git/info/refs?service=git-receive-pack", auth, 404},
		{"push", "POST", "/fleet.git/git-receive-pack", auth, 404},
		{"dumb protocol refs", "GET", "/fleet.git/info/refs", auth, 404},
		{"dumb protocol HEAD", "GET", "/fleet.git/HEAD", auth, 404},
		{"dumb protocol packs", "GET", "/fleet.git/objects/info/packs", auth, 404},
		{"root", "GET", "/", auth, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := rawRequest(t, addr, tt.method, tt.target, tt.auth, nil)
			if status != tt.want {
				t.Fatalf("%s %s: HTTP %d, want %d (body %.200q)", tt.method, tt.target, status, tt.want, body)
			}
			if status == 200 {
				if !strings.HasPrefix(body, "001e# service=git-upload-pack\n0000") || !strings.Contains(body, s.Revision()+" refs/heads/main") {
					t.Errorf("advertisement lacks the announcement or %s refs/heads/main:\n%q", s.Revision(), body)
				}
				return
			}
			if strings.Contains(body, "refs/heads") || commitID.MatchString(body) {
				t.Errorf("refused request leaks refs: %q", body)
			}
		})
	}
}

// TestGitCLIConfined uses the git binary: the served repository clones, a
// bare repository beside it cannot even be listed.
func TestGitCLIConfined(t *testing.T) {
	s, sibling, elsewhere, _ := confinedServer(t)
	user, pass := s.Credentials()
	clone := filepath.Join(t.TempDir(), "clone")
	testsupport.Git(t, "", "clone", "--quiet", cloneURL(t, s.URL(), user, pass), clone)
	if got := testsupport.Git(t, clone, "rev-parse", "HEAD"); got != s.Revision() {
		t.Errorf("cloned HEAD %s, want %s", got, s.Revision())
	}
	base := strings.TrimSuffix(s.URL(), "/fleet.git")
	for _, tt := range []struct{ name, url string }{
		{"sibling by name", base + "/" + filepath.Base(sibling)},
		{"sibling through ..", base + "/fleet.git/../" + filepath.Base(sibling)},
		{"sibling through encoded ..", base + "/fleet.git/%2e%2e/" + filepath.Base(sibling)},
		{"elsewhere by absolute path", base + filepath.ToSlash(elsewhere)},
	} {
		url := tt.url
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("git", "ls-remote", cloneURL(t, url, user, pass))
			cmd.Env = testsupport.GitEnv()
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("git ls-remote %s succeeded:\n%s", url, out)
			}
			if !strings.Contains(string(out), "not found") || strings.Contains(string(out), "refs/heads") {
				t.Errorf("git ls-remote %s: want a not-found error and no refs, got:\n%s", url, out)
			}
		})
	}
}

// TestRequestLog checks that requests are logged through Options.Log only:
// nothing reaches Go's global logger, and no password is written.
func TestRequestLog(t *testing.T) {
	var global testsupport.SyncBuffer
	prevOut, prevFlags := log.Writer(), log.Flags()
	log.SetOutput(&global)
	t.Cleanup(func() { log.SetOutput(prevOut); log.SetFlags(prevFlags) })

	s, _, _, logBuf := confinedServer(t)
	user, pass := s.Credentials()
	testsupport.Git(t, "", "clone", "--quiet", cloneURL(t, s.URL(), user, pass), filepath.Join(t.TempDir(), "c"))
	addr := s.listener.Addr().String()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	rawRequest(t, addr, "GET", "/sibling.git/info/refs?service=git-upload-pack", auth, nil)
	rawRequest(t, addr, "GET", "/fleet.git/info/refs?service=git-upload-pack", "", nil)

	if g := global.String(); g != "" {
		t.Errorf("Go's global logger got:\n%s", g)
	}
	got := logBuf.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^GET /fleet\.git/info/refs\?service=git-upload-pack 200 \d+m?s$`),
		regexp.MustCompile(`(?m)^POST /fleet\.git/git-upload-pack 200 \d+m?s$`),
		regexp.MustCompile(`(?m)^GET /sibling\.git/info/refs\?service=git-upload-pack 404 \d+m?s: not the served repository's upload-pack$`),
		regexp.MustCompile(`(?m)^GET /fleet\.git/info/refs\?service=git-upload-pack 401 \d+m?s: missing or wrong credentials$`),
	} {
		if !want.MatchString(got) {
			t.Errorf("request log lacks a line matching %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, pass) {
		t.Errorf("request log contains the password:\n%s", got)
	}
}

// TestUploadPackGzipBody speaks the protocol by hand with a gzip-encoded
// request, as git sends large negotiations: the answer is a NAK and a pack.
func TestUploadPackGzipBody(t *testing.T) {
	s, _, _, _ := confinedServer(t)
	user, pass := s.Credentials()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	want := "want " + s.Revision() + "\n"
	var raw bytes.Buffer
	fmt.Fprintf(&raw, "%04x%s0000%04x%s", len(want)+4, want, len("done\n")+4, "done\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	for _, tt := range []struct {
		name    string
		body    []byte
		headers []string
	}{
		{"plain", raw.Bytes(), nil},
		{"gzip", gz.Bytes(), []string{"Content-Encoding: gzip"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := rawRequest(t, s.listener.Addr().String(), "POST", "/fleet.git/git-upload-pack", auth, tt.body,
				append(tt.headers, "Content-Type: application/x-git-upload-pack-request")...)
			if status != 200 || !strings.HasPrefix(body, "0008NAK\n") || !strings.Contains(body, "PACK") {
				t.Errorf("HTTP %d, body starts %.40q: want 200, NAK, a pack", status, body)
			}
		})
	}
	if status, _ := rawRequest(t, s.listener.Addr().String(), "POST", "/fleet.git/git-upload-pack", auth, []byte("not gzip"), "Content-Encoding: gzip"); status != 400 {
		t.Errorf("a body that is not gzip: HTTP %d, want 400", status)
	}
}
