package chartserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/getter"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

const clientTimeout = 30 * time.Second

// writeChart writes a minimal chart <root>/<name> whose values.yaml sets
// greeting, and returns its directory.
func writeChart(t *testing.T, root, name, version, greeting string) string {
	t.Helper()
	dir := filepath.Join(root, name)
	testsupport.WriteFile(t, dir, "Chart.yaml", fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ndescription: test chart %s\n", name, version, name))
	testsupport.WriteFile(t, dir, "values.yaml", "greeting: "+greeting+"\n")
	testsupport.WriteFile(t, dir, "templates/configmap.yaml",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n")
	return dir
}

// start starts a server on 127.0.0.1 and checks, at the end of the test,
// that Close stops it and removes its directory.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Addr = "127.0.0.1"
	began := time.Now()
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start (%d charts): %.0fms, serving %s", len(s.Charts()), ms(time.Since(began)), s.URL())
	t.Cleanup(func() {
		tmp := s.tmpDir
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Errorf("Close left %s behind", tmp)
		}
		if c, err := net.DialTimeout("tcp", s.Host(), clientTimeout); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", s.Host())
		}
	})
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func chartByName(t *testing.T, s *Server, name string) Chart {
	t.Helper()
	for _, c := range s.Charts() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("chart %s not served; served: %v", name, s.Charts())
	return Chart{}
}

// helmRepoFetch goes the way `helm repo add/pull` goes: index.yaml
// through the SDK's ChartRepository, then the archive its url points to.
func helmRepoFetch(t *testing.T, s *Server, user, pass, chartName, version string) (*repo.ChartVersion, []byte, error) {
	t.Helper()
	getters := getter.Getters(getter.WithTimeout(clientTimeout))
	r, err := repo.NewChartRepository(&repo.Entry{Name: "fleet", URL: s.URL(), Username: user, Password: pass}, getters)
	if err != nil {
		t.Fatal(err)
	}
	r.CachePath = t.TempDir()
	indexPath, err := r.DownloadIndexFile()
	if err != nil {
		return nil, nil, err
	}
	idx, err := repo.LoadIndexFile(indexPath)
	if err != nil {
		t.Fatalf("index.yaml the server sent does not load: %v", err)
	}
	cv, err := idx.Get(chartName, version)
	if err != nil {
		return nil, nil, err
	}
	if len(cv.URLs) != 1 {
		t.Fatalf("index entry %s %s has urls %v, want one", chartName, version, cv.URLs)
	}
	u, err := repo.ResolveReferenceURL(s.URL(), cv.URLs[0])
	if err != nil {
		t.Fatal(err)
	}
	g, err := getters.ByScheme("http")
	if err != nil {
		t.Fatal(err)
	}
	buf, err := g.Get(u, getter.WithURL(s.URL()), getter.WithBasicAuth(user, pass))
	if err != nil {
		return cv, nil, err
	}
	return cv, buf.Bytes(), nil
}

// ociPull goes the way source-controller goes for a HelmRepository of
// type oci: Helm's registry client, basic-auth login, plain HTTP.
func ociPull(t *testing.T, s *Server, user, pass, chartName, version string) (*helmregistry.PullResult, error) {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the machine
	c, err := helmregistry.NewClient(
		helmregistry.ClientOptPlainHTTP(),
		helmregistry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")),
		helmregistry.ClientOptHTTPClient(&http.Client{Timeout: clientTimeout}),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(s.Host(), helmregistry.LoginOptBasicAuth(user, pass), helmregistry.LoginOptPlainText(true)); err != nil {
		return nil, err
	}
	return c.Pull(fmt.Sprintf("oci://%s/charts/%s:%s", s.Host(), chartName, version))
}

func ggcrOptions(ctx context.Context, user, pass string) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(&authn.Basic{Username: user, Password: pass})}
}

func loadArchive(t *testing.T, b []byte) *chart.Chart {
	t.Helper()
	ch, err := loader.LoadArchive(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("loading the served archive: %v", err)
	}
	return ch
}

