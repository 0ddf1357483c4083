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
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	v2util "helm.sh/helm/v4/pkg/chart/v2/util"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/flux-fleet/flux-fleet/harness/record"
	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// release pre-flights one HelmRelease: resolve, load, check values, render.
func (r *runner) release(ctx context.Context, env *validate.Env, hrObj *validate.Object, rel *Release) []Finding {
	hr := hrObj.Typed.(*helmv2.HelmRelease)
	rc, findings := r.resolve(ctx, env, hrObj, hr, rel)
	if rc == nil {
		rel.Findings = append(rel.Findings, findings...)
		return findings
	}
	if rc.archive != nil {
		rel.Digest, rel.Cached = rc.archive.digest, rc.archive.cached
	}
	findings = append(findings, r.render(ctx, env.Name, hrObj, hr, rc, rel)...)
	if !r.opts.RawValues {
		findings = scrubFindings(findings, valuesScrubber(env, hrObj, hr))
	}
	rel.Findings = append(rel.Findings, findings...)
	return findings
}

// valuesScrubber hides what a HelmRelease's findings may quote (Helm's
// schema errors quote a rejected value): its spec.values, already
// substituted, and its Kustomization's inline substitutions, which may make
// up only part of a value. valuesFiles and chart defaults are files of the
// fleet or chart, not values the records digest.
func valuesScrubber(env *validate.Env, hrObj *validate.Object, hr *helmv2.HelmRelease) *record.Scrubber {
	trees := []any{hr.GetValues()}
	if ks := env.Object(hrObj.Owner); ks != nil {
		if subst, ok, _ := unstructured.NestedFieldNoCopy(ks.Raw, "spec", "postBuild", "substitute"); ok {
			trees = append(trees, subst)
		}
	}
	return record.NewScrubber(trees...)
}

// scrubFindings returns the findings with s applied to their reasons.
func scrubFindings(findings []Finding, s *record.Scrubber) []Finding {
	if s.Empty() {
		return findings
	}
	out := make([]Finding, len(findings))
	for i, f := range findings {
		f.Reason = s.Scrub(f.Reason)
		out[i] = f
	}
	return out
}

func (rc *resolvedChart) load() (*chart.Chart, error) {
	if rc.archive != nil {
		return loader.LoadArchive(bytes.NewReader(rc.archive.data))
	}
	return loader.LoadDir(rc.dir)
}

// render loads the chart, applies valuesFiles like source-controller,
// checks the HelmRelease's values (unknown keys, values.schema.json) and
// renders the chart like helm-controller's install (client-side, CRDs
// included, the kind node's Kubernetes version), recording the objects and
// their images.
func (r *runner) render(ctx context.Context, env string, hrObj *validate.Object, hr *helmv2.HelmRelease, rc *resolvedChart, rel *Release) []Finding {
	chrt, err := rc.load()
	if err != nil {
		return []Finding{finding(env, hrObj, false, "loading chart %s %s: %v", rel.Chart, rel.Version, err)}
	}
	rel.Chart = chrt.Name()
	if rel.Version == "" || rc.dir != "" {
		rel.Version = chrt.Metadata.Version
	}
	label := fmt.Sprintf("chart %s %s", rel.Chart, rel.Version)
	var findings []Finding
	if len(rc.valuesFiles) > 0 {
		if err := applyValuesFiles(chrt, rc.valuesFiles, rc.ignoreMissing, r.valuesRoot(rc)); err != nil {
			return []Finding{finding(env, rc.owner, false, "valuesFiles of %s: %v", label, err)}
		}
	}
	if len(hr.Spec.ValuesFrom) > 0 {
		var refs []string
		for _, v := range hr.Spec.ValuesFrom {
			refs = append(refs, v.Kind+"/"+v.Name)
		}
		rel.Notes = append(rel.Notes, fmt.Sprintf("spec.valuesFrom (%s) is unsupported offline: rendered without those values", strings.Join(refs, ", ")))
	}
	if len(hr.Spec.PostRenderers) > 0 {
		rel.Notes = append(rel.Notes, "spec.postRenderers are not applied by pre-flight")
	}
	values := hr.GetValues()
	if values == nil {
		values = map[string]any{}
	}
	for _, path := range unknownKeys(values, knownValues(chrt), "") {
		findings = append(findings, finding(env, hrObj, false,
			"values key %s is not defined by %s (not in values.yaml or values.schema.json): Helm ignores it", path, label))
	}

	// Schema validation as Helm does it, on its own copy of the chart
	// (ProcessDependencies prunes disabled subcharts in place).
	schemaChart, err := rc.load()
	if err == nil && len(rc.valuesFiles) > 0 {
		err = applyValuesFiles(schemaChart, rc.valuesFiles, rc.ignoreMissing, r.valuesRoot(rc))
	}
	if err != nil {
		return append(findings, finding(env, hrObj, false, "loading %s: %v", label, err))
	}
	if f := r.checkSchemas(env, hrObj, schemaChart, values, label); f != nil {
		findings = append(findings, *f)
	}

	objs, err := renderChart(ctx, chrt, values, renderSettings{
		releaseName:  hr.GetReleaseName(),
		namespace:    hr.GetReleaseNamespace(),
		kubeVersion:  r.kubeVersion,
		disableHooks: hr.GetInstall().DisableHooks,
		testHooks:    hr.GetTest().Enable,
		skipSchema:   true,
	})
	if err != nil {
		return append(findings, finding(env, hrObj, false, "rendering %s: %s", label, oneLine(err.Error())))
	}
	rel.Objects, rel.Images = objs, imagesOf(objs)
	return findings
}

