package preflight

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/flux-fleet/flux-fleet/harness/validate"
)

const (
	// helmChartLayer is the media type of a Helm chart's content in an OCI
	// artifact; helmChartLayerLegacy is what Helm 3.0–3.7 pushed.
	helmChartLayer       = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	helmChartLayerLegacy = "application/tar+gzip"
)

// chartSpec is what a HelmChart (a HelmRelease's template or an object)
// asks source-controller for.
type chartSpec struct {
	chart, version string
	sourceRef      validate.ObjectRef
	valuesFiles    []string
	ignoreMissing  bool
	// owner is the object the spec is written in (HelmRelease or HelmChart):
	// a version that matches nothing is its fault.
	owner *validate.Object
	field string
}

// resolvedChart is a chart ready to load: an archive, or a directory of the fleet.
type resolvedChart struct {
	archive       *fetched
	dir           string
	valuesFiles   []string
	ignoreMissing bool
	owner         *validate.Object
}

func finding(env string, o *validate.Object, unreachable bool, format string, args ...any) Finding {
	return Finding{Env: env, File: o.File, Object: o.Ref, Reason: fmt.Sprintf(format, args...), Unreachable: unreachable}
}

// fetchFailed is the finding for a request to a source that failed: a
// source that could not be reached is the source's fault (and marked
// unreachable); an answer refusing the request is atFault's, the object
// whose request it was, with what it was doing.
func (r *runner) fetchFailed(env string, source, atFault *validate.Object, location string, err error, what string) []Finding {
	if isUnreachable(err) {
		return []Finding{finding(env, source, true, "source unreachable: %s: %s", location, describeErr(err, r.opts.RequestTimeout))}
	}
	return []Finding{finding(env, atFault, false, "%s: %s", what, describeErr(err, r.opts.RequestTimeout))}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// decodeRaw decodes an object as built (after substitution) into a typed
// v1 API struct. The offline tier decoded it strictly already (in the
// version it is written in); v1beta2 sources share the fields used here.
func decodeRaw(o *validate.Object, into any) error {
	data, err := json.Marshal(o.Raw)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", o.Ref, err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("decoding %s: %w", o.Ref, err)
	}
	return nil
}

// resolve finds the chart of a HelmRelease the way helm-controller asks
// source-controller for it. rel.Chart/Version/Source are filled as far as
// resolution got.
func (r *runner) resolve(ctx context.Context, env *validate.Env, hrObj *validate.Object, hr *helmv2.HelmRelease, rel *Release) (*resolvedChart, []Finding) {
	switch {
	case hr.Spec.Chart != nil:
		t := hr.Spec.Chart.Spec
		ref := validate.ObjectRef{Kind: t.SourceRef.Kind, Namespace: orDefault(t.SourceRef.Namespace, hr.Namespace), Name: t.SourceRef.Name}
		return r.resolveSpec(ctx, env, chartSpec{chart: t.Chart, version: t.Version, sourceRef: ref, valuesFiles: t.ValuesFiles,
			ignoreMissing: t.IgnoreMissingValuesFiles, owner: hrObj, field: "spec.chart.spec"}, rel)
	case hr.Spec.ChartRef != nil:
		ref := validate.ObjectRef{Kind: hr.Spec.ChartRef.Kind, Namespace: orDefault(hr.Spec.ChartRef.Namespace, hr.Namespace), Name: hr.Spec.ChartRef.Name}
		rel.Source, rel.SourceRef = ref.String(), ref
		obj := env.Object(ref)
		if obj == nil {
			return nil, []Finding{finding(env.Name, hrObj, false, "spec.chartRef %s is not defined in this environment", ref)}
		}
		switch ref.Kind {
		case sourcev1.OCIRepositoryKind:
			return r.ociRepositoryChart(ctx, env.Name, obj, rel)
		case sourcev1.HelmChartKind:
			var hc sourcev1.HelmChart
			if err := decodeRaw(obj, &hc); err != nil {
				return nil, []Finding{finding(env.Name, obj, false, "%v", err)}
			}
			src := validate.ObjectRef{Kind: hc.Spec.SourceRef.Kind, Namespace: obj.Ref.Namespace, Name: hc.Spec.SourceRef.Name}
			return r.resolveSpec(ctx, env, chartSpec{chart: hc.Spec.Chart, version: hc.Spec.Version, sourceRef: src,
				valuesFiles: hc.Spec.ValuesFiles, ignoreMissing: hc.Spec.IgnoreMissingValuesFiles, owner: obj, field: "spec"}, rel)
		default:
			return nil, []Finding{finding(env.Name, hrObj, false, "spec.chartRef kind %s cannot be pre-flighted (its artifact is produced in the cluster)", ref.Kind)}
		}
	default:
		return nil, []Finding{finding(env.Name, hrObj, false, "needs spec.chart or spec.chartRef")}
	}
}