func TestServeChart(t *testing.T) {
	root := t.TempDir()
	writeChart(t, root, "demo", "0.1.0", "hello")
	writeChart(t, root, "other", "1.2.3+build.7", "other")
	testsupport.WriteFile(t, root, "docs/README.md", "not a chart\n") // skipped
	testsupport.WriteFile(t, root, "notes.txt", "not a directory\n")
	log := &testsupport.SyncBuffer{}
	s := start(t, Options{ChartDirs: []string{root}, Log: log})
	user, pass := s.Credentials()
	if !strings.HasPrefix(user, "charts-") || len(pass) != 32 {
		t.Errorf("Credentials() = %q, %q: want random charts-… user and 32 hex characters", user, pass)
	}
	if want := fmt.Sprintf("http://127.0.0.1:%d", s.Port()); s.URL() != want || s.Host() != strings.TrimPrefix(want, "http://") {
		t.Errorf("URL() = %s, Host() = %s; want %s", s.URL(), s.Host(), want)
	}
	charts := s.Charts()
	if len(charts) != 2 || charts[0].Name != "demo" || charts[0].Version != "0.1.0" ||
		charts[1].Name != "other" || charts[1].Version != "1.2.3+build.7" {
		t.Fatalf("Charts() = %v, want demo 0.1.0 and other 1.2.3+build.7", charts)
	}
	demo := charts[0]

	t.Run("helm repository", func(t *testing.T) {
		cv, archive, err := helmRepoFetch(t, s, user, pass, "demo", "0.1.0")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cv.URLs[0], "charts/demo-0.1.0.tgz"; got != want {
			t.Errorf("index url = %s, want %s", got, want)
		}
		if got := "sha256:" + cv.Digest; got != demo.Digest {
			t.Errorf("index digest %s, Charts() digest %s", got, demo.Digest)
		}
		if got := sha256Digest(archive); got != demo.Digest {
			t.Errorf("downloaded archive has digest %s, want %s", got, demo.Digest)
		}
		ch := loadArchive(t, archive)
		if ch.Name() != "demo" || ch.Metadata.Version != "0.1.0" || ch.Values["greeting"] != "hello" || len(ch.Templates) != 1 {
			t.Errorf("archive holds %s %s, values %v, %d templates", ch.Name(), ch.Metadata.Version, ch.Values, len(ch.Templates))
		}
	})

	t.Run("helm registry client", func(t *testing.T) {
		res, err := ociPull(t, s, user, pass, "demo", "0.1.0")
		if err != nil {
			t.Fatal(err)
		}
		if res.Chart.Digest != demo.Digest || sha256Digest(res.Chart.Data) != demo.Digest {
			t.Errorf("pulled chart layer %s (content %s), want %s", res.Chart.Digest, sha256Digest(res.Chart.Data), demo.Digest)
		}
		// The registry client reads name and version from the config blob.
		if res.Chart.Meta == nil || res.Chart.Meta.Name != "demo" || res.Chart.Meta.Version != "0.1.0" {
			t.Errorf("config metadata = %+v, want demo 0.1.0", res.Chart.Meta)
		}
		if ch := loadArchive(t, res.Chart.Data); ch.Values["greeting"] != "hello" {
			t.Errorf("pulled chart values %v", ch.Values)
		}
	})

	t.Run("helm registry client, semver build metadata", func(t *testing.T) {
		res, err := ociPull(t, s, user, pass, "other", "1.2.3+build.7")
		if err != nil {
			t.Fatal(err)
		}
		if res.Chart.Meta.Version != "1.2.3+build.7" {
			t.Errorf("pulled version %s", res.Chart.Meta.Version)
		}
	})

	t.Run("go-containerregistry", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
		defer cancel()
		ref, err := name.NewRepository(s.Host()+"/charts/demo", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		tags, err := remote.List(ref, ggcrOptions(ctx, user, pass)...)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(tags, []string{"0.1.0"}) {
			t.Errorf("tags of %s = %v, want [0.1.0]", ref, tags)
		}
		img, err := remote.Image(ref.Tag("0.1.0"), ggcrOptions(ctx, user, pass)...)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != "application/vnd.oci.image.manifest.v1+json" ||
			m.Config.MediaType != "application/vnd.cncf.helm.config.v1+json" ||
			len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.cncf.helm.chart.content.v1.tar+gzip" ||
			m.Layers[0].Digest.String() != demo.Digest {
			t.Errorf("manifest is not a Helm chart artifact of %s: %+v", demo.Digest, m)
		}
		if m.Annotations["org.opencontainers.image.title"] != "demo" || m.Annotations["org.opencontainers.image.version"] != "0.1.0" {
			t.Errorf("manifest annotations %v", m.Annotations)
		}
		other, err := remote.List(ref.Registry.Repo("charts", "other"), ggcrOptions(ctx, user, pass)...)
		if err != nil || !slices.Equal(other, []string{"1.2.3_build.7"}) {
			t.Errorf("tags of charts/other = %v, %v; want [1.2.3_build.7] (Helm's tag for a + version)", other, err)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		if _, _, err := helmRepoFetch(t, s, user, pass+"x", "demo", "0.1.0"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("helm repository with a wrong password: %v, want a 401 error", err)
		}
		if _, err := ociPull(t, s, user, pass+"x", "demo", "0.1.0"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("helm registry login with a wrong password: %v, want a 401 error", err)
		}
		ref, _ := name.NewRepository(s.Host()+"/charts/demo", name.Insecure)
		_, err := remote.List(ref, ggcrOptions(t.Context(), "nobody", pass)...)
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Errorf("go-containerregistry with a wrong user: %v, want a 401 transport error", err)
		}
	})

	for _, want := range []string{"GET /index.yaml 200 ", "GET /charts/demo-0.1.0.tgz 200 ", "GET /v2/ 401 ",
		"GET /v2/charts/demo/tags/list?n=1000 200 ", "GET /index.yaml 401 ", "published demo 0.1.0 (" + demo.Digest + ") from " + filepath.Join(root, "demo") + "\n"} {
		if !strings.Contains(log.String(), "chartserver: "+want) {
			t.Errorf("log has no line %q:\n%s", want, log.String())
		}
	}
}

