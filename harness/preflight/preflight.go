// Package preflight checks, before any cluster exists, that every HelmRelease
// of a fleet can be installed: it resolves each chart version the way
// source-controller does, renders the chart with the Helm SDK the way
// helm-controller does (Render does the same for one chart directory), and
// checks that every image the rendered manifests use exists in its registry.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"golang.org/x/sync/errgroup"
	"helm.sh/helm/v4/pkg/chart/common"

	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// Credential is basic auth for one host: an HTTP Helm repository or an OCI registry.
type Credential struct {
	Username, Password string
}

// Options says which fleet to check and how to reach its sources.
type Options struct {
	// FleetDir holds clusters/<env>, like the offline tier's fleet directory.
	FleetDir string
	// Envs restricts the run to these environments; empty means all.
	Envs []string
	// HostRewrites maps a host:port as written in fleet sources to the address to use instead,
	// e.g. "chart-server.flux-system.svc.cluster.local" -> "127.0.0.1:41234" (the harness's chart server on loopback).
	// A key without a port matches that host on any port.
	HostRewrites map[string]string
	// Credentials per host as written in the fleet (before rewriting): basic auth for HTTP repos and registries.
	// They are sent only to sources that have a secretRef, as source-controller would.
	Credentials map[string]Credential
	// KnownImages are treated as present without asking a registry (the offline kit's preloaded images).
	KnownImages []string
	// KnownImagesOnly makes every image outside KnownImages a finding without
	// asking a registry: for clusters that can pull nothing (the offline kit),
	// where an unreachable registry would otherwise hide a missing image.
	KnownImagesOnly bool
	// SkipImages leaves the registries alone: each Release still lists its
	// images, but none is looked up (for callers that want the renders only).
	SkipImages bool
	// KubeVersion is the Kubernetes version charts are rendered for (.Capabilities.KubeVersion);
	// see KitKubeVersion. Required.
	KubeVersion string
	// CacheDir keeps resolved chart archives by digest (and remote JSON schemas by URL).
	// Empty: ${XDG_CACHE_HOME:-~/.cache}/flux-fleet/preflight.
	CacheDir string
	// Out receives the report when Run ends; nil prints nothing.
	Out io.Writer
	// RawValues keeps HelmRelease values in findings as Helm quotes them;
	// by default they appear as record.ValueDigest, since findings reach
	// the run log and the uploaded report (E2E_ARTIFACTS_RAW_VALUES).
	RawValues bool

	// RequestTimeout bounds each network request; zero means 15s.
	RequestTimeout time.Duration
	// Timeout bounds the whole run; zero means 3m.
	Timeout time.Duration
}

// Finding is one problem found while resolving, rendering or checking images.
type Finding struct {
	// Env is the clusters/<env> directory name.
	Env string
	// File is the file responsible, relative to the fleet directory.
	File string
	// Object is the object at fault (a HelmRelease or its source).
	Object validate.ObjectRef
	// Reason says what is wrong.
	Reason string
	// Unreachable marks a source, registry or schema that could not be
	// reached at all (DNS, connection, timeout), as opposed to one that
	// answered that something is wrong: a machine without internet sees only
	// these for a fleet whose sources are public.
	Unreachable bool
}

// String renders the finding like the offline tier: env: file: Kind/ns/name: reason.
func (f Finding) String() string {
	if f.Env == "" { // about the run, not one environment
		return f.Reason
	}
	return f.base().String()
}

// base is the finding as the offline tier words and orders it.
func (f Finding) base() validate.Finding {
	return validate.Finding{Env: f.Env, File: f.File, Object: f.Object, Reason: f.Reason}
}

// Release is the outcome for one HelmRelease.
type Release struct {
	Object validate.ObjectRef
	File   string
	// Chart and Version are the chart resolved (Version empty when resolution failed).
	Chart, Version string
	// Source describes where the chart came from: Kind/ns/name and URL.
	Source string
	// SourceRef is the source the chart comes from, as the HelmRelease (or
	// the HelmChart of its chartRef) names it: a HelmRepository,
	// GitRepository or OCIRepository; zero when it names none.
	SourceRef validate.ObjectRef
	// Digest of the chart archive ("sha256:…"), empty for charts read from the fleet directory.
	Digest string
	// Cached reports that the archive came from the cache, not the network.
	Cached bool
	// Objects are the rendered manifests (CRDs and hooks included, test
	// hooks only with spec.test.enable); nil when the chart did not render.
	Objects Objects
	// Images used by the rendered manifests (hooks included), sorted.
	Images []string
	// Notes are things pre-flight could not check (valuesFrom, postRenderers);
	// they do not fail the run.
	Notes    []string
	Findings []Finding
}

