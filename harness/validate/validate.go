// Package validate is the offline tier of the fleet checks: without Docker or
// network it builds every clusters/<env> directory the way kustomize-controller
// would, follows the Flux Kustomizations it finds, decodes every Flux object
// strictly into its typed API, and checks the graph between them (sources,
// dependencies, namespaces, patch targets). A fleet that passes here can still
// fail on a cluster (images, charts, readiness), but not for a reason that a
// text editor could have shown.
package validate

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// ObjectRef names a Kubernetes object inside one environment (Group and
// Version stay empty here: kinds are unique within a fleet's files).
type ObjectRef = fluxobj.ObjectRef

// Finding is one problem found in the fleet.
type Finding struct {
	// Env is the clusters/<env> directory name the problem shows in.
	Env string
	// File is the file responsible, relative to the fleet directory (slash separated).
	File string
	// Object is the object at fault; zero when the problem is not tied to one.
	Object ObjectRef
	// Reason says what is wrong, in words a fleet author can act on.
	Reason string
}

func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Env)
	b.WriteString(": ")
	if f.File != "" {
		b.WriteString(f.File)
		b.WriteString(": ")
	}
	if f.Object.Kind != "" {
		b.WriteString(f.Object.String())
		b.WriteString(": ")
	}
	b.WriteString(f.Reason)
	return b.String()
}

// Object is one object the fleet applies to an environment.
type Object struct {
	Ref        ObjectRef
	APIVersion string
	// File the object comes from, relative to the fleet directory.
	File string
	// Owner is the Flux Kustomization that applies the object; zero for the
	// implicit bootstrap objects.
	Owner ObjectRef
	// Implicit marks the objects the bootstrap (or the harness) creates:
	// the flux-system Namespace, GitRepository and root Kustomization.
	Implicit bool
	// External marks a Flux Kustomization whose source is not this repository,
	// so it could not be built offline.
	External bool
	// Typed is the strictly decoded Flux API object, nil for other kinds.
	Typed any
	// Raw is the object as built (after post-build substitution).
	Raw map[string]any

	// unsetVars are the ${var} the object uses with neither a value from
	// its Kustomization's spec.postBuild nor a default; nil when the
	// variables come partly from objects the fleet does not hold.
	unsetVars []string
}

// Env is one clusters/<env> directory, built.
type Env struct {
	Name string
	// Dir is the cluster directory relative to the fleet directory.
	Dir string
	// Objects in the order they were found: root first, then each
	// Kustomization's build output in kustomize's order.
	Objects []*Object

	index    map[ObjectRef]*Object
	children map[ObjectRef][]ObjectRef
}

// Object returns the object with that reference, or nil.
func (e *Env) Object(ref ObjectRef) *Object { return e.index[ref] }

// Fleet is a loaded fleet: every environment built, with the problems found
// while building (bad YAML, bad paths, unknown fields...).
type Fleet struct {
	// Dir is the fleet directory as given.
	Dir  string
	Envs []*Env
	// Findings made while loading and by the Flux releases checked;
	// Validate adds the graph checks.
	Findings []Finding
	// FluxVersions are the Flux releases the fleet was checked against.
	FluxVersions []string
}

// Result is the outcome of Validate.
type Result struct {
	*Fleet
	// Findings of loading and of the graph checks, sorted.
	Findings []Finding
	Duration time.Duration
}

// OK reports whether the fleet has no findings.
func (r *Result) OK() bool { return len(r.Findings) == 0 }

// ObjectCount is the number of objects across all environments, implicit
// bootstrap objects excluded.
func (r *Result) ObjectCount() int {
	n := 0
	for _, e := range r.Envs {
		for _, o := range e.Objects {
			if !o.Implicit {
				n++
			}
		}
	}
	return n
}