// request sends a request line exactly as given (no client-side path
// cleaning) and returns the status and the WWW-Authenticate header.
func request(t *testing.T, hostPort, method, rawPath string, header http.Header) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", hostPort, clientTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(clientTimeout))
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: 0\r\n", method, rawPath, hostPort)
	_ = header.Write(&req)
	req.WriteString("\r\n")
	if _, err := conn.Write([]byte(req.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func basic(user, pass string) http.Header {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header
}

func TestAuthentication(t *testing.T) {
	root := t.TempDir()
	writeChart(t, root, "demo", "0.1.0", "hello")
	s := start(t, Options{ChartDirs: []string{root}, Username: "fleet", Password: "s3cret"})
	if u, p := s.Credentials(); u != "fleet" || p != "s3cret" {
		t.Fatalf("Credentials() = %q, %q; want the ones given", u, p)
	}
	creds := []struct {
		name   string
		header http.Header
		want   int
	}{
		{"no credentials", http.Header{}, http.StatusUnauthorized},
		{"wrong user", basic("fleet2", "s3cret"), http.StatusUnauthorized},
		{"wrong password", basic("fleet", "s3cre"), http.StatusUnauthorized},
		{"empty password", basic("fleet", ""), http.StatusUnauthorized},
		{"bearer token", http.Header{"Authorization": {"Bearer s3cret"}}, http.StatusUnauthorized},
		{"right credentials", basic("fleet", "s3cret"), http.StatusOK},
	}
	for _, path := range []string{"/index.yaml", "/charts/demo-0.1.0.tgz", "/v2/", "/v2/charts/demo/tags/list", "/v2/charts/demo/manifests/0.1.0"} {
		for _, c := range creds {
			t.Run(c.name+" "+path, func(t *testing.T) {
				status, challenge := request(t, s.Host(), http.MethodGet, path, c.header)
				if status != c.want {
					t.Errorf("status %d, want %d", status, c.want)
				}
				if c.want == http.StatusUnauthorized && challenge != `Basic realm="chart-server"` {
					t.Errorf("WWW-Authenticate = %q, want the Basic challenge OCI clients answer", challenge)
				}
			})
		}
	}
}

func TestPathsOutsideServedSet(t *testing.T) {
	root := t.TempDir()
	writeChart(t, root, "demo", "0.1.0", "hello")
	testsupport.WriteFile(t, root, "demo/secret.txt", "in the chart directory, not in the repository\n")
	s := start(t, Options{ChartDirs: []string{root}})
	auth := basic(s.Credentials())
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/index.yaml", http.StatusOK}, // the control
		{"HEAD", "/charts/demo-0.1.0.tgz", http.StatusOK},
		{"GET", "/../index.yaml", http.StatusNotFound},
		{"GET", "/%2e%2e/x", http.StatusNotFound},
		{"GET", "/charts/../../etc/passwd", http.StatusNotFound},
		{"GET", "/charts/%2e%2e/index.yaml", http.StatusNotFound},
		{"GET", "/charts/./demo-0.1.0.tgz", http.StatusNotFound},
		{"GET", "//index.yaml", http.StatusNotFound},
		{"GET", "/index.yaml/", http.StatusNotFound},
		{"GET", "/v2/../index.yaml", http.StatusNotFound},
		{"GET", "/", http.StatusNotFound},
		{"GET", "/charts/", http.StatusNotFound},
		{"GET", "/charts/demo-0.2.0.tgz", http.StatusNotFound},
		{"GET", "/charts/demo/secret.txt", http.StatusNotFound},
		{"GET", "/demo/Chart.yaml", http.StatusNotFound},
		{"GET", "/etc/passwd", http.StatusNotFound},
		// Clients read only: a push would bypass Publish.
		{"PUT", "/v2/charts/demo/manifests/0.1.0", http.StatusMethodNotAllowed},
		{"POST", "/v2/charts/demo/blobs/uploads/", http.StatusMethodNotAllowed},
		{"DELETE", "/v2/charts/demo/manifests/0.1.0", http.StatusMethodNotAllowed},
		{"PUT", "/index.yaml", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			if got, _ := request(t, s.Host(), tt.method, tt.path, auth); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
	// The refused DELETE really left the tag alone.
	if status, _ := request(t, s.Host(), "GET", "/v2/charts/demo/manifests/0.1.0", auth); status != http.StatusOK {
		t.Errorf("manifest after refused writes: status %d", status)
	}
}

func TestPublishServesEdits(t *testing.T) {
	root := t.TempDir()
	dir := writeChart(t, root, "demo", "0.1.0", "hello")
	writeChart(t, root, "gone", "1.0.0", "bye")
	s := start(t, Options{ChartDirs: []string{root}})
	user, pass := s.Credentials()
	before := chartByName(t, s, "demo")

	// Nothing changed: same bytes, so Flux sees no new revision.
	again, err := s.Publish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again, s.Charts()) || chartByName(t, s, "demo").Digest != before.Digest {
		t.Fatalf("Publish without changes = %v, want the same digests as %v", again, before)
	}

	testsupport.WriteFile(t, dir, "values.yaml", "greeting: edited\n")
	if err := os.RemoveAll(filepath.Join(root, "gone")); err != nil {
		t.Fatal(err)
	}
	writeChart(t, root, "bumped", "2.0.0", "new")
	began := time.Now()
	published, err := s.Publish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Publish: %.0fms", ms(time.Since(began)))
	after := chartByName(t, s, "demo")
	if after.Digest == before.Digest {
		t.Fatalf("digest unchanged (%s) after editing values.yaml", after.Digest)
	}
	if names := []string{published[0].Name, published[1].Name}; len(published) != 2 || !slices.Equal(names, []string{"bumped", "demo"}) {
		t.Errorf("Publish returned %v, want bumped and demo", published)
	}

	cv, archive, err := helmRepoFetch(t, s, user, pass, "demo", "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if "sha256:"+cv.Digest != after.Digest || sha256Digest(archive) != after.Digest {
		t.Errorf("helm repository serves digest %s (archive %s), want %s", cv.Digest, sha256Digest(archive), after.Digest)
	}
	if v := loadArchive(t, archive).Values["greeting"]; v != "edited" {
		t.Errorf("helm repository archive has greeting %v, want edited", v)
	}
	res, err := ociPull(t, s, user, pass, "demo", "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if res.Chart.Digest != after.Digest {
		t.Errorf("registry serves %s, want %s", res.Chart.Digest, after.Digest)
	}
	if v := loadArchive(t, res.Chart.Data).Values["greeting"]; v != "edited" {
		t.Errorf("registry chart has greeting %v, want edited", v)
	}

	// A removed chart is gone from both forms; a new one is in both.
	if _, _, err := helmRepoFetch(t, s, user, pass, "gone", "1.0.0"); err == nil {
		t.Error("removed chart still in index.yaml")
	}
	auth := basic(user, pass)
	for path, want := range map[string]int{
		"/charts/gone-1.0.0.tgz":            http.StatusNotFound,
		"/v2/charts/gone/manifests/1.0.0":   http.StatusNotFound,
		"/charts/bumped-2.0.0.tgz":          http.StatusOK,
		"/v2/charts/bumped/manifests/2.0.0": http.StatusOK,
	} {
		if got, _ := request(t, s.Host(), "GET", path, auth); got != want {
			t.Errorf("GET %s after Publish: %d, want %d", path, got, want)
		}
	}
}

func TestPublishErrorKeepsServing(t *testing.T) {
	root := t.TempDir()
	dir := writeChart(t, root, "demo", "0.1.0", "hello")
	s := start(t, Options{ChartDirs: []string{root}})
	before := s.Charts()
	testsupport.WriteFile(t, dir, "Chart.yaml", "apiVersion: v2\nname: demo\n") // no version
	_, err := s.Publish(t.Context())
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "chart.metadata.version is required") {
		t.Fatalf("Publish of a chart without version: %v; want an error naming %s and the reason", err, dir)
	}
	if !slices.Equal(s.Charts(), before) {
		t.Errorf("failed Publish changed what is served: %v, was %v", s.Charts(), before)
	}
	if got, _ := request(t, s.Host(), "GET", "/charts/demo-0.1.0.tgz", basic(s.Credentials())); got != http.StatusOK {
		t.Errorf("archive after failed Publish: %d", got)
	}
}

func TestStartErrors(t *testing.T) {
	const lo = "127.0.0.1"
	good := t.TempDir()
	writeChart(t, good, "demo", "0.1.0", "hello")

	broken := t.TempDir()
	writeChart(t, broken, "ok", "0.1.0", "x")
	brokenDir := writeChart(t, broken, "bad", "0.1.0", "x")
	testsupport.WriteFile(t, brokenDir, "Chart.yaml", "apiVersion: v2\nname: [bad\n")

	noVersion := writeChart(t, t.TempDir(), "nover", "0.1.0", "x")
	testsupport.WriteFile(t, noVersion, "Chart.yaml", "apiVersion: v2\nname: nover\n")
	badVersion := writeChart(t, t.TempDir(), "badver", "0.1.0", "x")
	testsupport.WriteFile(t, badVersion, "Chart.yaml", "apiVersion: v2\nname: badver\nversion: one\n")
	badValues := writeChart(t, t.TempDir(), "badvalues", "0.1.0", "x")
	testsupport.WriteFile(t, badValues, "values.yaml", "greeting: [\n")
	missingDep := writeChart(t, t.TempDir(), "withdep", "0.1.0", "x")
	testsupport.WriteFile(t, missingDep, "Chart.yaml", "apiVersion: v2\nname: withdep\nversion: 0.1.0\ndependencies:\n- name: redis\n  version: 1.x\n  repository: oci://example.invalid/charts\n")
	upper := writeChart(t, t.TempDir(), "Upper", "0.1.0", "x")

	dupA := writeChart(t, t.TempDir(), "twin", "1.0.0", "a")
	dupB := writeChart(t, t.TempDir(), "twin", "1.0.0", "b")

	noCharts := t.TempDir()
	testsupport.WriteFile(t, noCharts, "docs/README.md", "x\n")
	file := filepath.Join(t.TempDir(), "file")
	testsupport.WriteFile(t, filepath.Dir(file), "file", "x\n")

	tests := []struct {
		name string
		opts Options
		want []string // substrings of the error
	}{
		{"invalid Chart.yaml", Options{Addr: lo, ChartDirs: []string{broken}}, []string{brokenDir, "cannot load Chart.yaml"}},
		{"no version", Options{Addr: lo, ChartDirs: []string{noVersion}}, []string{noVersion, "chart.metadata.version is required"}},
		{"version not semver", Options{Addr: lo, ChartDirs: []string{badVersion}}, []string{badVersion, `chart.metadata.version "one" is invalid`}},
		{"invalid values.yaml", Options{Addr: lo, ChartDirs: []string{badValues}}, []string{badValues, "cannot load values.yaml"}},
		{"dependency not vendored", Options{Addr: lo, ChartDirs: []string{missingDep}}, []string{missingDep, "dependencies redis are declared in Chart.yaml but missing from its charts/ directory"}},
		{"name not an OCI repository", Options{Addr: lo, ChartDirs: []string{upper}}, []string{upper, `name "Upper"`, "OCI reference"}},
		{"same name and version twice", Options{Addr: lo, ChartDirs: []string{dupA, dupB}}, []string{dupA, dupB, "both twin version 1.0.0"}},
		{"missing directory", Options{Addr: lo, ChartDirs: []string{filepath.Join(good, "nope")}}, []string{filepath.Join(good, "nope"), "no such file or directory"}},
		{"not a directory", Options{Addr: lo, ChartDirs: []string{file}}, []string{file, "is not a directory"}},
		{"no chart anywhere", Options{Addr: lo, ChartDirs: []string{noCharts}}, []string{noCharts, "has no Chart.yaml, nor has any of its subdirectories"}},
		{"no chart directories", Options{Addr: lo}, []string{"at least one chart directory"}},
		{"empty address", Options{Addr: "", ChartDirs: []string{good}}, []string{"needs an address"}},
		{"host name", Options{Addr: "localhost", ChartDirs: []string{good}}, []string{`"localhost" is not an IP address`}},
		{"every IPv4 interface", Options{Addr: "0.0.0.0", ChartDirs: []string{good}}, []string{"every interface"}},
		{"every IPv6 interface", Options{Addr: "::", ChartDirs: []string{good}}, []string{"every interface"}},
		{"address not on this machine", Options{Addr: "192.0.2.1", ChartDirs: []string{good}}, []string{"listening on 192.0.2.1:0"}},
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // to see that a failed Start leaves nothing behind
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(t.Context(), tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded")
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("failed Start left %s in the temp directory", left[0].Name())
			}
		})
	}
}