// Image is one image an environment's releases use, and whether it exists.
type Image struct {
	Ref string
	// Known: listed in Options.KnownImages, not asked for.
	Known   bool
	Present bool
	// Reason is why the image is missing or could not be checked.
	Reason      string
	Unreachable bool
	// UsedBy lists the HelmReleases that use it.
	UsedBy []validate.ObjectRef
}

// EnvReport is the outcome for one environment.
type EnvReport struct {
	Name     string
	Releases []*Release
	Images   []*Image
}

// Report is the outcome of Run.
type Report struct {
	FleetDir string
	Envs     []*EnvReport
	Duration time.Duration
	// findings of the whole run: fleet loading, releases, sources, images; sorted.
	findings []Finding
}

// Findings returns every finding, sorted by environment, file, object and reason.
func (r *Report) Findings() []Finding { return slices.Clone(r.findings) }

// OK reports whether the run found nothing wrong.
func (r *Report) OK() bool { return len(r.findings) == 0 }

// OnlyUnreachable reports whether there are findings and all of them are
// unreachable sources or registries: the run says nothing about the fleet,
// only about the network.
func (r *Report) OnlyUnreachable() bool {
	if len(r.findings) == 0 {
		return false
	}
	for _, f := range r.findings {
		if !f.Unreachable {
			return false
		}
	}
	return true
}

// HasHelmReleases reports whether any environment checked has a HelmRelease.
func (r *Report) HasHelmReleases() bool {
	for _, e := range r.Envs {
		if len(e.Releases) > 0 {
			return true
		}
	}
	return false
}

// String renders the report: per environment each release with its chart,
// source and verdict, then the images with ✓/✗, then every finding as a
// FAIL line and a summary with the total time.
func (r *Report) String() string {
	var b strings.Builder
	releases, images := 0, 0
	for _, e := range r.Envs {
		fmt.Fprintf(&b, "%s\n", e.Name)
		if len(e.Releases) == 0 {
			b.WriteString("  (no HelmReleases)\n")
		}
		for _, rel := range e.Releases {
			releases++
			chartName, version := rel.Chart, rel.Version
			if chartName == "" {
				chartName = "?"
			}
			if version == "" {
				version = "?"
			}
			verdict := "OK"
			if n := len(rel.Findings); n == 1 {
				verdict = "1 finding"
			} else if n > 1 {
				verdict = fmt.Sprintf("%d findings", n)
			}
			cached := ""
			if rel.Cached {
				cached = ", cached"
			}
			fmt.Fprintf(&b, "  %s → %s@%s (%s%s) → %s\n", rel.Object, chartName, version, rel.Source, cached, verdict)
			for _, f := range rel.Findings {
				fmt.Fprintf(&b, "      ✗ %s\n", f.Reason)
			}
			for _, n := range rel.Notes {
				fmt.Fprintf(&b, "      note: %s\n", n)
			}
		}
		if len(e.Images) > 0 {
			b.WriteString("  images:\n")
		}
		for _, img := range e.Images {
			images++
			switch {
			case img.Present && img.Known:
				fmt.Fprintf(&b, "    ✓ %s (known)\n", img.Ref)
			case img.Present:
				fmt.Fprintf(&b, "    ✓ %s\n", img.Ref)
			default:
				fmt.Fprintf(&b, "    ✗ %s: %s\n", img.Ref, img.Reason)
			}
		}
	}
	for _, f := range r.findings {
		fmt.Fprintf(&b, "FAIL %s\n", f)
	}
	unreachable := 0
	for _, f := range r.findings {
		if f.Unreachable {
			unreachable++
		}
	}
	extra := ""
	if unreachable > 0 {
		extra = fmt.Sprintf(" (%d unreachable)", unreachable)
	}
	fmt.Fprintf(&b, "preflighted %d environments, %d HelmReleases, %d images in %.2fs: %d findings%s\n",
		len(r.Envs), releases, images, r.Duration.Seconds(), len(r.findings), extra)
	return b.String()
}

// Run pre-flights every HelmRelease of the selected environments. The error
// is only for a run that could not happen (bad options, unreadable fleet);
// problems of the fleet and unreachable sources are findings in the Report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	start := time.Now()
	if opts.FleetDir == "" {
		return nil, errors.New("preflight: Options.FleetDir is required")
	}
	opts, kubeVersion, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	fleet, err := validate.Load(ctx, opts.FleetDir)
	if err != nil {
		return nil, fmt.Errorf("preflight: %w", err)
	}
	return runFleet(ctx, fleet, opts, kubeVersion, start)
}

// RunFleet is Run on a fleet the caller has loaded already with
// validate.Load, so that a caller that needs the fleet's objects too builds
// it once. Options.FleetDir defaults to fleet.Dir; charts of the fleet's own
// GitRepository are read from it.
func RunFleet(ctx context.Context, fleet *validate.Fleet, opts Options) (*Report, error) {
	start := time.Now()
	if fleet == nil {
		return nil, errors.New("preflight: RunFleet needs a loaded fleet")
	}
	if opts.FleetDir == "" {
		opts.FleetDir = fleet.Dir
	}
	opts, kubeVersion, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	return runFleet(ctx, fleet, opts, kubeVersion, start)
}