// renderSettings are the install settings helm-controller takes from a
// HelmRelease (Render uses a HelmRelease's defaults).
type renderSettings struct {
	releaseName, namespace string
	// kubeVersion is the cluster's; nil is Helm's client-only default.
	kubeVersion  *common.KubeVersion
	disableHooks bool
	// testHooks keeps hooks that run only for `helm test` (spec.test.enable).
	testHooks bool
	// skipSchema leaves values.schema.json to the caller: Run validates it
	// itself so that remote $refs go through its bounded, cached client.
	skipSchema bool
}

// renderChart renders a loaded chart like `helm template` with
// helm-controller's install settings: the release name shortened as the
// controller does, CRDs included, hooks unless disabled (test hooks only
// when asked for), pre-releases allowed. Helm's own error is returned as
// it is, so callers can show what helm-controller would.
func renderChart(ctx context.Context, chrt *chart.Chart, values map[string]any, s renderSettings) (Objects, error) {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = shortenName(s.releaseName)
	install.Namespace = s.namespace
	install.IncludeCRDs = true
	install.KubeVersion = s.kubeVersion
	install.SkipSchemaValidation = s.skipSchema
	install.Devel = true
	install.DisableHooks = s.disableHooks
	out, err := install.RunWithContext(ctx, chrt, values)
	if err != nil {
		return nil, err
	}
	rel, ok := out.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("helm returned a %T, not a v1 release", out)
	}
	docs := []string{rel.Manifest}
	for _, h := range rel.Hooks {
		onlyTest := len(h.Events) > 0 && !slices.ContainsFunc(h.Events, func(e releasev1.HookEvent) bool { return e != releasev1.HookTest })
		if onlyTest && !s.testHooks {
			continue
		}
		docs = append(docs, h.Manifest)
	}
	objs, err := decodeManifests(docs)
	if err != nil {
		return nil, fmt.Errorf("decoding the rendered manifests: %w", err)
	}
	return objs, nil
}

// Objects are a chart's rendered manifests in Helm's install order, hooks
// last.
type Objects []*unstructured.Unstructured

// Get returns the object of that kind, namespace and name, or nil.
func (o Objects) Get(kind, namespace, name string) *unstructured.Unstructured {
	for _, u := range o {
		if u.GetKind() == kind && u.GetNamespace() == namespace && u.GetName() == name {
			return u
		}
	}
	return nil
}

