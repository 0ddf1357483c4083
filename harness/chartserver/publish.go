package chartserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// pushHost names the in-process registry in the references Publish pushes
// to; the in-process transport never resolves it.
const pushHost = "chart-server.in-process"

// ociRepoPrefix is the repository path under which charts are served:
// oci://<host>/charts/<name>.
const ociRepoPrefix = "charts/"

// snapshot is what one Publish made; requests read one snapshot from
// start to end, so the index never lists an archive it cannot serve.
type snapshot struct {
	published time.Time
	index     []byte
	charts    []*packaged          // sorted by name, then version
	archives  map[string]*packaged // by archive file name
}

// packaged is a chart packaged from a directory, held in memory.
type packaged struct {
	Chart
	dir      string
	file     string // <name>-<version>.tgz
	ref      name.Tag
	archive  []byte
	metadata *chart.Metadata
}

// Publish re-packages every chart directory, updates the registry's tags
// and then swaps in the new index and archives. On error nothing changes
// in what is served. A chart whose files did not change keeps its digest,
// so Flux sees no new revision for it.
func (s *Server) Publish(ctx context.Context) ([]Chart, error) {
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("chart server is closed")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	charts, err := packageAll(ctx, s.opts.ChartDirs, s.tmpDir)
	if err != nil {
		return nil, err
	}
	files, err := writeArchives(s.tmpDir, charts)
	if err != nil {
		return nil, err
	}
	if err := s.repo.replace(ctx, charts); err != nil {
		_ = os.RemoveAll(filepath.Dir(files[0]))
		return nil, err
	}
	s.mu.Lock()
	old := s.archives
	s.archives = files
	s.mu.Unlock()
	if len(old) > 0 {
		_ = os.RemoveAll(filepath.Dir(old[0]))
	}
	return s.Charts(), nil
}

// writeArchives writes the archives of charts into a new directory under
// tmp and returns their paths; there is always at least one chart.
func writeArchives(tmp string, charts []*packaged) ([]string, error) {
	dir, err := os.MkdirTemp(tmp, "archives-")
	if err != nil {
		return nil, fmt.Errorf("creating the chart archive directory: %w", err)
	}
	files := make([]string, len(charts))
	for i, c := range charts {
		files[i] = filepath.Join(dir, c.file)
		if err := os.WriteFile(files[i], c.archive, 0o600); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("writing the archive of chart %s: %w", c.dir, err)
		}
	}
	return files, nil
}

// packageAll packages every chart found in roots, each into its own
// directory under tmp, and refuses two charts with one name and version.
func packageAll(ctx context.Context, roots []string, tmp string) ([]*packaged, error) {
	dirs, err := findCharts(roots)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(tmp, "publish-")
	if err != nil {
		return nil, fmt.Errorf("creating packaging directory: %w", err)
	}
	defer os.RemoveAll(work)

	var charts []*packaged
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("packaging charts: %w", err)
		}
		c, err := packageChart(ctx, dir, work)
		if err != nil {
			return nil, err
		}
		charts = append(charts, c)
	}
	if err := sortUnique(charts); err != nil {
		return nil, err
	}
	return charts, nil
}

// sortUnique sorts charts by name and version and refuses two of one name
// and version.
func sortUnique(charts []*packaged) error {
	slices.SortStableFunc(charts, func(a, b *packaged) int {
		return strings.Compare(a.Name+"\x00"+a.Version, b.Name+"\x00"+b.Version)
	})
	for i := 1; i < len(charts); i++ {
		if a, b := charts[i-1], charts[i]; a.Name == b.Name && a.Version == b.Version {
			return fmt.Errorf("charts %s and %s are both %s version %s: one archive and one tag cannot serve both", a.dir, b.dir, a.Name, a.Version)
		}
	}
	return nil
}

// findCharts expands roots into chart directories: a root with a
// Chart.yaml is a chart, otherwise its subdirectories with one are.
func findCharts(roots []string) ([]string, error) {
	var dirs []string
	for _, root := range roots {
		fi, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("reading chart directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("chart directory %s is not a directory", root)
		}
		if isChart(root) {
			dirs = append(dirs, root)
			continue
		}
		entries, err := os.ReadDir(root)
		if err != nil {
			return nil, fmt.Errorf("reading chart directory: %w", err)
		}
		found := false
		for _, e := range entries {
			sub := filepath.Join(root, e.Name())
			// Stat, not the entry's type: symlinked chart directories count.
			if fi, err := os.Stat(sub); err == nil && fi.IsDir() && isChart(sub) {
				dirs = append(dirs, sub)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("chart directory %s has no Chart.yaml, nor has any of its subdirectories", root)
		}
	}
	// The same chart reached through two roots is one chart, not a clash.
	slices.Sort(dirs)
	return slices.Compact(dirs), nil
}

func isChart(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, chartutil.ChartfileName))
	return err == nil && fi.Mode().IsRegular()
}

// packageChart does what `helm package` does — load (which validates the
// metadata), refuse undeclared-but-missing dependencies, write the .tgz —
// from a private copy of what git would serve of the chart (stageChart).
func packageChart(ctx context.Context, dir, work string) (*packaged, error) {
	staged, err := stageChart(ctx, dir, work)
	if err != nil {
		return nil, err
	}
	ch, err := loader.LoadDir(staged)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", dir, err)
	}
	out, err := os.MkdirTemp(work, "chart-")
	if err != nil {
		return nil, fmt.Errorf("creating packaging directory: %w", err)
	}
	path, err := chartutil.Save(ch, out)
	if err != nil {
		return nil, fmt.Errorf("packaging chart %s: %w", dir, err)
	}
	archive, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the package of chart %s: %w", dir, err)
	}
	return newPackaged(dir, ch, archive)
}