func (r *runner) resolveSpec(ctx context.Context, env *validate.Env, spec chartSpec, rel *Release) (*resolvedChart, []Finding) {
	rel.Chart = spec.chart
	rel.Source, rel.SourceRef = spec.sourceRef.String(), spec.sourceRef
	obj := env.Object(spec.sourceRef)
	if obj == nil {
		return nil, []Finding{finding(env.Name, spec.owner, false, "%s.sourceRef %s is not defined in this environment", spec.field, spec.sourceRef)}
	}
	switch spec.sourceRef.Kind {
	case sourcev1.HelmRepositoryKind:
		var repo sourcev1.HelmRepository
		if err := decodeRaw(obj, &repo); err != nil {
			return nil, []Finding{finding(env.Name, obj, false, "%v", err)}
		}
		rel.Source = obj.Ref.String() + " " + repo.Spec.URL
		if repo.Spec.Type == sourcev1.HelmRepositoryTypeOCI {
			return r.ociHelmChart(ctx, env.Name, obj, &repo, spec, rel)
		}
		return r.httpHelmChart(ctx, env.Name, obj, &repo, spec, rel)
	case sourcev1.GitRepositoryKind:
		if spec.sourceRef != validate.BootstrapSource() {
			return nil, []Finding{finding(env.Name, spec.owner, false,
				"%s.sourceRef %s is not this fleet's repository: its charts cannot be pre-flighted", spec.field, spec.sourceRef)}
		}
		// The chart is a directory of this repository, as the harness serves it.
		dir := filepath.Join(r.opts.FleetDir, filepath.FromSlash(filepath.ToSlash(filepath.Clean("/"+spec.chart))))
		rel.Source = obj.Ref.String() + " (this fleet) " + filepath.ToSlash(filepath.Clean("/" + spec.chart))[1:]
		if fi, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil || fi.IsDir() {
			return nil, []Finding{finding(env.Name, spec.owner, false, "%s.chart %q is not a chart directory of this fleet (no Chart.yaml)", spec.field, spec.chart)}
		}
		return &resolvedChart{dir: dir, valuesFiles: spec.valuesFiles, ignoreMissing: spec.ignoreMissing, owner: spec.owner}, nil
	default:
		return nil, []Finding{finding(env.Name, spec.owner, false, "%s.sourceRef kind %s cannot be pre-flighted", spec.field, spec.sourceRef.Kind)}
	}
}

// memoKey keys a lookup by what was asked and whether credentials went
// with it: two sources with one URL may differ only by their secretRef.
func memoKey(location string, cred *Credential) string {
	if cred == nil {
		return location
	}
	return location + " (authenticated)"
}

// ---- HTTP Helm repositories ----

type indexResult struct{ index *repov1.IndexFile }

