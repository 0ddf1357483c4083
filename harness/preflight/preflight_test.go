package preflight

import (
	"context"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// chartHost is the chart server's in-cluster name, as fleet files write it.
const chartHost = chartserver.InClusterHost

// world is what the tests run against: the harness's chart server on
// loopback serving the test chart at two versions, and an image registry
// holding one image, 127.0.0.1:<port>/img:present.
type world struct {
	charts   *chartserver.Server
	log      *testsupport.SyncBuffer // the chart server's request log
	registry string                  // host:port of the image registry
	closed   string                  // host:port where nothing listens
}

func startWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	chartDirs := t.TempDir()
	copyChart(t, "testdata/charts/app", filepath.Join(chartDirs, "app-1.2.0"), "")
	copyChart(t, "testdata/charts/app", filepath.Join(chartDirs, "app-1.3.0-rc.1"), "1.3.0-rc.1")
	requests := &testsupport.SyncBuffer{}
	srv, err := chartserver.Start(ctx, chartserver.Options{Addr: "127.0.0.1", ChartDirs: []string{chartDirs}, Log: requests})
	if err != nil {
		t.Fatalf("starting the chart server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/img:present")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing the test image: %v", err)
	}

	// A port that was just free and is closed again: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	return &world{charts: srv, log: requests, registry: host, closed: closed}
}

// copyChart copies the test chart, optionally at another version.
func copyChart(t *testing.T, from, to, version string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if version != "" && rel == "Chart.yaml" {
			data = []byte(strings.Replace(string(data), "version: 1.2.0", "version: "+version, 1))
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copying chart: %v", err)
	}
}

func (w *world) options(fleet string) Options {
	user, pass := w.charts.Credentials()
	return Options{
		FleetDir:     fleet,
		HostRewrites: map[string]string{chartHost: w.charts.Host()},
		Credentials:  map[string]Credential{chartHost: {Username: user, Password: pass}},
		KubeVersion:  "v1.37.2",
		CacheDir:     filepath.Join(fleet, ".cache"),
	}
}

