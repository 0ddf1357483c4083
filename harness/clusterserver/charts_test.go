package clusterserver

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"

	"github.com/flux-fleet/flux-fleet/harness/internal/httplog"
)

// chartArchive packages a minimal chart as `helm package` would and
// returns the .tgz's path.
func chartArchive(t *testing.T, name, version string) string {
	t.Helper()
	ch, err := loader.LoadDir(chartDir(t, name, version))
	if err != nil {
		t.Fatal(err)
	}
	path, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// chartDir writes a minimal chart directory and returns its path.
func chartDir(t *testing.T, name, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	files := map[string]string{
		"Chart.yaml":               "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n",
		"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n",
	}
	for f, content := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tarOf is a tar holding each content under its name.
func tarOf(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: typ, Mode: 0o600, Size: int64(len(e.content)), Linkname: e.link}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type tarEntry struct {
	name    string
	content []byte
	typ     byte
	link    string
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// index GETs index.yaml with the chart credentials.
func (tb *testBackend) index(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, tb.serve.URL+"/index.yaml", nil)
	req.SetBasicAuth(tb.cfg.ChartUser, tb.cfg.ChartPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /index.yaml: HTTP %d %s", resp.StatusCode, b)
	}
	return string(b)
}

func TestReplaceCharts(t *testing.T) {
	tb := newTestBackend(t)
	if idx := tb.index(t); strings.Contains(idx, "version:") {
		t.Fatalf("a new server serves charts:\n%s", idx)
	}
	app := chartArchive(t, "app", "1.2.3")
	body := tarOf(t, tarEntry{name: "app-1.2.3.tgz", content: readFile(t, app)})
	status, answer := put(t, tb.admin.URL, AdminChartsPath, tb.cfg.AdminToken, bytes.NewReader(body))
	if status != http.StatusOK || !strings.HasPrefix(answer, "app 1.2.3 sha256:") {
		t.Fatalf("PUT %s: HTTP %d %q, want 200 naming app 1.2.3", AdminChartsPath, status, answer)
	}
	if idx := tb.index(t); !strings.Contains(idx, "charts/app-1.2.3.tgz") {
		t.Fatalf("index.yaml after the push lacks app-1.2.3.tgz:\n%s", idx)
	}

	// A set with a second chart replaces the first set as a whole.
	db := chartArchive(t, "db", "0.1.0")
	body = tarOf(t, tarEntry{name: "db-0.1.0.tgz", content: readFile(t, db)})
	if status, answer := put(t, tb.admin.URL, AdminChartsPath, tb.cfg.AdminToken, bytes.NewReader(body)); status != http.StatusOK {
		t.Fatalf("second push: HTTP %d %q", status, answer)
	}
	if idx := tb.index(t); !strings.Contains(idx, "db-0.1.0.tgz") || strings.Contains(idx, "app-1.2.3.tgz") {
		t.Fatalf("index.yaml after the second push:\n%s\nwant db only", idx)
	}
}

func TestRefusedChartsKeepServedSet(t *testing.T) {
	tb := newTestBackend(t)
	app := readFile(t, chartArchive(t, "app", "1.2.3"))
	if status, answer := put(t, tb.admin.URL, AdminChartsPath, tb.cfg.AdminToken, bytes.NewReader(tarOf(t, tarEntry{name: "app.tgz", content: app}))); status != http.StatusOK {
		t.Fatalf("first push: HTTP %d %q", status, answer)
	}
	outside := filepath.Join(filepath.Dir(tb.cfg.DataDir), "escaped.tgz")
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"parent path", tarOf(t, tarEntry{name: "../escaped.tgz", content: app}), `"../escaped.tgz" is not a plain file name`},
		{"absolute path", tarOf(t, tarEntry{name: outside, content: app}), "is not a plain file name"},
		{"directory", tarOf(t, tarEntry{name: "sub/app.tgz", content: app}), `"sub/app.tgz" is not a plain file name`},
		{"symbolic link", tarOf(t, tarEntry{name: "app.tgz", typ: tar.TypeSymlink, link: "/etc/passwd"}), "is not a regular file"},
		{"not an archive name", tarOf(t, tarEntry{name: "notes.txt", content: []byte("x")}), "is not a chart archive (.tgz)"},
		{"twice", tarOf(t, tarEntry{name: "a.tgz", content: app}, tarEntry{name: "a.tgz", content: app}), "appears twice"},
		{"not a chart", tarOf(t, tarEntry{name: "x.tgz", content: []byte("not gzip")}), "chart archive"},
		{"same chart twice", tarOf(t, tarEntry{name: "a.tgz", content: app}, tarEntry{name: "b.tgz", content: app}), "are both app version 1.2.3"},
		{"not a tar", []byte(strings.Repeat("garbage ", 200)), "reading the tar of charts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := put(t, tb.admin.URL, AdminChartsPath, tb.cfg.AdminToken, bytes.NewReader(tc.body))
			if status != http.StatusBadRequest || !strings.Contains(answer, tc.want) {
				t.Errorf("HTTP %d %q, want 400 with %q", status, answer, tc.want)
			}
			if _, err := os.Lstat(outside); err == nil {
				t.Fatalf("%s was written outside the server's directory", outside)
			}
			if idx := tb.index(t); !strings.Contains(idx, "app-1.2.3.tgz") {
				t.Errorf("index.yaml after the refused push lost app 1.2.3:\n%s", idx)
			}
		})
	}
}