// httpHelmChart resolves a chart from a Helm HTTP repository: index.yaml,
// semver constraint, download (cached by the index's digest).
func (r *runner) httpHelmChart(ctx context.Context, env string, repoObj *validate.Object, repo *sourcev1.HelmRepository, spec chartSpec, rel *Release) (*resolvedChart, []Finding) {
	base := strings.TrimSuffix(repo.Spec.URL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, []Finding{finding(env, repoObj, false, "spec.url %q is not an http(s) URL", repo.Spec.URL)}
	}
	cred := r.credential(repo.Spec.SecretRef != nil, u.Host)
	indexURL := base + "/index.yaml"
	idx, findings := r.repositoryIndex(ctx, env, repoObj, indexURL, cred)
	if idx == nil {
		return nil, findings
	}
	cvs := idx.Entries[spec.chart]
	if len(cvs) == 0 {
		names := slices.Sorted(maps.Keys(idx.Entries))
		return nil, []Finding{finding(env, spec.owner, false, "chart %q is not in %s (it has: %s)", spec.chart, indexURL, strings.Join(names, ", "))}
	}
	cv, err := pickIndexVersion(cvs, spec.version)
	if err != nil {
		return nil, []Finding{finding(env, spec.owner, false, "%s.version %q: %v in %s (newest: %s)", spec.field, spec.version, err, indexURL, newestIndex(cvs))}
	}
	rel.Version = cv.Version
	if len(cv.URLs) == 0 {
		return nil, []Finding{finding(env, repoObj, false, "index entry %s %s has no download URL", spec.chart, cv.Version)}
	}
	raw := cv.URLs[0]
	if !strings.Contains(raw, "://") {
		// Relative URLs are relative to the repository root, which may have a path.
		raw = base + "/" + strings.TrimPrefix(raw, "/")
	}
	chartURL, err := url.Parse(raw)
	if err != nil {
		return nil, []Finding{finding(env, repoObj, false, "index entry %s %s: bad URL %q: %v", spec.chart, cv.Version, cv.URLs[0], err)}
	}
	var chartCred *Credential
	if cred != nil && (chartURL.Host == u.Host || repo.Spec.PassCredentials) {
		chartCred = cred
	}
	f, err := r.downloadChart(ctx, chartURL, chartCred, cv.Digest)
	if err != nil {
		return nil, r.fetchFailed(env, repoObj, repoObj, chartURL.String(), err, fmt.Sprintf("downloading chart %s %s", spec.chart, cv.Version))
	}
	return &resolvedChart{archive: f, valuesFiles: spec.valuesFiles, ignoreMissing: spec.ignoreMissing, owner: spec.owner}, nil
}

// repositoryIndex fetches and loads a repository's index.yaml once per
// run; a failure is a finding on the repository.
func (r *runner) repositoryIndex(ctx context.Context, env string, repoObj *validate.Object, indexURL string, cred *Credential) (*repov1.IndexFile, []Finding) {
	idx, err := r.indexes.do(memoKey(indexURL, cred), func() (*indexResult, error) {
		data, err := r.get(ctx, indexURL, cred)
		if err != nil {
			return nil, err
		}
		index, err := r.loadIndex(indexURL, data)
		if err != nil {
			return nil, fmt.Errorf("%s does not load as a Helm repository index: %w", indexURL, err)
		}
		return &indexResult{index: index}, nil
	})
	if err == nil {
		return idx.index, nil
	}
	var sErr *httpStatusError
	if isUnreachable(err) || errors.As(err, &sErr) {
		return nil, r.fetchFailed(env, repoObj, repoObj, indexURL, err, "fetching "+indexURL)
	}
	return nil, []Finding{finding(env, repoObj, false, "%v", err)}
}

// downloadChart fetches a chart archive once per run, from the cache when
// the index gives its digest (hex, as index.yaml writes it) and a good copy
// is there; a download that does not match that digest is refused.
func (r *runner) downloadChart(ctx context.Context, chartURL *url.URL, cred *Credential, indexDigest string) (*fetched, error) {
	want := ""
	if indexDigest != "" {
		want = "sha256:" + indexDigest
	}
	return r.archives.do(memoKey(chartURL.String(), cred), func() (*fetched, error) {
		if f := r.cachedArchive(want); f != nil {
			return f, nil
		}
		data, err := r.get(ctx, chartURL.String(), cred)
		if err != nil {
			return nil, err
		}
		f := &fetched{data: data, digest: sha256Digest(data)}
		if want != "" && f.digest != want {
			return nil, fmt.Errorf("downloaded %s has digest %s, the index says %s", chartURL, f.digest, want)
		}
		r.storeArchive(f)
		return f, nil
	})
}