func decodeManifests(docs []string) (Objects, error) {
	var out Objects
	for _, doc := range docs {
		dec := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(doc), 4096)
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, err
			}
			if s := strings.TrimSpace(string(raw)); s == "" || s == "null" {
				continue // a template rendered to nothing
			}
			// Through unstructured's JSON decoding, so that numbers are
			// int64 as in objects read from the API server.
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(raw); err != nil {
				return nil, err
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// RenderOptions say which release to render a chart for.
type RenderOptions struct {
	// ReleaseName and Namespace are the release's (a HelmRelease's
	// spec.releaseName and spec.targetNamespace, or their defaults).
	ReleaseName, Namespace string
	// Values are the release's values, as in spec.values; Render does not
	// modify them.
	Values map[string]any
	// KubeVersion is the cluster's Kubernetes version (e.g. v1.37.2), for
	// the chart's kubeVersion constraint and .Capabilities; empty means
	// Helm's client-only default, which is too old for many charts.
	KubeVersion string
}

// Render renders one chart directory the way Run renders a HelmRelease's
// chart, with the settings of a HelmRelease that sets only its values.
// Unlike Run, it lets Helm validate the values against values.schema.json
// itself, as helm-controller's install does, so that a rejection is Helm's
// exact error (wrapped once: errors.Unwrap gives the text helm-controller
// puts after "Helm install failed for release <ns>/<name> with chart
// <chart>@<version>: "); remote $refs then go through Helm's own client,
// so it is meant for charts whose schemas are self-contained.
func Render(ctx context.Context, chartDir string, opts RenderOptions) (Objects, error) {
	chrt, err := loader.LoadDir(chartDir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", chartDir, err)
	}
	s := renderSettings{releaseName: opts.ReleaseName, namespace: opts.Namespace}
	if opts.KubeVersion != "" {
		if s.kubeVersion, err = common.ParseKubeVersion(opts.KubeVersion); err != nil {
			return nil, fmt.Errorf("rendering chart %s: Kubernetes version %q: %w", chartDir, opts.KubeVersion, err)
		}
	}
	objs, err := renderChart(ctx, chrt, opts.Values, s)
	if err != nil {
		return nil, fmt.Errorf("rendering chart %s as release %s/%s: %w", chartDir, opts.Namespace, opts.ReleaseName, err)
	}
	return objs, nil
}

// shortenName is helm-controller's rule for release names over Helm's
// 53-character limit: a prefix and a short hash of the full name.
func shortenName(name string) string {
	const maxLength, hashLength = 53, 12
	if len(name) <= maxLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxLength-(hashLength+1)] + "-" + hex.EncodeToString(sum[:])[:hashLength]
}

// applyValuesFiles replaces the chart's default values with the merge of
// the listed files, as source-controller does for spec.valuesFiles: paths
// are relative to the chart for a chart from a repository, and to the
// repository root (sourceRoot) for a chart from this fleet's git source.
func applyValuesFiles(c *chart.Chart, files []string, ignoreMissing bool, sourceRoot string) error {
	merged := map[string]any{}
	for _, name := range files {
		name = strings.TrimPrefix(filepath.ToSlash(filepath.Clean("/"+name)), "/")
		var data []byte
		if sourceRoot != "" {
			b, err := os.ReadFile(filepath.Join(sourceRoot, filepath.FromSlash(name)))
			if err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("reading %s: %w", name, err)
			}
			data = b
		} else if idx := slices.IndexFunc(c.Raw, func(f *common.File) bool { return f.Name == name }); idx >= 0 {
			data = c.Raw[idx].Data
		}
		if data == nil {
			if ignoreMissing {
				continue
			}
			if sourceRoot != "" {
				return fmt.Errorf("%s is not in the repository", name)
			}
			return fmt.Errorf("%s is not in the chart", name)
		}
		vals := map[string]any{}
		if err := yaml.Unmarshal(data, &vals); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		merged = loader.MergeMaps(merged, vals)
	}
	c.Values = merged
	return nil
}

// valuesRoot is where valuesFiles paths start: the fleet for its own charts.
func (r *runner) valuesRoot(rc *resolvedChart) string {
	if rc.dir != "" {
		return r.opts.FleetDir
	}
	return ""
}

// ---- unknown keys ----

