package validate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
)

// Options selects what Validate and Load check beyond the build itself.
type Options struct {
	// FluxVersions are the Flux releases (flux2 versions such as "v2.7.3")
	// the fleet must be accepted by, each checked in turn: the API versions
	// they serve, the fields those versions have, strict post-build
	// substitution. Empty means the release in go.mod, the one the harness
	// installs (fluxinstall.FluxVersion).
	FluxVersions []string
}

// fluxTarget is one Flux release to check against, as the caller named it.
type fluxTarget struct {
	version string
	release *fluxRelease
}

// targets resolves FluxVersions before anything is built, so that a
// version the table does not know fails at once.
func (o Options) targets() ([]fluxTarget, error) {
	versions := o.FluxVersions
	if len(versions) == 0 {
		v, err := fluxinstall.FluxVersion()
		if err != nil {
			return nil, fmt.Errorf("finding the Flux version to validate against: %w", err)
		}
		versions = []string{v}
	}
	var out []fluxTarget
	for _, v := range versions {
		if slices.ContainsFunc(out, func(t fluxTarget) bool { return t.version == v }) {
			continue
		}
		rel, err := releaseFor(v)
		if err != nil {
			return nil, err
		}
		out = append(out, fluxTarget{version: v, release: rel})
	}
	return out, nil
}

// checkTarget judges every object of env by what one Flux release accepts.
func checkTarget(env *Env, t fluxTarget) []Finding {
	var findings []Finding
	add := func(file string, ref ObjectRef, format string, args ...any) {
		findings = append(findings, Finding{Env: env.Name, File: file, Object: ref, Reason: fmt.Sprintf(format, args...)})
	}
	for _, o := range env.Objects {
		if o.Implicit {
			continue
		}
		if t.release.StrictSubstitution {
			for _, name := range o.unsetVars {
				add(o.File, o.Owner, "${%s} in %s has no value and no default: Flux %s substitutes strictly "+
					"(kustomize-controller %s, feature gate StrictPostBuildSubstitutions on by default), so the Kustomization fails to build; "+
					"set it in spec.postBuild.substitute (or a substituteFrom ConfigMap/Secret of the fleet) or write ${%s:=default}",
					name, o.Ref, t.version, t.release.Controllers["kustomize-controller"], name)
			}
		}
		group, version := splitAPIVersion(o.APIVersion)
		if !t.release.knowsGroup(group) {
			continue
		}
		kind := t.release.kind(group, o.Ref.Kind)
		if kind == nil {
			add(o.File, o.Ref, "Flux %s serves no kind %s in %s (its kinds there: %s)",
				t.version, o.Ref.Kind, group, strings.Join(t.release.kindsOf(group), ", "))
			continue
		}
		// A moved field is judged at the version the object ends up at: its
		// own where still served, else the one it has to move to.
		at := version
		if !slices.Contains(kind.Served, version) {
			add(o.File, o.Ref, "Flux %s does not serve %s %s (%s serves %s): move it to %s/%s, as `flux migrate -f . --version=%s` would",
				t.version, o.APIVersion, o.Ref.Kind, kind.Controller+" "+t.release.Controllers[kind.Controller],
				strings.Join(kind.Served, ", "), group, kind.Latest, t.release.Minor)
			at = kind.Latest
		}
		for _, m := range movedFields {
			if m.Group != group || m.Kind != o.Ref.Kind || slices.Contains(m.In, at) {
				continue
			}
			if hasPath(o.Raw, strings.Split(m.Path, ".")) {
				add(o.File, o.Ref, "%s is gone from %s %s %s (only %s had it; Flux %s serves %s): %s",
					m.Path, group, o.Ref.Kind, at, strings.Join(m.In, ", "), t.version, strings.Join(kind.Served, ", "), m.Fix)
			}
		}
	}
	return findings
}

func (r *fluxRelease) kindsOf(group string) []string {
	var kinds []string
	for _, k := range r.Kinds {
		if k.Group == group {
			kinds = append(kinds, k.Kind)
		}
	}
	return kinds
}

// hasPath reports whether the field path is set in obj; a step ending in
// "[]" looks into every item of that list.
func hasPath(obj any, path []string) bool {
	if len(path) == 0 {
		return true
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return false
	}
	step, each := strings.CutSuffix(path[0], "[]")
	v, ok := m[step]
	if !ok {
		return false
	}
	if !each {
		return hasPath(v, path[1:])
	}
	items, _ := v.([]any)
	return slices.ContainsFunc(items, func(item any) bool { return hasPath(item, path[1:]) })
}