// loadIndex loads index.yaml with Helm's own loader (which validates and
// sorts entries); it reads from a file, so the index is kept in the cache
// directory, where it also helps a reader see what the repository served.
func (r *runner) loadIndex(indexURL string, data []byte) (*repov1.IndexFile, error) {
	sum := sha256.Sum256([]byte(indexURL))
	dir := filepath.Join(r.opts.CacheDir, "index")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the index cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("caching the index: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		return nil, fmt.Errorf("caching the index: %w", errors.Join(werr, cerr))
	}
	index, err := repov1.LoadIndexFile(tmp.Name())
	if err != nil {
		return nil, err
	}
	_ = os.Rename(tmp.Name(), filepath.Join(dir, hex.EncodeToString(sum[:8])+".yaml"))
	return index, nil
}

// parseVersion accepts what source-controller accepts as a chart version:
// semver with all three parts.
func parseVersion(v string) (*semver.Version, error) {
	if len(strings.SplitN(v, ".", 3)) != 3 {
		return nil, semver.ErrInvalidSemVer
	}
	return semver.NewVersion(v)
}

// constraint is the version constraint source-controller uses: empty or
// "*" means the newest stable version; pre-releases match only a
// constraint that names one (Masterminds semver, as Helm).
func constraint(ver string) (*semver.Constraints, error) {
	if ver == "" {
		ver = "*"
	}
	c, err := semver.NewConstraint(ver)
	if err != nil {
		return nil, fmt.Errorf("not a semver range: %w", err)
	}
	return c, nil
}

// VersionMatches reports whether a chart version is one a version range
// admits, read the way source-controller reads spec.chart.spec.version:
// empty or "*" admits any stable version, and a pre-release only a range
// that names one.
func VersionMatches(versionRange, version string) (bool, error) {
	c, err := constraint(versionRange)
	if err != nil {
		return false, fmt.Errorf("version range %q: %w", versionRange, err)
	}
	v, err := parseVersion(version)
	if err != nil {
		return false, fmt.Errorf("chart version %q: %w", version, err)
	}
	return c.Check(v), nil
}

// pickIndexVersion selects an index entry like source-controller: an exact
// version string first, else the highest version matching the constraint
// (same versions ordered by creation time).
func pickIndexVersion(cvs repov1.ChartVersions, ver string) (*repov1.ChartVersion, error) {
	for _, cv := range cvs {
		if ver != "" && cv.Version == ver {
			return cv, nil
		}
	}
	c, err := constraint(ver)
	if err != nil {
		return nil, err
	}
	var best *repov1.ChartVersion
	var bestV *semver.Version
	for _, cv := range cvs {
		v, err := parseVersion(cv.Version)
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(bestV) || (v.Equal(bestV) && cv.Created.After(best.Created)) {
			best, bestV = cv, v
		}
	}
	if best == nil {
		return nil, errors.New("no chart version matches")
	}
	return best, nil
}

func newestIndex(cvs repov1.ChartVersions) string {
	var vs []string
	for _, cv := range cvs {
		vs = append(vs, cv.Version)
	}
	return newest(vs)
}

// newest lists the three highest versions, to show what a range could have matched.
func newest(versions []string) string {
	var parsed semver.Collection
	for _, s := range versions {
		if v, err := parseVersion(s); err == nil {
			parsed = append(parsed, v)
		}
	}
	if len(parsed) == 0 {
		return "none"
	}
	sort.Sort(sort.Reverse(parsed))
	var out []string
	for i, v := range parsed {
		if i == 3 {
			break
		}
		out = append(out, v.Original())
	}
	return strings.Join(out, ", ")
}

// ---- OCI ----