// withDefaults checks the options and fills in the zero ones.
func (opts Options) withDefaults() (Options, *common.KubeVersion, error) {
	if opts.KubeVersion == "" {
		return opts, nil, errors.New("preflight: Options.KubeVersion is required (see KitKubeVersion)")
	}
	kubeVersion, err := common.ParseKubeVersion(opts.KubeVersion)
	if err != nil {
		return opts, nil, fmt.Errorf("preflight: Options.KubeVersion %q: %w", opts.KubeVersion, err)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 15 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Minute
	}
	if opts.CacheDir == "" {
		if opts.CacheDir, err = DefaultCacheDir(); err != nil {
			return opts, nil, err
		}
	}
	return opts, kubeVersion, nil
}

// runFleet pre-flights a loaded fleet within ctx, which carries the run's
// bound.
func runFleet(ctx context.Context, fleet *validate.Fleet, opts Options, kubeVersion *common.KubeVersion, start time.Time) (*Report, error) {
	envs, err := selectEnvs(fleet, opts.Envs)
	if err != nil {
		return nil, err
	}
	r := newRunner(ctx, opts, kubeVersion)
	defer r.close()
	report := &Report{FleetDir: opts.FleetDir}
	for _, f := range fleet.Findings {
		if len(opts.Envs) == 0 || slices.Contains(opts.Envs, f.Env) {
			report.findings = append(report.findings, Finding{Env: f.Env, File: f.File, Object: f.Object,
				Reason: "fleet does not build (see make validate): " + f.Reason})
		}
	}
	for _, env := range envs {
		er, findings := r.env(ctx, env)
		report.Envs = append(report.Envs, er)
		report.findings = append(report.findings, findings...)
	}
	if err := ctx.Err(); err != nil {
		report.findings = append(report.findings, Finding{Reason: fmt.Sprintf("pre-flight did not finish within %s: %v", opts.Timeout, err), Unreachable: true})
	}
	report.findings = sortFindings(report.findings)
	report.Duration = time.Since(start)
	if opts.Out != nil {
		if _, err := io.WriteString(opts.Out, report.String()); err != nil {
			return report, fmt.Errorf("preflight: writing the report: %w", err)
		}
	}
	return report, nil
}

// DefaultCacheDir is ${XDG_CACHE_HOME:-~/.cache}/flux-fleet/preflight.
func DefaultCacheDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("preflight: finding the cache directory: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "flux-fleet", "preflight"), nil
}

func selectEnvs(fleet *validate.Fleet, names []string) ([]*validate.Env, error) {
	if len(names) == 0 {
		return fleet.Envs, nil
	}
	var out []*validate.Env
	for _, n := range names {
		e := fleet.Env(n)
		if e == nil {
			var have []string
			for _, e := range fleet.Envs {
				have = append(have, e.Name)
			}
			return nil, fmt.Errorf("preflight: environment %q is not in %s/clusters (have: %s)", n, fleet.Dir, strings.Join(have, ", "))
		}
		out = append(out, e)
	}
	return out, nil
}

// env pre-flights the HelmReleases of one environment, a few at a time.
func (r *runner) env(ctx context.Context, env *validate.Env) (*EnvReport, []Finding) {
	er := &EnvReport{Name: env.Name}
	for _, o := range env.Objects {
		if _, ok := o.Typed.(*helmv2.HelmRelease); ok {
			er.Releases = append(er.Releases, &Release{Object: o.Ref, File: o.File})
		}
	}
	var (
		mu       sync.Mutex
		findings []Finding
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, rel := range er.Releases {
		g.Go(func() error {
			fs := r.release(gctx, env, env.Object(rel.Object), rel)
			mu.Lock()
			findings = append(findings, fs...)
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through findings, never an error
	if r.opts.SkipImages {
		return er, findings
	}
	er.Images = r.checkImages(ctx, env.Name, er.Releases)
	for _, img := range er.Images {
		if img.Present {
			continue
		}
		for _, user := range img.UsedBy {
			for _, rel := range er.Releases {
				if rel.Object != user {
					continue
				}
				f := Finding{Env: env.Name, File: rel.File, Object: rel.Object,
					Reason: fmt.Sprintf("image %s: %s", img.Ref, img.Reason), Unreachable: img.Unreachable}
				rel.Findings = append(rel.Findings, f)
				findings = append(findings, f)
			}
		}
	}
	return er, findings
}

func sortFindings(fs []Finding) []Finding {
	slices.SortStableFunc(fs, func(a, b Finding) int { return a.base().Compare(b.base()) })
	// Two releases sharing a broken source report it once.
	return slices.Compact(fs)
}