// newPackaged is the served form of a loaded chart and its archive; source
// (a directory or an archive file) names it in messages.
func newPackaged(source string, ch *chart.Chart, archive []byte) (*packaged, error) {
	if missing := missingDependencies(ch); len(missing) > 0 {
		return nil, fmt.Errorf("chart %s: dependencies %s are declared in Chart.yaml but missing from its charts/ directory (run helm dependency build)",
			source, strings.Join(missing, ", "))
	}
	md := ch.Metadata
	ref, err := name.NewTag(pushHost+"/"+ociRepoPrefix+md.Name+":"+ociTag(md.Version), name.Insecure, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("chart %s: name %q and version %q cannot form an OCI reference: %w", source, md.Name, md.Version, err)
	}
	sum := sha256.Sum256(archive)
	return &packaged{
		Chart: Chart{Name: md.Name, Version: md.Version, Digest: "sha256:" + hex.EncodeToString(sum[:])},
		dir:   source,
		// The name chartutil.Save gives the archive, whatever the file
		// was called: the index and the archive paths must agree.
		file:     md.Name + "-" + md.Version + ".tgz",
		ref:      ref,
		archive:  archive,
		metadata: md,
	}, nil
}

// ociTag is the tag Helm uses for a chart version: OCI tags cannot hold
// the "+" of semver build metadata, so Helm writes "_" instead.
func ociTag(version string) string { return strings.ReplaceAll(version, "+", "_") }

func missingDependencies(ch *chart.Chart) []string {
	var missing []string
	for _, dep := range ch.Metadata.Dependencies {
		if !slices.ContainsFunc(ch.Dependencies(), func(sub *chart.Chart) bool { return sub.Name() == dep.Name }) {
			missing = append(missing, dep.Name)
		}
	}
	return missing
}

// buildIndex writes the repository index with urls relative to the
// repository root, so that the same index works at every address.
func buildIndex(charts []*packaged) ([]byte, error) {
	idx := repo.NewIndexFile()
	for _, c := range charts {
		if err := idx.MustAdd(c.metadata, "charts/"+c.file, "", strings.TrimPrefix(c.Digest, "sha256:")); err != nil {
			return nil, fmt.Errorf("indexing chart %s: %w", c.dir, err)
		}
	}
	idx.SortEntries()
	b, err := yaml.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("writing the repository index: %w", err)
	}
	return b, nil
}

// pushOCI tags the chart in the registry; an existing tag is moved, so an
// edited chart at an unchanged version is what the next pull gets.
func (r *Repository) pushOCI(ctx context.Context, c *packaged) error {
	img, err := newHelmArtifact(c.metadata, c.archive)
	if err != nil {
		return fmt.Errorf("building the OCI artifact of chart %s: %w", c.dir, err)
	}
	if err := remote.Write(c.ref, img, remote.WithContext(ctx), remote.WithTransport(r.push)); err != nil {
		return fmt.Errorf("pushing chart %s to the registry as %s: %w", c.dir, c.ref.String(), err)
	}
	return nil
}

// helmArtifact is a chart laid out as `helm push` lays it out: the chart
// metadata as JSON for config, the .tgz as the only layer. It is built by
// hand because go-containerregistry's mutate can only write image configs.
type helmArtifact struct {
	config   []byte
	layer    v1.Layer
	manifest []byte
}

func newHelmArtifact(md *chart.Metadata, archive []byte) (v1.Image, error) {
	config, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("encoding chart metadata: %w", err)
	}
	layer := static.NewLayer(archive, helmregistry.ChartLayerMediaType)
	layerDesc, err := partial.Descriptor(layer)
	if err != nil {
		return nil, err
	}
	configDigest, configSize, err := v1.SHA256(bytes.NewReader(config))
	if err != nil {
		return nil, err
	}
	// No creation time among the annotations, unlike `helm push`: an
	// unchanged chart keeps its manifest digest, which is the revision
	// Flux's OCIRepository reports.
	annotations := map[string]string{
		"org.opencontainers.image.title":   md.Name,
		"org.opencontainers.image.version": md.Version,
	}
	if md.Description != "" {
		annotations["org.opencontainers.image.description"] = md.Description
	}
	manifest, err := json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: helmregistry.ConfigMediaType, Digest: configDigest, Size: configSize},
		Layers:        []v1.Descriptor{*layerDesc},
		Annotations:   annotations,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return partial.CompressedToImage(&helmArtifact{config: config, layer: layer, manifest: manifest})
}

func (a *helmArtifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *helmArtifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *helmArtifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (a *helmArtifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, err := a.layer.Digest(); err != nil || d != h {
		return nil, fmt.Errorf("chart artifact has no layer %s", h)
	}
	return a.layer, nil
}

// inProcessTransport hands requests straight to the registry handler, so
// Publish pushes with neither a network round trip nor credentials, while
// network clients only ever get GET and HEAD, behind basic auth.
type inProcessTransport struct{ h http.Handler }

func (t inProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = req.URL.RequestURI()
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, in)
	w.WriteHeader(http.StatusOK) // no-op unless the handler wrote nothing
	resp := &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
		resp.ContentLength = -1
		if n, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil {
			resp.ContentLength = n
		}
	}
	return resp, nil
}

// bufferedResponse is the http.ResponseWriter of inProcessTransport.
type bufferedResponse struct {
	header http.Header
	sent   http.Header // header as of WriteHeader, as a real server sends it
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.sent = w.header.Clone()
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
