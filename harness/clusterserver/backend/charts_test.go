package backend

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
	"github.com/flux-fleet/flux-fleet/harness/chartserver/chartservertest"
)

// setTar is the set as the client sends it.
func setTar(t *testing.T, set chartrepo.Set) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := set.WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// setFiles are the tar entries of set, archives named as in entries, for
// tars made by hand.
func setFiles(t *testing.T, set chartrepo.Set) []tarEntry {
	t.Helper()
	entries, err := json.Marshal(set.Entries)
	if err != nil {
		t.Fatal(err)
	}
	files := []tarEntry{{name: chartrepo.IndexFile, content: set.Index}, {name: chartrepo.EntriesFile, content: entries}}
	for _, e := range set.Entries {
		files = append(files, tarEntry{name: e.File, content: e.Archive})
	}
	return files
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

// get GETs path of the chart repository with the chart credentials and
// returns the status and body.
func (tb *testBackend) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, tb.serve.URL+path, nil)
	req.SetBasicAuth(tb.cfg.ChartUser, tb.cfg.ChartPass)
	return do(t, req)
}

// index is index.yaml, which must be served.
func (tb *testBackend) index(t *testing.T) string {
	t.Helper()
	status, body := tb.get(t, "/index.yaml")
	if status != http.StatusOK {
		t.Fatalf("GET /index.yaml: HTTP %d %s", status, body)
	}
	return body
}

func TestReplaceCharts(t *testing.T) {
	tb := newTestBackend(t)
	if status, body := tb.get(t, "/index.yaml"); status != http.StatusNotFound {
		t.Fatalf("a new server answers index.yaml with HTTP %d:\n%s", status, body)
	}
	app := chartservertest.Set(t, [2]string{"app", "1.2.3"})
	status, answer := put(t, tb.admin.URL, AdminChartsPath, tb.cfg.AdminToken, bytes.NewReader(setTar(t, app)))
	if status != http.StatusOK || answer != "app 1.2.3 "+app.Entries[0].Digest+"\n" {
		t.Fatalf("PUT %s: HTTP %d %q, want 200 naming app 1.2.3 %s", AdminChartsPath, status, answer, app.Entries[0].Digest)
	}
	if idx := tb.index(t); idx != string(app.Index) {
		t.Fatalf("index.yaml after the push is not the set's:\n%s", idx)
	}
	if status, body := tb.get(t, "/charts/app-1.2.3.tgz"); status != http.StatusOK || body != string(app.Entries[0].Archive) {
		t.Fatalf("GET /charts/app-1.2.3.tgz: HTTP %d, %d bytes; want the archive pushed", status, len(body))
	}
	if status, body := tb.get(t, "/v2/charts/app/manifests/1.2.3"); status != http.StatusOK || body != string(app.Entries[0].Manifest) {
		t.Fatalf("GET the OCI manifest of app 1.2.3: HTTP %d %s; want the manifest pushed", status, body)
	}

	// A set with a second chart replaces the first set as a whole.
	db := chartservertest.Set(t, [2]string{"db", "0.1.0"})
	if status, answer := put(t, tb.admin.URL, AdminChartsPath, tb.cfg.AdminToken, bytes.NewReader(setTar(t, db))); status != http.StatusOK {
		t.Fatalf("second push: HTTP %d %q", status, answer)
	}
	if idx := tb.index(t); !strings.Contains(idx, "db-0.1.0.tgz") || strings.Contains(idx, "app-1.2.3.tgz") {
		t.Fatalf("index.yaml after the second push:\n%s\nwant db only", idx)
	}
	if status, _ := tb.get(t, "/v2/charts/app/manifests/1.2.3"); status != http.StatusNotFound {
		t.Fatalf("the OCI tag of app 1.2.3 after a set without it: HTTP %d, want 404", status)
	}
}