// baseFleet is a small fleet with the real fleet's layout: one Flux
// Kustomization per environment with post-build substitution, and one
// HelmRelease per kind of chart source the harness's chart server offers.
func baseFleet(w *world) map[string]string {
	ks := func(env, replicas string) string {
		return `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: releases
  namespace: flux-system
spec:
  interval: 1h
  path: ./releases
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  postBuild:
    substitute:
      replicas: "` + replicas + `"
`
	}
	release := func(name, source string) string {
		return `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: ` + name + `
  namespace: apps
spec:
  interval: 1h
` + source + `
  values:
    image: ` + w.registry + `/img:present
    replicaCount: ${replicas:=1}
    podAnnotations:
      anything.example.com/goes: "here"
    resources:
      limits:
        memory: 64Mi
    env:
      - name: GREETING
        value: hi
`
	}
	return map[string]string{
		"clusters/staging/releases.yaml":    ks("staging", "2"),
		"clusters/production/releases.yaml": ks("production", "3"),
		"releases/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [namespace.yaml, sources.yaml, http.yaml, oci.yaml, ref.yaml]
`,
		"releases/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n",
		"releases/sources.yaml": `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts
  namespace: flux-system
spec:
  interval: 1h
  url: http://` + chartHost + `
  secretRef:
    name: chart-server-auth
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts-oci
  namespace: flux-system
spec:
  type: oci
  interval: 1h
  url: oci://` + chartHost + `/charts
  insecure: true
  secretRef:
    name: chart-server-auth
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app
  namespace: flux-system
spec:
  interval: 1h
  url: oci://` + chartHost + `/charts/app
  insecure: true
  secretRef:
    name: chart-server-pull
  ref:
    semver: ">=1.0.0 <2.0.0"
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
`,
		"releases/http.yaml": release("app-http", `  chart:
    spec:
      chart: app
      version: ">=1.0.0 <2.0.0"
      sourceRef:
        kind: HelmRepository
        name: charts
        namespace: flux-system`),
		"releases/oci.yaml": release("app-oci", `  chart:
    spec:
      chart: app
      version: ">=1.0.0 <2.0.0"
      sourceRef:
        kind: HelmRepository
        name: charts-oci
        namespace: flux-system`),
		"releases/ref.yaml": release("app-ref", `  chartRef:
    kind: OCIRepository
    name: app
    namespace: flux-system`),
	}
}

func writeFleet(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// edit returns a copy of files with one replacement made in one file; the
// test fails if the text to replace is not there.
func edit(t *testing.T, files map[string]string, file, old, new string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	if !strings.Contains(out[file], old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	out[file] = strings.Replace(out[file], old, new, 1)
	return out
}

type releaseSummary struct {
	Object, Chart, Version, Source string
	Images                         []string
	// Objects are the rendered objects as Kind/namespace/name.
	Objects []string
}

func summarize(r *Report) map[string][]releaseSummary {
	out := map[string][]releaseSummary{}
	for _, e := range r.Envs {
		for _, rel := range e.Releases {
			var objs []string
			for _, o := range rel.Objects {
				objs = append(objs, validate.ObjectRef{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}.String())
			}
			out[e.Name] = append(out[e.Name], releaseSummary{Object: rel.Object.String(), Chart: rel.Chart, Version: rel.Version,
				Source: rel.SourceRef.String(), Images: rel.Images, Objects: objs})
		}
	}
	return out
}

// rendered is what the test chart renders for a release in namespace apps.
func rendered(release string) []string {
	return []string{"CustomResourceDefinition/widgets.example.com", "Deployment/apps/" + release}
}

func TestRunCleanFleet(t *testing.T) {
	w := startWorld(t)
	fleet := writeFleet(t, baseFleet(w))
	opts := w.options(fleet)
	var out strings.Builder
	opts.Out = &out

	report, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if fs := report.Findings(); len(fs) != 0 {
		t.Fatalf("want no findings, got:\n%s", out.String())
	}
	if !report.HasHelmReleases() {
		t.Error("HasHelmReleases() = false for a fleet with three HelmReleases")
	}
	present := []string{w.registry + "/img:present"}
	perEnv := []releaseSummary{
		{Object: "HelmRelease/apps/app-http", Chart: "app", Version: "1.2.0", Source: "HelmRepository/flux-system/charts", Images: present, Objects: rendered("app-http")},
		{Object: "HelmRelease/apps/app-oci", Chart: "app", Version: "1.2.0", Source: "HelmRepository/flux-system/charts-oci", Images: present, Objects: rendered("app-oci")},
		{Object: "HelmRelease/apps/app-ref", Chart: "app", Version: "1.2.0", Source: "OCIRepository/flux-system/app", Images: present, Objects: rendered("app-ref")},
	}
	want := map[string][]releaseSummary{"production": perEnv, "staging": perEnv}
	if diff := cmp.Diff(want, summarize(report)); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	// The OCI forms serve the very archive the HTTP repository serves, so
	// whichever release fetches it second finds it in the cache.
	for _, line := range []string{
		`(?m)^  HelmRelease/apps/app-http → app@1\.2\.0 \(HelmRepository/flux-system/charts http://` + regexp.QuoteMeta(chartHost) + `(, cached)?\) → OK$`,
		`(?m)^  HelmRelease/apps/app-oci → app@1\.2\.0 \(HelmRepository/flux-system/charts-oci oci://` + regexp.QuoteMeta(chartHost) + `/charts(, cached)?\) → OK$`,
		`(?m)^  HelmRelease/apps/app-ref → app@1\.2\.0 \(OCIRepository/flux-system/app oci://` + regexp.QuoteMeta(chartHost) + `/charts/app(, cached)?\) → OK$`,
		`(?m)^    ✓ ` + regexp.QuoteMeta(w.registry) + `/img:present$`,
		`(?m)^preflighted 2 environments, 6 HelmReleases, 2 images in \d+\.\d\ds: 0 findings$`,
	} {
		if !regexp.MustCompile(line).MatchString(out.String()) {
			t.Errorf("output lacks a line matching %s:\n%s", line, out.String())
		}
	}

	// Second run: every archive comes from the cache; only the index, tag
	// lists and manifests are asked for again.
	// Whichever release asks first downloads the archive, from the HTTP
	// repository or as the OCI layer (the same bytes, one digest).
	var digest string
	for _, c := range w.charts.Charts() {
		if c.Name == "app" && c.Version == "1.2.0" {
			digest = c.Digest
		}
	}
	if cold := w.log.Take(); !strings.Contains(cold, "GET /charts/app-1.2.0.tgz 200") && !strings.Contains(cold, "/blobs/"+digest+" 200") {
		t.Errorf("the cold run did not download the archive (%s):\n%s", digest, cold)
	}
	opts.Out = nil
	start := time.Now()
	warm, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("warm Run: %v", err)
	}
	elapsed := time.Since(start)
	for _, e := range warm.Envs {
		for _, rel := range e.Releases {
			if !rel.Cached {
				t.Errorf("%s/%s: chart not taken from the cache on the second run", e.Name, rel.Object)
			}
		}
	}
	requests := w.log.Take()
	for _, line := range strings.Split(requests, "\n") {
		if strings.Contains(line, "GET /charts/") || strings.Contains(line, "/blobs/") {
			t.Errorf("the warm run downloaded an archive: %s", line)
		}
	}
	if !strings.Contains(requests, "GET /index.yaml 200") {
		t.Errorf("the warm run did not read the index again (resolution must not be cached):\n%s", requests)
	}
	t.Logf("cold run %.2fs, warm run %.2fs", report.Duration.Seconds(), elapsed.Seconds())
}

