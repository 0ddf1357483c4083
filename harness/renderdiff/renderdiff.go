// Package renderdiff answers "what will this change do to the clusters?"
// before any cluster exists: it renders two trees of a fleet (a base and a
// head revision) the way Flux would apply them — every object each Flux
// Kustomization applies (harness/validate) and every object each
// HelmRelease installs (harness/preflight's resolve and render) — and
// compares them per environment, object by object. It also predicts the
// upgrade hazards the API server or Flux would only show on a live cluster:
// immutable fields, objects pruned while still in use, chart major versions
// and removed CRDs.
//
// Fields that differ on every render or are set by the cluster (status,
// creationTimestamp, resourceVersion, uid, generation, managedFields,
// selfLink: OmittedFields) are left out of the comparison. Secret data is
// never printed: each key shows a sha256 digest of its value.
package renderdiff

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
)

// Tree is one side of the comparison: a fleet directory and the chart
// directories the harness's chart server serves for it.
type Tree struct {
	// Label names the side in the output, e.g. "origin/main (commit 1a2b3c4d5e6f)"
	// or "working tree".
	Label string
	// FleetDir holds clusters/<env>.
	FleetDir string
	// ChartDirs are served on loopback by harness/chartserver, in place of
	// the in-cluster chart server the fixture fleets name; directories that
	// do not exist are skipped (a chart added by the head).
	ChartDirs []string
}

// Options say what to render and within which bounds.
type Options struct {
	// Envs restricts the comparison to these environments; empty means all
	// of either side.
	Envs []string
	// KubeVersion is the Kubernetes version charts are rendered for.
	KubeVersion string
	// CacheDir keeps chart archives by digest (preflight.Options.CacheDir).
	CacheDir string
	// RequestTimeout bounds each network request and Timeout each side's
	// render; zero means the pre-flight's defaults.
	RequestTimeout, Timeout time.Duration
	// TempDir holds the chart servers' files; empty: the system's.
	TempDir string
}

// Report is the outcome of Compare.
type Report struct {
	Base string     `json:"base"`
	Head string     `json:"head"`
	Envs []*EnvDiff `json:"environments"`
	// OmittedFields are the fields left out of every comparison.
	OmittedFields []string `json:"omittedFields"`
	// Notes are the pre-flight's findings on releases that did render
	// (e.g. values keys a chart does not define), per side.
	Notes []string `json:"notes,omitempty"`
	// Duration is how long rendering and comparing took.
	Duration time.Duration `json:"-"`
}

// EnvDiff is the comparison of one environment.
type EnvDiff struct {
	Name    string       `json:"name"`
	Hazards []Hazard     `json:"hazards"`
	Owners  []*OwnerDiff `json:"changes"`
}

// OwnerDiff is what changes among the objects one Flux Kustomization
// applies or one HelmRelease installs.
type OwnerDiff struct {
	// Owner is "Kustomization/<ns>/<name>" or "HelmRelease/<ns>/<name>".
	Owner   string         `json:"owner"`
	Release *ReleaseChange `json:"release,omitempty"`
	Objects []ObjectChange `json:"objects"`
}

// ReleaseChange is a HelmRelease's chart and values on each side.
type ReleaseChange struct {
	// BaseChart and HeadChart are "<chart>@<version>", empty on the side
	// without the release.
	BaseChart  string `json:"baseChart"`
	HeadChart  string `json:"headChart"`
	BaseSource string `json:"baseSource"`
	HeadSource string `json:"headSource"`
	// ValuesDiff is a unified diff of spec.values (after post-build
	// substitution); empty when they are equal.
	ValuesDiff string `json:"valuesDiff,omitempty"`
}

// The kinds of ObjectChange.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
)

// ObjectChange is one object added, removed or changed.
type ObjectChange struct {
	// Object is "Kind/<ns>/<name>" (or "Kind/<name>" when cluster-scoped).
	Object string `json:"object"`
	Change string `json:"change"`
	// MovedFrom names the base's owner when another one applies the object now.
	MovedFrom string `json:"movedFrom,omitempty"`
	// Diff is a unified diff of the object's YAML, base to head.
	Diff string `json:"diff"`
}

// Hazard is an upgrade problem predicted offline, naming both sides.
type Hazard struct {
	Env string `json:"env"`
	// Owner applies the object: at the head, or at the base when removed.
	Owner  string `json:"owner"`
	Object string `json:"object"`
	// Field is the field at fault, when there is one.
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
	Base   string `json:"base"`
	Head   string `json:"head"`
}

// String renders the hazard on one line: env: Object (owner): field: reason (base: …; head: …).
func (h Hazard) String() string {
	field := ""
	if h.Field != "" {
		field = h.Field + ": "
	}
	return fmt.Sprintf("%s: %s (%s): %s%s (base: %s; head: %s)", h.Env, h.Object, h.Owner, field, h.Reason, h.Base, h.Head)
}

// Changed reports whether anything differs between the two sides.
func (r *Report) Changed() bool {
	for _, e := range r.Envs {
		if len(e.Owners) > 0 {
			return true
		}
	}
	return false
}

// Hazards lists every environment's hazards.
func (r *Report) Hazards() []Hazard {
	var out []Hazard
	for _, e := range r.Envs {
		out = append(out, e.Hazards...)
	}
	return out
}

// Compare renders both trees, side by side, and compares them. The error
// says why a side could not be rendered completely (a fleet that does not
// build, a chart source that cannot be reached, a chart that does not
// render), naming the side, the environment and the object.
func Compare(ctx context.Context, base, head Tree, opts Options) (*Report, error) {
	start := time.Now()
	var sides [2]*rendered
	g, gctx := errgroup.WithContext(ctx)
	for i, tree := range []Tree{base, head} {
		g.Go(func() error {
			s, err := render(gctx, tree, opts)
			sides[i] = s
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	names := envNames(sides[0], sides[1], opts.Envs)
	for _, want := range opts.Envs {
		if !slices.Contains(names, want) {
			return nil, fmt.Errorf("environment %q is in neither %s/clusters (%s) nor %s/clusters (%s)",
				want, base.FleetDir, base.Label, head.FleetDir, head.Label)
		}
	}
	report := &Report{Base: base.Label, Head: head.Label, OmittedFields: OmittedFields()}
	for _, name := range names {
		report.Envs = append(report.Envs, compareEnv(name, sides[0].env(name), sides[1].env(name)))
	}
	report.Notes = append(sides[0].notes, sides[1].notes...)
	report.Duration = time.Since(start)
	return report, nil
}

// envNames lists the environments of either side, sorted, restricted to
// the selection.
func envNames(base, head *rendered, selected []string) []string {
	var names []string
	for _, s := range []*rendered{base, head} {
		for name := range s.envs {
			if !slices.Contains(names, name) && (len(selected) == 0 || slices.Contains(selected, name)) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}