func TestRefusedChartsKeepServedSet(t *testing.T) {
	tb := newTestBackend(t)
	set := chartservertest.Set(t, [2]string{"app", "1.2.3"})
	if status, answer := put(t, tb.admin.URL, AdminChartsPath, tb.cfg.AdminToken, bytes.NewReader(setTar(t, set))); status != http.StatusOK {
		t.Fatalf("first push: HTTP %d %q", status, answer)
	}
	files := setFiles(t, set)
	index, entries, app := files[0], files[1], files[2]
	changed := func(f func(e *chartrepo.Entry)) tarEntry {
		e := set.Entries[0]
		f(&e)
		b, err := json.Marshal([]chartrepo.Entry{e})
		if err != nil {
			t.Fatal(err)
		}
		return tarEntry{name: chartrepo.EntriesFile, content: b}
	}
	twice := set.Entries[0]
	twice.File = "app-again.tgz"
	twiceJSON, _ := json.Marshal([]chartrepo.Entry{set.Entries[0], twice})
	outside := filepath.Join(filepath.Dir(tb.cfg.DataDir), "escaped.tgz")
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"parent path", tarOf(t, index, entries, tarEntry{name: "../escaped.tgz", content: app.content}), `"../escaped.tgz" is not a plain file name`},
		{"absolute path", tarOf(t, tarEntry{name: outside, content: app.content}), "is not a plain file name"},
		{"directory", tarOf(t, tarEntry{name: "sub/app.tgz", content: app.content}), `"sub/app.tgz" is not a plain file name`},
		{"symbolic link", tarOf(t, tarEntry{name: "app.tgz", typ: tar.TypeSymlink, link: "/etc/passwd"}), "is not a regular file"},
		{"not an archive name", tarOf(t, tarEntry{name: "notes.txt", content: []byte("x")}), "is not a chart archive (.tgz)"},
		{"twice", tarOf(t, index, entries, app, app), `"app-1.2.3.tgz" appears twice`},
		{"no index", tarOf(t, entries, app), "the tar has no index.yaml"},
		{"no entries", tarOf(t, index, app), "the tar has no charts.json"},
		{"archive missing", tarOf(t, index, entries), `archive "app-1.2.3.tgz" is not in the tar`},
		{"stray archive", tarOf(t, index, entries, app, tarEntry{name: "x.tgz", content: []byte("x")}), `entry "x.tgz" is no chart's archive`},
		{"archive not the digest's", tarOf(t, index, entries, tarEntry{name: app.name, content: []byte("not the chart")}), "is not the archive's"},
		{"manifest not the archive's", tarOf(t, index, changed(func(e *chartrepo.Entry) {
			e.Manifest = bytes.Replace(e.Manifest, []byte(strings.TrimPrefix(e.Digest, "sha256:")), []byte(strings.Repeat("0", 64)), 1)
		}), app), "the manifest's one layer must be the archive"},
		{"config not the manifest's", tarOf(t, index, changed(func(e *chartrepo.Entry) { e.Config = []byte(`{"name":"other"}`) }), app), "the manifest's config is not the config sent"},
		{"tag not a tag", tarOf(t, index, changed(func(e *chartrepo.Entry) { e.Tag = "1.2.3+x" }), app), "cannot form an OCI reference"},
		{"same chart twice", tarOf(t, index, tarEntry{name: chartrepo.EntriesFile, content: twiceJSON}, app, tarEntry{name: "app-again.tgz", content: app.content}), "are both app version 1.2.3"},
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
			if idx := tb.index(t); idx != string(set.Index) {
				t.Errorf("index.yaml after the refused push is not app 1.2.3's:\n%s", idx)
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
	_, err := chartrepo.ReadTar(&buf, chartrepo.Limits{FileBytes: MaxChartArchive, Charts: MaxChartArchives})
	if err == nil || !strings.Contains(err.Error(), `"big.tgz" has 20971521 bytes`) {
		t.Fatalf("ReadTar = %v, want the size refused", err)
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
	put(t, tb.admin.URL, AdminChartsPath, tb.cfg.AdminToken, bytes.NewReader(setTar(t, chartservertest.Set(t, [2]string{"app", "1.0.0"}))))
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
