package renderdiff

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// compareEnv compares one environment's two sides: objects by reference,
// grouped under the Kustomization or HelmRelease that applies them (the
// head's, or the base's for a removed object), releases by chart and
// values; then the hazards.
func compareEnv(name string, base, head *envObjects) *EnvDiff {
	owners := map[ref]*OwnerDiff{}
	ownerDiff := func(r ref) *OwnerDiff {
		if owners[r] == nil {
			owners[r] = &OwnerDiff{Owner: r.String()}
		}
		return owners[r]
	}
	for _, r := range sortedRefs(base.objects, head.objects) {
		b, h := base.objects[r], head.objects[r]
		change := objectChange(b, h)
		if change == nil {
			continue
		}
		owner := ownerOf(b, h)
		od := ownerDiff(owner)
		od.Objects = append(od.Objects, *change)
	}
	for _, r := range sortedRefs(base.releases, head.releases) {
		if rc := releaseChange(r, base.releases[r], head.releases[r]); rc != nil {
			ownerDiff(r).Release = rc
		}
	}
	diff := &EnvDiff{Name: name, Hazards: hazards(name, base, head), Owners: []*OwnerDiff{}}
	for _, r := range slices.SortedFunc(maps.Keys(owners), compareOwners) {
		diff.Owners = append(diff.Owners, owners[r])
	}
	return diff
}

// objectChange says how an object changed from b to h (either may be
// nil); nil when it did not.
func objectChange(b, h *object) *ObjectChange {
	switch {
	case b == nil && h == nil:
		return nil
	case b == nil:
		return &ObjectChange{Object: h.ref.String(), Change: Added, Diff: unifiedDiff("/dev/null", "head/"+h.ref.String(), "", h.yaml)}
	case h == nil:
		return &ObjectChange{Object: b.ref.String(), Change: Removed, Diff: unifiedDiff("base/"+b.ref.String(), "/dev/null", b.yaml, "")}
	case b.yaml == h.yaml && b.owner == h.owner:
		return nil
	}
	c := &ObjectChange{Object: h.ref.String(), Change: Changed,
		Diff: unifiedDiff("base/"+b.ref.String(), "head/"+h.ref.String(), b.yaml, h.yaml)}
	if b.owner != h.owner {
		c.MovedFrom = b.owner.String()
	}
	return c
}

// ownerOf is the head's owner of an object, or the base's when removed.
func ownerOf(b, h *object) ref {
	if h != nil {
		return h.owner
	}
	return b.owner
}

// releaseChange compares a HelmRelease's chart, source and values; nil
// when all are equal.
func releaseChange(r ref, b, h *release) *ReleaseChange {
	rc := &ReleaseChange{}
	var baseValues, headValues string
	if b != nil {
		rc.BaseChart, rc.BaseSource, baseValues = b.chart+"@"+b.version, b.source, b.values
	}
	if h != nil {
		rc.HeadChart, rc.HeadSource, headValues = h.chart+"@"+h.version, h.source, h.values
	}
	rc.ValuesDiff = unifiedDiff("base/"+r.String()+" values", "head/"+r.String()+" values", baseValues, headValues)
	if rc.BaseChart == rc.HeadChart && rc.BaseSource == rc.HeadSource && rc.ValuesDiff == "" {
		return nil
	}
	return rc
}

// sortedRefs lists the keys of both maps, sorted by kind, namespace, name.
func sortedRefs[V any](a, b map[ref]V) []ref {
	set := map[ref]bool{}
	for r := range a {
		set[r] = true
	}
	for r := range b {
		set[r] = true
	}
	return slices.SortedFunc(maps.Keys(set), compareRefs)
}

func compareRefs(a, b ref) int {
	return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// compareOwners orders Kustomizations before HelmReleases, the order Flux
// reconciles them in: a Kustomization applies the HelmRelease first.
func compareOwners(a, b ref) int {
	rank := func(r ref) int {
		if r.Kind == "Kustomization" {
			return 0
		}
		return 1
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), compareRefs(a, b))
}