// Env returns the named environment, or nil.
func (f *Fleet) Env(name string) *Env {
	for _, e := range f.Envs {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Load builds every environment under fleetDir/clusters and checks it
// against the Flux release in go.mod.
func Load(ctx context.Context, fleetDir string) (*Fleet, error) {
	return LoadWith(ctx, fleetDir, Options{})
}

// LoadWith builds every environment under fleetDir/clusters and checks it
// against each Flux release of opts.
func LoadWith(ctx context.Context, fleetDir string, opts Options) (*Fleet, error) {
	targets, err := opts.targets()
	if err != nil {
		return nil, fmt.Errorf("loading fleet %s: %w", fleetDir, err)
	}
	abs, err := filepath.Abs(fleetDir)
	if err != nil {
		return nil, fmt.Errorf("resolving fleet directory %s: %w", fleetDir, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("resolving fleet directory %s: %w", fleetDir, err)
	}
	entries, err := os.ReadDir(filepath.Join(abs, "clusters"))
	if err != nil {
		return nil, fmt.Errorf("listing environments of fleet %s: %w", fleetDir, err)
	}
	fleet := &Fleet{Dir: fleetDir}
	for _, t := range targets {
		fleet.FluxVersions = append(fleet.FluxVersions, t.version)
	}
	// A file whose aliases expand to millions of nodes would hold the build
	// for minutes and gigabytes, a named pipe for ever. Which environments
	// read it is only known by building them, so none is built while the
	// fleet holds one.
	unbuildable := findUnbuildableFiles(abs)
	envCount := 0
	for _, entry := range entries {
		if !isEnvDir(abs, entry) {
			continue
		}
		envCount++
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("loading fleet %s: %w", fleetDir, err)
		}
		if entry.Type()&os.ModeSymlink != 0 {
			fleet.Findings = append(fleet.Findings, Finding{Env: entry.Name(), File: "clusters/" + entry.Name(), Reason: linkedEnvReason})
			continue
		}
		if len(unbuildable) > 0 {
			for _, u := range unbuildable {
				fleet.Findings = append(fleet.Findings, Finding{Env: entry.Name(), File: u.file, Reason: u.reason})
			}
			continue
		}
		b := &builder{root: abs, env: &Env{
			Name:     entry.Name(),
			Dir:      "clusters/" + entry.Name(),
			index:    map[ObjectRef]*Object{},
			children: map[ObjectRef][]ObjectRef{},
		}}
		if err := b.buildEnv(ctx); err != nil {
			return nil, fmt.Errorf("building environment %s: %w", entry.Name(), err)
		}
		fleet.Envs = append(fleet.Envs, b.env)
		fleet.Findings = append(fleet.Findings, b.findings...)
		for _, t := range targets {
			fleet.Findings = append(fleet.Findings, checkTarget(b.env, t)...)
		}
	}
	if envCount == 0 {
		return nil, fmt.Errorf("fleet %s has no environment directory under clusters/", fleetDir)
	}
	return fleet, nil
}

// linkedEnvReason: source-controller leaves symbolic links out of the
// artifact it serves (fluxcd/pkg/artifact v0.18.0 storage/archive.go:
// "Ignore anything that is not a file or directories e.g. symlinks").
const linkedEnvReason = "is a symbolic link, which source-controller leaves out of the artifact it serves: " +
	"kustomize-controller would find no such path; make it a directory"

// isEnvDir reports whether a clusters/ entry is an environment: a directory,
// or a symbolic link to one, which the e2e harness would deploy, so that it
// is reported (linkedEnvReason) rather than skipped.
func isEnvDir(fleetDir string, entry os.DirEntry) bool {
	if entry.Type()&os.ModeSymlink == 0 {
		return entry.IsDir()
	}
	fi, err := os.Stat(filepath.Join(fleetDir, "clusters", entry.Name()))
	return err == nil && fi.IsDir()
}

// Validate loads the fleet, checks it against the Flux release in go.mod
// and checks the graph of every environment. An error means the fleet could
// not be examined at all; problems in the fleet are Findings.
func Validate(ctx context.Context, fleetDir string) (*Result, error) {
	return ValidateWith(ctx, fleetDir, Options{})
}

// ValidateWith is Validate against the Flux releases of opts.
func ValidateWith(ctx context.Context, fleetDir string, opts Options) (*Result, error) {
	start := time.Now()
	fleet, err := LoadWith(ctx, fleetDir, opts)
	if err != nil {
		return nil, err
	}
	findings := append([]Finding(nil), fleet.Findings...)
	for _, env := range fleet.Envs {
		findings = append(findings, checkEnv(env)...)
	}
	return &Result{Fleet: fleet, Findings: sortFindings(findings), Duration: time.Since(start)}, nil
}

// Compare orders findings by environment, file, object and reason, the
// order reports list them in.
func (f Finding) Compare(g Finding) int {
	if c := cmp.Or(strings.Compare(f.Env, g.Env), strings.Compare(f.File, g.File)); c != 0 {
		return c
	}
	switch {
	case f.Object.Less(g.Object):
		return -1
	case g.Object.Less(f.Object):
		return 1
	}
	return strings.Compare(f.Reason, g.Reason)
}

func sortFindings(fs []Finding) []Finding {
	slices.SortStableFunc(fs, Finding.Compare)
	// The same problem can be reached twice (e.g. a file built by two paths).
	return slices.Compact(fs)
}