// TestRunFindings breaks one thing at a time and expects exactly the
// findings that name it: the file, the object and the reason.
func TestRunFindings(t *testing.T) {
	w := startWorld(t)
	base := baseFleet(w)
	chartIndex := "http://" + chartHost + "/index.yaml"
	tests := []struct {
		name  string
		files map[string]string
		opts  func(*Options)
		want  []Finding
	}{
		{
			name:  "HTTP repository range matches nothing",
			files: edit(t, base, "releases/http.yaml", `version: ">=1.0.0 <2.0.0"`, `version: ">=2.0.0"`),
			want: []Finding{{File: "releases/http.yaml", Object: hr("app-http"),
				Reason: `spec.chart.spec.version ">=2.0.0": no chart version matches in ` + chartIndex + ` (newest: 1.3.0-rc.1, 1.2.0)`}},
		},
		{
			name:  "chart the HTTP repository does not have",
			files: edit(t, base, "releases/http.yaml", "chart: app\n", "chart: nope\n"),
			want: []Finding{{File: "releases/http.yaml", Object: hr("app-http"),
				Reason: `chart "nope" is not in ` + chartIndex + ` (it has: app)`}},
		},
		{
			name:  "OCI repository range matches nothing",
			files: edit(t, base, "releases/oci.yaml", `version: ">=1.0.0 <2.0.0"`, `version: "~1.1.0"`),
			want: []Finding{{File: "releases/oci.yaml", Object: hr("app-oci"),
				Reason: `spec.chart.spec.version "~1.1.0": no tag matches at oci://` + chartHost + `/charts/app (newest: 1.3.0-rc.1, 1.2.0)`}},
		},
		{
			name:  "OCIRepository semver matches nothing",
			files: edit(t, base, "releases/sources.yaml", `semver: ">=1.0.0 <2.0.0"`, `semver: ">=1.4.0"`),
			want: []Finding{{File: "releases/sources.yaml", Object: validate.ObjectRef{Kind: "OCIRepository", Namespace: "flux-system", Name: "app"},
				Reason: `spec.ref.semver ">=1.4.0": no tag matches at oci://` + chartHost + `/charts/app (newest: 1.3.0-rc.1, 1.2.0)`}},
		},
		{
			name: "unknown values keys",
			files: edit(t, base, "releases/http.yaml", "    env:\n      - name: GREETING\n        value: hi\n",
				"    env:\n      - name: GREETING\n        valeu: hi\n    replicaCont: 2\n    service:\n      prot: 80\n      nodePort: 30080\n"),
			want: []Finding{
				{File: "releases/http.yaml", Object: hr("app-http"), Reason: "values key env[0].valeu is not defined by chart app 1.2.0 (not in values.yaml or values.schema.json): Helm ignores it"},
				{File: "releases/http.yaml", Object: hr("app-http"), Reason: "values key replicaCont is not defined by chart app 1.2.0 (not in values.yaml or values.schema.json): Helm ignores it"},
				{File: "releases/http.yaml", Object: hr("app-http"), Reason: "values key service.prot is not defined by chart app 1.2.0 (not in values.yaml or values.schema.json): Helm ignores it"},
			},
		},
		{
			name:  "value the schema rejects",
			files: edit(t, base, "clusters/staging/releases.yaml", `replicas: "2"`, `replicas: "0"`),
			want:  eachRelease("values rejected by values.schema.json of chart app 1.2.0: app: at '/replicaCount': minimum: got 0, want 1"),
		},
		{
			name:  "image tag that does not exist",
			files: edit(t, base, "releases/ref.yaml", "/img:present", "/img:missing"),
			want: []Finding{{File: "releases/ref.yaml", Object: hr("app-ref"),
				Reason: "image " + w.registry + "/img:missing: not found in registry " + w.registry + " (HTTP 404 Not Found)"}},
		},
		{
			name: "unreachable source",
			files: edit(t, base, "releases/sources.yaml", "url: http://"+chartHost+"\n",
				"url: http://"+w.closed+"\n"),
			want: []Finding{{File: "releases/sources.yaml", Object: validate.ObjectRef{Kind: "HelmRepository", Namespace: "flux-system", Name: "charts"},
				Reason:      "source unreachable: http://" + w.closed + "/index.yaml: dial tcp " + w.closed + ": connect: connection refused",
				Unreachable: true}},
		},
		{
			name:  "unreachable chart server behind a host rewrite",
			files: base,
			opts:  func(o *Options) { o.HostRewrites = map[string]string{chartHost: w.closed} },
			want: []Finding{
				{File: "releases/sources.yaml", Object: validate.ObjectRef{Kind: "HelmRepository", Namespace: "flux-system", Name: "charts"},
					Reason: "source unreachable: " + chartIndex + ": dial tcp " + w.closed + ": connect: connection refused", Unreachable: true},
				{File: "releases/sources.yaml", Object: validate.ObjectRef{Kind: "HelmRepository", Namespace: "flux-system", Name: "charts-oci"},
					Reason: "source unreachable: oci://" + chartHost + "/charts/app: dial tcp " + w.closed + ": connect: connection refused", Unreachable: true},
				{File: "releases/sources.yaml", Object: validate.ObjectRef{Kind: "OCIRepository", Namespace: "flux-system", Name: "app"},
					Reason: "source unreachable: oci://" + chartHost + "/charts/app: dial tcp " + w.closed + ": connect: connection refused", Unreachable: true},
			},
		},
		{
			name:  "no credentials for a source with a secretRef",
			files: base,
			opts:  func(o *Options) { o.Credentials = nil },
			want: []Finding{
				{File: "releases/oci.yaml", Object: hr("app-oci"),
					Reason: "listing the tags of oci://" + chartHost + "/charts/app: HTTP 401 Unauthorized"},
				{File: "releases/sources.yaml", Object: validate.ObjectRef{Kind: "HelmRepository", Namespace: "flux-system", Name: "charts"},
					Reason: "fetching " + chartIndex + ": HTTP 401 Unauthorized"},
				{File: "releases/sources.yaml", Object: validate.ObjectRef{Kind: "OCIRepository", Namespace: "flux-system", Name: "app"},
					Reason: "listing the tags of oci://" + chartHost + "/charts/app: HTTP 401 Unauthorized"},
			},
		},
		{
			name:  "kind node too old for the chart",
			files: base,
			opts:  func(o *Options) { o.KubeVersion = "v1.29.4" },
			want:  eachRelease("rendering chart app 1.2.0: chart requires kubeVersion: >=1.30.0-0 which is incompatible with Kubernetes v1.29.4"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := w.options(writeFleet(t, tc.files))
			opts.Envs = []string{"staging"}
			if tc.opts != nil {
				tc.opts(&opts)
			}
			var out strings.Builder
			opts.Out = &out
			report, err := Run(context.Background(), opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			for i := range tc.want {
				tc.want[i].Env = "staging"
			}
			if diff := cmp.Diff(tc.want, report.Findings()); diff != "" {
				t.Errorf("findings (-want +got):\n%s\noutput:\n%s", diff, out.String())
			}
			for _, f := range tc.want {
				if !strings.Contains(out.String(), "FAIL "+f.String()+"\n") {
					t.Errorf("output lacks the FAIL line for %s:\n%s", f, out.String())
				}
			}
		})
	}
}

func hr(name string) validate.ObjectRef {
	return validate.ObjectRef{Kind: "HelmRelease", Namespace: "apps", Name: name}
}

// eachRelease is the same finding for each HelmRelease of baseFleet.
func eachRelease(reason string) []Finding {
	var fs []Finding
	for _, n := range []string{"http", "oci", "ref"} {
		fs = append(fs, Finding{File: "releases/" + n + ".yaml", Object: hr("app-" + n), Reason: reason})
	}
	return fs
}

func TestRunPreReleaseRange(t *testing.T) {
	w := startWorld(t)
	files := edit(t, baseFleet(w), "releases/http.yaml", `version: ">=1.0.0 <2.0.0"`, `version: ">=1.0.0-0 <2.0.0"`)
	files = edit(t, files, "releases/sources.yaml", `semver: ">=1.0.0 <2.0.0"`, `semver: ">=1.3.0-rc.0"`)
	opts := w.options(writeFleet(t, files))
	opts.Envs = []string{"production"}
	report, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	present := []string{w.registry + "/img:present"}
	want := map[string][]releaseSummary{"production": {
		{Object: "HelmRelease/apps/app-http", Chart: "app", Version: "1.3.0-rc.1", Source: "HelmRepository/flux-system/charts", Images: present, Objects: rendered("app-http")},
		{Object: "HelmRelease/apps/app-oci", Chart: "app", Version: "1.2.0", Source: "HelmRepository/flux-system/charts-oci", Images: present, Objects: rendered("app-oci")},
		{Object: "HelmRelease/apps/app-ref", Chart: "app", Version: "1.3.0-rc.1", Source: "OCIRepository/flux-system/app", Images: present, Objects: rendered("app-ref")},
	}}
	if diff := cmp.Diff(want, summarize(report)); diff != "" {
		t.Errorf("releases (-want +got):\n%s\nfindings: %v", diff, report.Findings())
	}
}

func TestRunKnownAndUnreachableImages(t *testing.T) {
	w := startWorld(t)
	files := edit(t, baseFleet(w), "releases/ref.yaml", w.registry+"/img:present", "fleet-kit/fleet-app:dev")
	files = edit(t, files, "releases/oci.yaml", w.registry+"/img:present", w.closed+"/img:1")
	opts := w.options(writeFleet(t, files))
	opts.Envs = []string{"staging"}
	opts.KnownImages = []string{"docker.io/fleet-kit/fleet-app:dev"}
	report, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []Finding{{Env: "staging", File: "releases/oci.yaml", Object: hr("app-oci"),
		Reason:      "image " + w.closed + "/img:1: registry " + w.closed + " unreachable: dial tcp " + w.closed + ": connect: connection refused",
		Unreachable: true}}
	if diff := cmp.Diff(want, report.Findings()); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if !report.OnlyUnreachable() {
		t.Error("OnlyUnreachable() = false with only an unreachable registry")
	}
	// Clusters that can pull nothing: the image whose registry is unreachable
	// is plainly missing, and the known image still counts as present.
	opts.KnownImagesOnly = true
	report, err = Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want = []Finding{
		{Env: "staging", File: "releases/http.yaml", Object: hr("app-http"),
			Reason: "image " + w.registry + "/img:present: not among the images the clusters have (KnownImages), and they cannot pull others"},
		{Env: "staging", File: "releases/oci.yaml", Object: hr("app-oci"),
			Reason: "image " + w.closed + "/img:1: not among the images the clusters have (KnownImages), and they cannot pull others"},
	}
	if diff := cmp.Diff(want, report.Findings()); diff != "" {
		t.Errorf("findings with KnownImagesOnly (-want +got):\n%s", diff)
	}
	var known *Image
	for _, img := range report.Envs[0].Images {
		if img.Ref == "fleet-kit/fleet-app:dev" {
			known = img
		}
	}
	if known == nil || !known.Known || !known.Present {
		t.Errorf("fleet-kit/fleet-app:dev not reported as a known, present image: %+v", known)
	}
}

func TestRunOptionsErrors(t *testing.T) {
	w := startWorld(t)
	fleet := writeFleet(t, baseFleet(w))
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no fleet", func(o *Options) { o.FleetDir = "" }, "preflight: Options.FleetDir is required"},
		{"no kube version", func(o *Options) { o.KubeVersion = "" }, "preflight: Options.KubeVersion is required (see KitKubeVersion)"},
		{"unknown env", func(o *Options) { o.Envs = []string{"qa"} }, `preflight: environment "qa" is not in ` + fleet + `/clusters (have: production, staging)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := w.options(fleet)
			tc.mod(&opts)
			_, err := Run(context.Background(), opts)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRunChartFromFleet covers a chart kept in the fleet's own repository
// (GitRepository flux-system), valuesFiles relative to the repository root,
// and valuesFrom, which cannot be read offline and is only a note.
func TestRunChartFromFleet(t *testing.T) {
	w := startWorld(t)
	files := baseFleet(w)
	files["releases/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [namespace.yaml, local.yaml]\n"
	files["values/prod.yaml"] = "replicaCount: 0\nimage: " + w.registry + "/img:present\n"
	files["releases/local.yaml"] = `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: local
  namespace: apps
spec:
  interval: 1h
  chart:
    spec:
      chart: ./charts/app
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
      valuesFiles: [charts/app/values.yaml, values/prod.yaml]
  valuesFrom:
    - kind: ConfigMap
      name: local-values
`
	fleet := writeFleet(t, files)
	copyChart(t, "testdata/charts/app", filepath.Join(fleet, "charts", "app"), "1.4.0")
	opts := w.options(fleet)
	opts.Envs = []string{"staging"}
	var out strings.Builder
	opts.Out = &out
	report, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// values/prod.yaml sets replicaCount 0 and the release's values do not
	// override it: the schema sees the merged files.
	want := []Finding{{Env: "staging", File: "releases/local.yaml", Object: hr("local"),
		Reason: "values rejected by values.schema.json of chart app 1.4.0: app: at '/replicaCount': minimum: got 0, want 1"}}
	if diff := cmp.Diff(want, report.Findings()); diff != "" {
		t.Errorf("findings (-want +got):\n%s\noutput:\n%s", diff, out.String())
	}
	for _, line := range []string{
		"  HelmRelease/apps/local → app@1.4.0 (GitRepository/flux-system/flux-system (this fleet) charts/app) → 1 finding\n",
		"      note: spec.valuesFrom (ConfigMap/local-values) is unsupported offline: rendered without those values\n",
		"    ✓ " + w.registry + "/img:present\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

// TestRunFleetSkipImages pre-flights a fleet the caller loaded, without
// asking any registry: an image whose registry refuses connections is
// listed on its release but is no finding, and the renders are Run's.
func TestRunFleetSkipImages(t *testing.T) {
	w := startWorld(t)
	files := edit(t, baseFleet(w), "releases/oci.yaml", w.registry+"/img:present", w.closed+"/img:1")
	opts := w.options(writeFleet(t, files))
	fleet, err := validate.Load(context.Background(), opts.FleetDir)
	if err != nil {
		t.Fatal(err)
	}
	opts.SkipImages = true
	report, err := RunFleet(context.Background(), fleet, opts)
	if err != nil {
		t.Fatalf("RunFleet: %v", err)
	}
	if fs := report.Findings(); len(fs) != 0 {
		t.Errorf("findings with SkipImages: %v", fs)
	}
	present, closed := []string{w.registry + "/img:present"}, []string{w.closed + "/img:1"}
	perEnv := []releaseSummary{
		{Object: "HelmRelease/apps/app-http", Chart: "app", Version: "1.2.0", Source: "HelmRepository/flux-system/charts", Images: present, Objects: rendered("app-http")},
		{Object: "HelmRelease/apps/app-oci", Chart: "app", Version: "1.2.0", Source: "HelmRepository/flux-system/charts-oci", Images: closed, Objects: rendered("app-oci")},
		{Object: "HelmRelease/apps/app-ref", Chart: "app", Version: "1.2.0", Source: "OCIRepository/flux-system/app", Images: present, Objects: rendered("app-ref")},
	}
	if diff := cmp.Diff(map[string][]releaseSummary{"production": perEnv, "staging": perEnv}, summarize(report)); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	for _, e := range report.Envs {
		if len(e.Images) != 0 {
			t.Errorf("%s: images looked up with SkipImages: %v", e.Name, e.Images)
		}
	}
	if _, err := RunFleet(context.Background(), nil, opts); err == nil || err.Error() != "preflight: RunFleet needs a loaded fleet" {
		t.Errorf("RunFleet(nil) error = %v", err)
	}
}