func TestAddListener(t *testing.T) {
	root := t.TempDir()
	writeChart(t, root, "demo", "0.1.0", "hello")
	s, err := Start(t.Context(), Options{Addr: "127.0.0.1", ChartDirs: []string{root}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddListener(t.Context(), "0.0.0.0"); err == nil || !strings.Contains(err.Error(), "every interface") {
		t.Errorf("AddListener(0.0.0.0) = %v, want refused", err)
	}
	// All of 127.0.0.0/8 is loopback on Linux: a second address without a
	// second interface.
	hostPort, err := s.AddListener(t.Context(), "127.0.0.2")
	if err != nil {
		t.Fatalf("AddListener(127.0.0.2): %v", err)
	}
	if want := fmt.Sprintf("127.0.0.2:%d", s.Port()); hostPort != want {
		t.Errorf("AddListener = %s, want the first listener's port: %s", hostPort, want)
	}
	for _, tt := range []struct {
		header http.Header
		want   int
	}{
		{basic(s.Credentials()), http.StatusOK},
		{basic("x", "y"), http.StatusUnauthorized},
	} {
		for _, path := range []string{"/index.yaml", "/v2/charts/demo/tags/list"} {
			if got, _ := request(t, hostPort, "GET", path, tt.header); got != tt.want {
				t.Errorf("GET %s on %s: %d, want %d", path, hostPort, got, tt.want)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, hp := range []string{s.Host(), hostPort} {
		if c, err := net.DialTimeout("tcp", hp, clientTimeout); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", hp)
		}
	}
	if _, err := s.AddListener(t.Context(), "127.0.0.3"); err == nil {
		t.Error("AddListener after Close succeeded")
	}
	if _, err := s.Publish(t.Context()); err == nil {
		t.Error("Publish after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// podinfoModule is the module the offline kit takes the podinfo chart
// from (FLEET_EXTRA_CHARTS), at the kit's PODINFO_MODULE_VERSION.
const podinfoModule = "github.com/stefanprodan/podinfo"

// TestPodinfoChart packages the real podinfo chart, from the module version
// the kit pins, downloaded into the module cache if need be.
func TestPodinfoChart(t *testing.T) {
	dir := podinfoChartDir(t)
	want, err := chartutil.LoadChartfile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{ChartDirs: []string{dir}})
	charts := s.Charts()
	if len(charts) != 1 || charts[0].Name != "podinfo" || charts[0].Version != want.Version {
		t.Fatalf("Charts() = %v, want podinfo %s", charts, want.Version)
	}
	user, pass := s.Credentials()
	_, archive, err := helmRepoFetch(t, s, user, pass, "podinfo", want.Version)
	if err != nil {
		t.Fatal(err)
	}
	ch := loadArchive(t, archive)
	if ch.AppVersion() != want.AppVersion || len(ch.Templates) < 5 || ch.Values["replicaCount"] == nil {
		t.Errorf("podinfo archive: appVersion %s (want %s), %d templates, replicaCount %v", ch.AppVersion(), want.AppVersion, len(ch.Templates), ch.Values["replicaCount"])
	}
	res, err := ociPull(t, s, user, pass, "podinfo", want.Version)
	if err != nil {
		t.Fatal(err)
	}
	if res.Chart.Digest != charts[0].Digest || res.Chart.Meta.AppVersion != want.AppVersion {
		t.Errorf("registry podinfo: digest %s (want %s), appVersion %s", res.Chart.Digest, charts[0].Digest, res.Chart.Meta.AppVersion)
	}
}

// podinfoChartDir is the podinfo chart of the module version in the kit's
// versions file; it skips when the module cannot be had, or fails under
// CI=true.
func podinfoChartDir(t *testing.T) string {
	t.Helper()
	root := testsupport.RepoRoot(t)
	versions, err := kitprofile.ReadVersions(root)
	if err != nil {
		t.Fatal(err)
	}
	version, err := kitprofile.LookupVersion(versions, "PODINFO_MODULE_VERSION")
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		testsupport.SkipOrFail(t, "go command not on PATH: cannot fetch the podinfo module")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	mod := podinfoModule + "@" + version
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", mod)
	cmd.Dir = t.TempDir() // outside this module: its go.mod and go.sum stay untouched
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	var got struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &got); err != nil || jerr != nil || got.Dir == "" {
		testsupport.SkipOrFail(t, fmt.Sprintf("podinfo chart module %s cannot be downloaded (go mod download: %v %s)", mod, err, got.Error))
	}
	return filepath.Join(got.Dir, "charts", "podinfo")
}

// TestCloseIdleConnection: a connection that never sends a request (what a
// client's losing dial leaves behind) must neither delay Close by
// Shutdown's grace nor make it fail.
func TestCloseIdleConnection(t *testing.T) {
	root := t.TempDir()
	writeChart(t, root, "demo", "0.1.0", "hello")
	s, err := Start(t.Context(), Options{Addr: "127.0.0.1", ChartDirs: []string{root}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", s.Host(), clientTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(100 * time.Millisecond) // let the server accept it
	began := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// Left to Shutdown, the connection holds Close until the grace runs
	// out; closed by Close itself, it takes a 20 ms tick or a few. Half the
	// grace tells the two apart with seconds to spare on a loaded machine.
	if took := time.Since(began); took >= shutdownGrace/2 {
		t.Errorf("Close took %s with an idle connection open, want well under Shutdown's grace of %s", took, shutdownGrace)
	}
	t.Logf("Close with an idle connection: %.0fms", ms(time.Since(began)))
	_ = conn.SetReadDeadline(time.Now().Add(clientTimeout))
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Errorf("idle connection still open after Close (read %d bytes)", n)
	}
}