// ociRepository parses an oci:// URL into a repository, applying insecure
// (plain HTTP) like source-controller.
func ociRepository(rawURL string, insecure bool) (name.Repository, error) {
	if !strings.HasPrefix(rawURL, "oci://") {
		return name.Repository{}, fmt.Errorf("%q is not an oci:// URL", rawURL)
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	return name.NewRepository(strings.TrimPrefix(rawURL, "oci://"), opts...)
}

// listTags lists a repository's tags once per run.
func (r *runner) listTags(ctx context.Context, repo name.Repository, cred *Credential) ([]string, error) {
	return r.tags.do(memoKey(repo.Scheme()+"://"+repo.String(), cred), func() ([]string, error) {
		ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
		defer cancel()
		return remote.List(repo, r.remoteOptions(ctx, cred)...)
	})
}

// pickTag selects the highest tag matching the constraint; helmTags maps
// OCI's "_" back to semver's "+" (Helm cannot push "+" in a tag).
func pickTag(tags []string, ver string, helmTags bool) (string, error) {
	if ver != "" && slices.Contains(tags, ver) {
		return ver, nil
	}
	c, err := constraint(ver)
	if err != nil {
		return "", err
	}
	var best *semver.Version
	bestTag := ""
	for _, t := range tags {
		s := t
		if helmTags {
			s = strings.ReplaceAll(t, "_", "+")
		}
		v, err := parseVersion(s)
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, bestTag = v, t
		}
	}
	if best == nil {
		return "", errors.New("no tag matches")
	}
	return bestTag, nil
}

// ociHelmChart resolves a chart from a HelmRepository of type oci: the
// repository <url>/<chart>, a tag by semver (an exact version is used as
// the tag without listing, like source-controller), the chart layer.
func (r *runner) ociHelmChart(ctx context.Context, env string, repoObj *validate.Object, hrepo *sourcev1.HelmRepository, spec chartSpec, rel *Release) (*resolvedChart, []Finding) {
	repo, err := ociRepository(strings.TrimSuffix(hrepo.Spec.URL, "/")+"/"+spec.chart, hrepo.Spec.Insecure)
	if err != nil {
		return nil, []Finding{finding(env, repoObj, false, "spec.url: %v", err)}
	}
	location := "oci://" + repo.String()
	cred := r.credential(hrepo.Spec.SecretRef != nil, repo.RegistryStr())
	tag := strings.ReplaceAll(spec.version, "+", "_")
	if _, err := parseVersion(spec.version); err != nil {
		tags, err := r.listTags(ctx, repo, cred)
		if err != nil {
			return nil, r.fetchFailed(env, repoObj, spec.owner, location, err, "listing the tags of "+location)
		}
		if tag, err = pickTag(tags, spec.version, true); err != nil {
			return nil, []Finding{finding(env, spec.owner, false, "%s.version %q: %v at %s (newest: %s)", spec.field, spec.version, err, location, newest(helmVersions(tags)))}
		}
	}
	rel.Version = strings.ReplaceAll(tag, "_", "+")
	f, err := r.pullChart(ctx, repo.Tag(tag), cred, []string{helmChartLayer, helmChartLayerLegacy})
	if err != nil {
		return nil, r.fetchFailed(env, repoObj, spec.owner, location, err, fmt.Sprintf("pulling chart %s:%s", location, tag))
	}
	return &resolvedChart{archive: f, valuesFiles: spec.valuesFiles, ignoreMissing: spec.ignoreMissing, owner: spec.owner}, nil
}

func helmVersions(tags []string) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = strings.ReplaceAll(t, "_", "+")
	}
	return out
}