func TestChartArchiveSizeBound(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// Only the header is read before the refusal: the content never is.
	if err := tw.WriteHeader(&tar.Header{Name: "big.tgz", Typeflag: tar.TypeReg, Mode: 0o600, Size: MaxChartArchive + 1}); err != nil {
		t.Fatal(err)
	}
	_, err := untarArchives(&buf, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `"big.tgz" has 20971521 bytes`) {
		t.Fatalf("untarArchives = %v, want the size refused", err)
	}
}

func TestAdminAuthorization(t *testing.T) {
	tb := newTestBackend(t)
	for _, token := range []string{"", "wrong-" + tb.cfg.AdminToken, tb.cfg.AdminToken[:len(tb.cfg.AdminToken)-1]} {
		for _, path := range []string{AdminGitPath, AdminChartsPath} {
			if status, _ := put(t, tb.admin.URL, path, token, strings.NewReader("x")); status != http.StatusUnauthorized {
				t.Errorf("PUT %s with token %q: HTTP %d, want 401", path, token, status)
			}
		}
	}
	// On the pod IP the admin paths do not exist, token or not.
	if status, _ := put(t, tb.health.URL, AdminGitPath, tb.cfg.AdminToken, strings.NewReader("x")); status != http.StatusNotFound {
		t.Errorf("PUT %s on the health listener: HTTP %d, want 404", AdminGitPath, status)
	}
	for _, base := range []string{tb.health.URL, tb.admin.URL} {
		resp, err := http.Get(base + HealthzPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: HTTP %d, want 200", HealthzPath, resp.StatusCode)
		}
	}
	// Git and the charts each take their own credentials only.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, tb.serve.URL+"/index.yaml", nil)
	req.SetBasicAuth(tb.cfg.GitUser, tb.cfg.GitPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("index.yaml with the git credentials: HTTP %d, want 401", resp.StatusCode)
	}
}

// TestLogHoldsNoSecret plants every credential and the token, sends
// right and wrong ones through every path, and looks for them in the log.
func TestLogHoldsNoSecret(t *testing.T) {
	tb := newTestBackend(t)
	dir, _ := sourceRepo(t)
	put(t, tb.admin.URL, AdminGitPath, tb.cfg.AdminToken, bytes.NewReader(bundle(t, dir, "main")))
	put(t, tb.admin.URL, AdminGitPath, "wrong-"+tb.cfg.GitPass, strings.NewReader("x"))
	put(t, tb.admin.URL, AdminGitPath, tb.cfg.AdminToken, strings.NewReader("not a bundle"))
	put(t, tb.admin.URL, AdminChartsPath, tb.cfg.AdminToken, bytes.NewReader(tarOf(t, tarEntry{name: "x.tgz", content: []byte("x")})))
	tb.lsRemote(t)
	tb.index(t)
	logged := tb.log.String()
	if !strings.Contains(logged, "PUT "+AdminGitPath+" 401") || !strings.Contains(logged, "GET /index.yaml 200") {
		t.Fatalf("the log lacks the requests sent:\n%s", logged)
	}
	for name, secret := range map[string]string{"admin token": tb.cfg.AdminToken, "git password": tb.cfg.GitPass,
		"chart password": tb.cfg.ChartPass, "chart user": tb.cfg.ChartUser, "git user": tb.cfg.GitUser} {
		if strings.Contains(logged, secret) {
			t.Errorf("the log holds the %s:\n%s", name, logged)
		}
	}
}

// TestClientPut sends the client's own tar through put to a real Backend:
// the two ends of the admin protocol agree.
func TestClientPut(t *testing.T) {
	tb := newTestBackend(t)
	s := &Server{adminToken: tb.cfg.AdminToken, log: httplog.New(io.Discard, "")}
	archives := []string{chartArchive(t, "app", "1.0.0"), chartArchive(t, "db", "2.0.0")}
	answer, err := s.put(t.Context(), tb.admin.URL+AdminChartsPath, func(w io.Writer) error { return writeTar(w, archives) })
	if err != nil || !strings.Contains(answer, "app 1.0.0") || !strings.Contains(answer, "db 2.0.0") {
		t.Fatalf("put = %q, %v; want both charts", answer, err)
	}
	_, err = s.put(t.Context(), tb.admin.URL+AdminChartsPath, func(w io.Writer) error {
		return writeTar(w, []string{filepath.Join(t.TempDir(), "missing.tgz")})
	})
	if err == nil || !strings.Contains(err.Error(), "missing.tgz") {
		t.Fatalf("put of a missing file = %v, want an error naming it", err)
	}
	s.adminToken = "wrong"
	_, err = s.put(t.Context(), tb.admin.URL+AdminChartsPath, func(w io.Writer) error { return writeTar(w, archives) })
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("put with a wrong token = %v, want HTTP 401", err)
	}
	if idx := tb.index(t); !strings.Contains(idx, "db-2.0.0.tgz") {
		t.Fatalf("index.yaml lacks the pushed charts:\n%s", idx)
	}
}
