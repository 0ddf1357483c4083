package chartserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
)

// packaged is a chart packaged from a directory, held in memory.
type packaged struct {
	Chart
	dir      string
	file     string // <name>-<version>.tgz
	archive  []byte
	metadata *chart.Metadata
}

// Publish re-packages every chart directory and serves the new set in
// place of the old (chartrepo.Repository.Replace). On error nothing
// changes in what is served. A chart whose files did not change keeps its
// digest, so Flux sees no new revision for it.
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

	set, err := Package(ctx, s.opts.ChartDirs, s.tmpDir)
	if err != nil {
		return nil, err
	}
	if err := s.repo.Replace(ctx, set); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.set = set
	s.mu.Unlock()
	return s.Charts(), nil
}

// Package packages every chart found in roots (as Options.ChartDirs) in a
// directory of its own under work, which it removes, and returns the set
// to serve: Helm's index and each chart's archive and OCI artifact.
func Package(ctx context.Context, roots []string, work string) (chartrepo.Set, error) {
	charts, err := packageAll(ctx, roots, work)
	if err != nil {
		return chartrepo.Set{}, err
	}
	set, err := buildSet(charts)
	if err != nil {
		return chartrepo.Set{}, err
	}
	// The rules a repository serves by (two charts of one name and version
	// among them), checked before any server is handed the set.
	return set, set.Check()
}

// packageAll packages every chart found in roots, each into its own
// directory under tmp, sorted by name and version.
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
	slices.SortStableFunc(charts, func(a, b *packaged) int {
		return strings.Compare(a.Name+"\x00"+a.Version, b.Name+"\x00"+b.Version)
	})
	return charts, nil
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
	sum := sha256.Sum256(archive)
	return &packaged{
		Chart: Chart{Name: md.Name, Version: md.Version, Digest: "sha256:" + hex.EncodeToString(sum[:])},
		dir:   source,
		// The name chartutil.Save gives the archive, whatever the file
		// was called: the index and the archive paths must agree.
		file:     md.Name + "-" + md.Version + ".tgz",
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

// buildSet makes the set a chartrepo.Repository serves: Helm's index,
// with urls relative to the repository root so that one index works at
// every address, and each chart's OCI artifact as `helm push` lays it out.
func buildSet(charts []*packaged) (chartrepo.Set, error) {
	idx := repo.NewIndexFile()
	set := chartrepo.Set{}
	for _, c := range charts {
		if err := idx.MustAdd(c.metadata, "charts/"+c.file, "", strings.TrimPrefix(c.Digest, "sha256:")); err != nil {
			return chartrepo.Set{}, fmt.Errorf("indexing chart %s: %w", c.dir, err)
		}
		manifest, config, err := helmArtifact(c.metadata, c.archive)
		if err != nil {
			return chartrepo.Set{}, fmt.Errorf("building the OCI artifact of chart %s: %w", c.dir, err)
		}
		set.Entries = append(set.Entries, chartrepo.Entry{Chart: c.Chart, File: c.file, Archive: c.archive,
			Tag: ociTag(c.Version), Manifest: manifest, Config: config, Source: c.dir})
	}
	idx.SortEntries()
	b, err := yaml.Marshal(idx)
	if err != nil {
		return chartrepo.Set{}, fmt.Errorf("writing the repository index: %w", err)
	}
	set.Index = b
	return set, nil
}

// helmArtifact returns the manifest and config of a chart as `helm push`
// writes them: the chart metadata as JSON for config, the .tgz as the
// only layer.
func helmArtifact(md *chart.Metadata, archive []byte) (manifest, config []byte, err error) {
	config, err = json.Marshal(md)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding chart metadata: %w", err)
	}
	layer := static.NewLayer(archive, helmregistry.ChartLayerMediaType)
	layerDesc, err := partial.Descriptor(layer)
	if err != nil {
		return nil, nil, err
	}
	configDigest, configSize, err := v1.SHA256(bytes.NewReader(config))
	if err != nil {
		return nil, nil, err
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
	manifest, err = json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: helmregistry.ConfigMediaType, Digest: configDigest, Size: configSize},
		Layers:        []v1.Descriptor{*layerDesc},
		Annotations:   annotations,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return manifest, config, nil
}