// ociRepositoryChart resolves an OCIRepository used as a chartRef: its
// ref (digest, semver with semverFilter, tag, else "latest") and the layer
// its layerSelector names (else the first).
func (r *runner) ociRepositoryChart(ctx context.Context, env string, obj *validate.Object, rel *Release) (*resolvedChart, []Finding) {
	var oci sourcev1.OCIRepository
	if err := decodeRaw(obj, &oci); err != nil {
		return nil, []Finding{finding(env, obj, false, "%v", err)}
	}
	rel.Source = obj.Ref.String() + " " + oci.Spec.URL
	repo, err := ociRepository(oci.Spec.URL, oci.Spec.Insecure)
	if err != nil {
		return nil, []Finding{finding(env, obj, false, "spec.url: %v", err)}
	}
	location := "oci://" + repo.String()
	cred := r.credential(oci.Spec.SecretRef != nil, repo.RegistryStr())
	mediaType := oci.GetLayerMediaType()
	var ref name.Reference = repo.Tag(name.DefaultTag)
	ociRef := oci.Spec.Reference
	switch {
	case ociRef != nil && ociRef.Digest != "":
		ref = repo.Digest(ociRef.Digest)
	case ociRef != nil && ociRef.SemVer != "":
		tags, err := r.listTags(ctx, repo, cred)
		if err != nil {
			return nil, r.fetchFailed(env, obj, obj, location, err, "listing the tags of "+location)
		}
		if ociRef.SemverFilter != "" {
			re, err := regexp.Compile(ociRef.SemverFilter)
			if err != nil {
				return nil, []Finding{finding(env, obj, false, "spec.ref.semverFilter %q: %v", ociRef.SemverFilter, err)}
			}
			tags = slices.DeleteFunc(tags, func(t string) bool { return !re.MatchString(t) })
		}
		helmTags := mediaType == helmChartLayer
		tag, err := pickTag(tags, ociRef.SemVer, helmTags)
		if err != nil {
			vs := tags
			if helmTags {
				vs = helmVersions(tags)
			}
			return nil, []Finding{finding(env, obj, false, "spec.ref.semver %q: %v at %s (newest: %s)", ociRef.SemVer, err, location, newest(vs))}
		}
		ref = repo.Tag(tag)
	case ociRef != nil && ociRef.Tag != "":
		ref = repo.Tag(ociRef.Tag)
	}
	if t, ok := ref.(name.Tag); ok {
		rel.Version = strings.ReplaceAll(t.TagStr(), "_", "+")
	}
	var mediaTypes []string
	if mediaType != "" {
		mediaTypes = []string{mediaType}
	}
	f, err := r.pullChart(ctx, ref, cred, mediaTypes)
	if err != nil {
		return nil, r.fetchFailed(env, obj, obj, location, err, "pulling "+ref.Name())
	}
	return &resolvedChart{archive: f, owner: obj}, nil
}

// pullChart fetches an artifact's manifest and the layer holding the chart
// (the first of mediaTypes found; with none given, the first layer),
// taking the layer from the cache when its digest is there.
func (r *runner) pullChart(ctx context.Context, ref name.Reference, cred *Credential, mediaTypes []string) (*fetched, error) {
	return r.archives.do(memoKey(ref.Context().Scheme()+"://"+ref.Name(), cred), func() (*fetched, error) {
		ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
		defer cancel()
		opts := r.remoteOptions(ctx, cred)
		desc, err := remote.Get(ref, opts...)
		if err != nil {
			return nil, err
		}
		if desc.MediaType.IsIndex() {
			return nil, fmt.Errorf("%s is an image index, not a chart artifact", ref.Name())
		}
		m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, fmt.Errorf("parsing the manifest of %s: %w", ref.Name(), err)
		}
		layer, err := selectLayer(m, mediaTypes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref.Name(), err)
		}
		digest := layer.Digest.String()
		if f := r.cachedArchive(digest); f != nil {
			return f, nil
		}
		l, err := remote.Layer(ref.Context().Digest(digest), opts...)
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, maxDownload+1))
		if err != nil {
			return nil, fmt.Errorf("reading layer %s of %s: %w", digest, ref.Name(), err)
		}
		f := &fetched{data: data, digest: sha256Digest(data)}
		if f.digest != digest {
			return nil, fmt.Errorf("layer %s of %s has digest %s", digest, ref.Name(), f.digest)
		}
		r.storeArchive(f)
		return f, nil
	})
}

func selectLayer(m *v1.Manifest, mediaTypes []string) (v1.Descriptor, error) {
	if len(m.Layers) == 0 {
		return v1.Descriptor{}, errors.New("the artifact has no layers")
	}
	if len(mediaTypes) == 0 {
		return m.Layers[0], nil
	}
	for _, mt := range mediaTypes {
		for _, l := range m.Layers {
			if string(l.MediaType) == mt {
				return l, nil
			}
		}
	}
	var have []string
	for _, l := range m.Layers {
		have = append(have, string(l.MediaType))
	}
	return v1.Descriptor{}, fmt.Errorf("no layer with media type %s (layers: %s)", strings.Join(mediaTypes, " or "), strings.Join(have, ", "))
}