// knownValues is the tree of keys a chart defines: its values.yaml, the
// properties of its values.schema.json (for keys documented there but
// commented out in values.yaml), and each subchart's tree under its name
// or alias; every chart's "global" is merged into the top-level one.
func knownValues(c *chart.Chart) map[string]any {
	known := unionKnown(copyTree(c.Values), schemaTree(c.Schema))
	globals, _ := known["global"].(map[string]any)
	for _, sub := range c.Dependencies() {
		subKnown := knownValues(sub)
		keys := []string{sub.Name()}
		for _, d := range c.Metadata.Dependencies {
			if d.Name == sub.Name() && d.Alias != "" {
				keys = append(keys, d.Alias)
			}
		}
		for _, k := range keys {
			prev, _ := known[k].(map[string]any)
			known[k] = unionKnown(copyTree(subKnown), prev)
		}
		if g, ok := subKnown["global"].(map[string]any); ok {
			globals = unionKnown(globals, g)
		}
	}
	if globals != nil {
		known["global"] = globals
	}
	return known
}

func copyTree(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = copyTree(sub)
		}
		out[k] = v
	}
	return out
}

// unionKnown merges b's keys into a (recursively for maps).
func unionKnown(a, b map[string]any) map[string]any {
	if a == nil {
		a = map[string]any{}
	}
	for k, bv := range b {
		av, ok := a[k]
		if !ok {
			a[k] = bv
			continue
		}
		am, aIsMap := av.(map[string]any)
		bm, bIsMap := bv.(map[string]any)
		switch {
		case aIsMap && bIsMap:
			a[k] = unionKnown(am, bm)
		case !aIsMap && bIsMap && av == nil:
			a[k] = bm
		}
	}
	return a
}

// schemaTree turns the "properties" of a JSON schema into a key tree; a
// property without nested properties is a leaf (nil: anything allowed).
func schemaTree(schema []byte) map[string]any {
	if len(schema) == 0 {
		return nil
	}
	var doc map[string]any
	if err := yaml.Unmarshal(schema, &doc); err != nil {
		return nil
	}
	return propertiesTree(doc)
}

func propertiesTree(node map[string]any) map[string]any {
	props, ok := node["properties"].(map[string]any)
	if !ok {
		return nil
	}
	out := map[string]any{}
	for k, v := range props {
		sub, _ := v.(map[string]any)
		if t := propertiesTree(sub); t != nil {
			out[k] = t
		} else {
			out[k] = nil
		}
	}
	return out
}

// unknownKeys lists the dotted paths of user values that the chart does
// not define. Under a key whose default is empty or null the chart takes
// any keys (labels, annotations, resources); list elements are compared
// with the default list's first element when it is a map.
func unknownKeys(user map[string]any, known map[string]any, prefix string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(user)) {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		def, ok := known[k]
		if !ok {
			out = append(out, path)
			continue
		}
		out = append(out, unknownIn(user[k], def, path)...)
	}
	return out
}

func unknownIn(v, def any, path string) []string {
	switch uv := v.(type) {
	case map[string]any:
		dm, ok := def.(map[string]any)
		if !ok || len(dm) == 0 {
			return nil // free-form, or a type mismatch the schema (if any) judges
		}
		return unknownKeys(uv, dm, path)
	case []any:
		dl, ok := def.([]any)
		if !ok || len(dl) == 0 {
			return nil
		}
		first, ok := dl[0].(map[string]any)
		if !ok || len(first) == 0 {
			return nil
		}
		var out []string
		for i, el := range uv {
			if em, ok := el.(map[string]any); ok {
				out = append(out, unknownKeys(em, first, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
		return out
	}
	return nil
}

// ---- values.schema.json ----

// checkSchemas validates the coalesced values against the chart's schema
// and its enabled subcharts' schemas, as Helm's install does, with remote
// $refs fetched through this run's client (bounded, cached on disk).
func (r *runner) checkSchemas(env string, hrObj *validate.Object, chrt *chart.Chart, values map[string]any, label string) *Finding {
	if err := v2util.ProcessDependencies(chrt, values); err != nil {
		f := finding(env, hrObj, false, "processing the dependencies of %s: %v", label, err)
		return &f
	}
	coalesced, err := chartutil.CoalesceValues(chrt, values)
	if err != nil {
		f := finding(env, hrObj, false, "merging values over the defaults of %s: %v", label, err)
		return &f
	}
	var problems []string
	var fetchErr *schemaFetchError
	r.validateChart(chrt, coalesced.AsMap(), &problems, &fetchErr)
	if fetchErr != nil {
		f := finding(env, hrObj, isUnreachable(fetchErr.err), "values.schema.json of %s: loading $ref %s: %s",
			label, fetchErr.url, describeErr(fetchErr.err, r.opts.RequestTimeout))
		return &f
	}
	if len(problems) == 0 {
		return nil
	}
	// The schema library reports a value's problems in no fixed order.
	slices.Sort(problems)
	f := finding(env, hrObj, false, "values rejected by values.schema.json of %s: %s", label, strings.Join(problems, "; "))
	return &f
}

func (r *runner) validateChart(c *chart.Chart, values map[string]any, problems *[]string, fetchErr **schemaFetchError) {
	if len(c.Schema) > 0 {
		msgs, ferr := r.validateSchema(c.Schema, values)
		if ferr != nil && *fetchErr == nil {
			*fetchErr = ferr
		}
		for _, m := range msgs {
			*problems = append(*problems, c.Name()+": "+m)
		}
	}
	for _, sub := range c.Dependencies() {
		raw, ok := values[sub.Name()]
		if !ok || raw == nil {
			continue
		}
		subValues, ok := raw.(map[string]any)
		if !ok {
			*problems = append(*problems, fmt.Sprintf("%s: values must be a map, not %T", sub.Name(), raw))
			continue
		}
		r.validateChart(sub, subValues, problems, fetchErr)
	}
}

// schemaFetchError is a remote $ref that could not be loaded.
type schemaFetchError struct {
	url string
	err error
}

func (e *schemaFetchError) Error() string { return fmt.Sprintf("loading %s: %v", e.url, e.err) }

// schemaLoader loads http(s) $refs for one compilation and remembers the
// first failure (the compiler's own error does not unwrap to it).
type schemaLoader struct {
	r     *runner
	first *schemaFetchError
}

func (l *schemaLoader) Load(url string) (any, error) {
	doc, err := l.r.schemas.do(url, func() (any, error) { return l.r.fetchSchema(url) })
	if err != nil && l.first == nil {
		l.first = &schemaFetchError{url: url, err: err}
	}
	return doc, err
}

// permissiveURN is Helm's behaviour for urn: $refs nobody resolves: accept anything.
type permissiveURN struct{}

func (permissiveURN) Load(string) (any, error) { return true, nil }

// fetchSchema fetches a remote schema once and keeps it on disk: charts
// point at versioned schema documents that do not change.
func (r *runner) fetchSchema(url string) (any, error) {
	sum := sha256.Sum256([]byte(url))
	p := filepath.Join(r.opts.CacheDir, "schemas", hex.EncodeToString(sum[:16])+".json")
	if data, err := os.ReadFile(p); err == nil {
		if doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data)); err == nil {
			return doc, nil
		}
	}
	// The run's context bounds the whole run; each request has its own timeout.
	data, err := r.get(r.runCtx, url, nil)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s is not JSON: %w", url, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
		if tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*"); err == nil {
			_, werr := tmp.Write(data)
			if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
				_ = os.Remove(tmp.Name())
			}
		}
	}
	return doc, nil
}

// validateSchema returns the schema's complaints about the values, one per
// failing location, without jsonschema's header line.
func (r *runner) validateSchema(schema []byte, values map[string]any) ([]string, *schemaFetchError) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return []string{"values.schema.json is not valid JSON: " + err.Error()}, nil
	}
	remoteLoader := &schemaLoader{r: r}
	compiler := jsonschema.NewCompiler()
	compiler.UseLoader(jsonschema.SchemeURLLoader{
		"file":  jsonschema.FileLoader{},
		"http":  remoteLoader,
		"https": remoteLoader,
		"urn":   permissiveURN{},
	})
	const id = "file:///values.schema.json"
	if err := compiler.AddResource(id, doc); err != nil {
		return []string{"values.schema.json: " + err.Error()}, nil
	}
	sch, err := compiler.Compile(id)
	if err != nil {
		if remoteLoader.first != nil {
			return nil, remoteLoader.first
		}
		return []string{"values.schema.json does not compile: " + oneLine(err.Error())}, nil
	}
	err = sch.Validate(values)
	if err == nil {
		return nil, nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return []string{err.Error()}, nil
	}
	var out []string
	for _, line := range strings.Split(verr.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "jsonschema validation failed") {
			continue
		}
		out = append(out, strings.TrimPrefix(line, "- "))
	}
	return out, nil
}

// oneLine folds a multi-line error (Helm's template errors) into one line.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}
