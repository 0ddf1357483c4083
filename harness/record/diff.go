package record

import (
	"fmt"
	"slices"
	"strings"
)

// Changes is what differs between two records of one environment: what an
// upgrade changed, or what changed since the last green night.
type Changes struct {
	Env      string
	From, To Fleet
	// Kustomizations has one entry per Kustomization of either record,
	// changed or not.
	Kustomizations []InventoryChange
	// HelmReleases has one entry per HelmRelease of either record, changed
	// or not, so every chart version reads from → to.
	HelmReleases []ReleaseChange
	// Images lists only the containers whose image or running digests differ.
	Images []ImageChange
}

// InventoryChange is what one Kustomization applied differently: objects
// added to and removed from its inventory, objects in both whose declared
// content changed, and post-build substitutions that changed.
type InventoryChange struct {
	Kustomization           string
	Added, Removed, Changed []string
	Substitutions           []ValueChange
}

// Unchanged reports whether the Kustomization applied the same objects with
// the same substitutions.
func (c InventoryChange) Unchanged() bool {
	return len(c.Added)+len(c.Removed)+len(c.Changed)+len(c.Substitutions) == 0
}

// ValueChange is one value that differs, by its key (a variable name, or a
// path into a HelmRelease's values) and its digest — the value itself only
// when both records hold raw values. From is empty for a key only the later
// record has, To for one only the earlier has.
type ValueChange struct {
	Key      string
	From, To string
}

func (v ValueChange) String() string {
	switch {
	case v.From == "":
		return "+ " + v.Key + " " + v.To
	case v.To == "":
		return "- " + v.Key + " (was " + v.From + ")"
	default:
		return "~ " + v.Key + " " + v.From + " → " + v.To
	}
}

// ReleaseChange is one HelmRelease in both records; From or To is nil when
// the release exists on one side only. Values lists the values that differ
// when the release is in both.
type ReleaseChange struct {
	Release  string
	From, To *HelmRelease
	Values   []ValueChange
}

// Unchanged reports whether the release runs the same chart with the same
// values.
func (c ReleaseChange) Unchanged() bool {
	return c.From != nil && c.To != nil && c.From.Chart == c.To.Chart && c.From.Version == c.To.Version &&
		c.From.ChartDigest == c.To.ChartDigest && c.From.ConfigDigest == c.To.ConfigDigest && len(c.Values) == 0
}

// ImageChange is one container whose image or running digest differs; From
// or To is nil when the container exists on one side only.
type ImageChange struct {
	Workload  string
	Container string
	From, To  *Container
}

// Diff compares two records of one environment, a before b.
func Diff(a, b *Record) Changes {
	c := Changes{Env: b.Env, From: a.Fleet, To: b.Fleet}
	values := func(from, to map[string]string) []ValueChange { return diffValues(from, a.RawValues, to, b.RawValues) }

	ka, kb := index(a.Kustomizations, func(k Kustomization) string { return k.Ref }), index(b.Kustomizations, func(k Kustomization) string { return k.Ref })
	for _, ref := range unionKeys(ka, kb) {
		oa, ob := map[string]string{}, map[string]string{}
		if k, ok := ka[ref]; ok {
			for _, o := range k.Objects {
				oa[o.Ref] = o.Digest
			}
		}
		if k, ok := kb[ref]; ok {
			for _, o := range k.Objects {
				ob[o.Ref] = o.Digest
			}
		}
		ch := InventoryChange{Kustomization: ref}
		if from, to, ok := both(ka, kb, ref); ok {
			ch.Substitutions = values(from.Substitute, to.Substitute)
		}
		for _, obj := range unionKeys(oa, ob) {
			da, inA := oa[obj]
			db, inB := ob[obj]
			switch {
			case !inA:
				ch.Added = append(ch.Added, obj)
			case !inB:
				ch.Removed = append(ch.Removed, obj)
			case da != db:
				ch.Changed = append(ch.Changed, obj)
			}
		}
		c.Kustomizations = append(c.Kustomizations, ch)
	}

	ha, hb := index(a.HelmReleases, func(h HelmRelease) string { return h.Ref }), index(b.HelmReleases, func(h HelmRelease) string { return h.Ref })
	for _, ref := range unionKeys(ha, hb) {
		ch := ReleaseChange{Release: ref}
		if h, ok := ha[ref]; ok {
			ch.From = &h
		}
		if h, ok := hb[ref]; ok {
			ch.To = &h
		}
		if ch.From != nil && ch.To != nil {
			ch.Values = values(ch.From.Values, ch.To.Values)
		}
		c.HelmReleases = append(c.HelmReleases, ch)
	}

	wa, wb := index(a.Workloads, func(w Workload) string { return w.Ref }), index(b.Workloads, func(w Workload) string { return w.Ref })
	for _, ref := range unionKeys(wa, wb) {
		ca := index(wa[ref].Containers, func(c Container) string { return c.Name })
		cb := index(wb[ref].Containers, func(c Container) string { return c.Name })
		for _, name := range unionKeys(ca, cb) {
			from, inA := ca[name]
			to, inB := cb[name]
			if inA && inB && from.Image == to.Image && slices.Equal(from.ImageIDs, to.ImageIDs) {
				continue
			}
			ch := ImageChange{Workload: ref, Container: name}
			if inA {
				ch.From = &from
			}
			if inB {
				ch.To = &to
			}
			c.Images = append(c.Images, ch)
		}
	}
	return c
}

func both[T any](a, b map[string]T, key string) (T, T, bool) {
	x, inA := a[key]
	y, inB := b[key]
	return x, y, inA && inB
}

// diffValues compares two recordings of one set of values (a HelmRelease's
// values, a Kustomization's substitutions), from before to. A side recorded
// before values were recorded (nil) compares as unchanged. When only one
// side holds raw values they are compared, and shown, by digest.
func diffValues(from map[string]string, fromRaw bool, to map[string]string, toRaw bool) []ValueChange {
	if from == nil || to == nil {
		return nil
	}
	show := func(v string, raw bool) string {
		if raw && !(fromRaw && toRaw) {
			return digestOfJSON([]byte(v))
		}
		return v
	}
	var out []ValueChange
	for _, k := range unionKeys(from, to) {
		f, inF := from[k]
		t, inT := to[k]
		ch := ValueChange{Key: k}
		if inF {
			ch.From = show(f, fromRaw)
		}
		if inT {
			ch.To = show(t, toRaw)
		}
		if ch.From != ch.To {
			out = append(out, ch)
		}
	}
	return out
}

// Empty reports whether nothing the fleet runs changed (whatever the
// revisions served).
func (c Changes) Empty() bool {
	for _, k := range c.Kustomizations {
		if !k.Unchanged() {
			return false
		}
	}
	for _, h := range c.HelmReleases {
		if !h.Unchanged() {
			return false
		}
	}
	return len(c.Images) == 0
}

// String renders the changes for the log, one line per item:
//
//	fleet: commit 1a2b3c4d5e6f (HEAD~1) → working tree (on 1a2b3c4d5e6f)
//	Kustomization/flux-system/apps: 1 changed, 1 removed, 1 substitution changed
//	  ~ Deployment/apps/fleet-app
//	  - Service/apps/fleet-app
//	  ~ substitute APP_REPLICAS sha256:… → sha256:…
//	HelmRelease/podinfo/podinfo: chart podinfo 6.9.2 → 6.9.3 (sha256:… → sha256:…, values changed)
//	  ~ values ingress.hosts[0].host sha256:… → sha256:…
//	Deployment/podinfo/podinfo container podinfo: image ghcr.io/…:6.9.2 → ghcr.io/…:6.9.3
func (c Changes) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fleet: %s → %s\n", describeFleet(c.From), describeFleet(c.To))
	for _, k := range c.Kustomizations {
		if k.Unchanged() {
			fmt.Fprintf(&b, "%s: unchanged\n", k.Kustomization)
			continue
		}
		var counts []string
		for _, n := range []struct {
			n    int
			what string
		}{{len(k.Changed), "changed"}, {len(k.Added), "added"}, {len(k.Removed), "removed"},
			{len(k.Substitutions), plural(len(k.Substitutions), "substitution") + " changed"}} {
			if n.n > 0 {
				counts = append(counts, fmt.Sprintf("%d %s", n.n, n.what))
			}
		}
		fmt.Fprintf(&b, "%s: %s\n", k.Kustomization, strings.Join(counts, ", "))
		for _, o := range k.Changed {
			fmt.Fprintf(&b, "  ~ %s\n", o)
		}
		for _, o := range k.Added {
			fmt.Fprintf(&b, "  + %s\n", o)
		}
		for _, o := range k.Removed {
			fmt.Fprintf(&b, "  - %s\n", o)
		}
		for _, v := range k.Substitutions {
			fmt.Fprintf(&b, "  %s\n", prefixKey(v, "substitute "))
		}
	}
	for _, h := range c.HelmReleases {
		fmt.Fprintf(&b, "%s: %s\n", h.Release, h.describe())
		for _, v := range h.Values {
			fmt.Fprintf(&b, "  %s\n", prefixKey(v, "values "))
		}
	}
	for _, im := range c.Images {
		fmt.Fprintf(&b, "%s container %s: %s\n", im.Workload, im.Container, im.describe())
	}
	if c.Empty() {
		b.WriteString("nothing the fleet runs changed\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (h ReleaseChange) describe() string {
	switch {
	case h.From == nil:
		return "installed: " + chartOf(h.To)
	case h.To == nil:
		return "removed (was " + chartOf(h.From) + ")"
	}
	from, to := h.From, h.To
	s := fmt.Sprintf("chart %s %s → %s", nonEmpty(to.Chart, from.Chart), nonEmpty(from.Version, "?"), nonEmpty(to.Version, "?"))
	if from.Chart != to.Chart && from.Chart != "" {
		s = fmt.Sprintf("chart %s %s → %s %s", from.Chart, from.Version, to.Chart, to.Version)
	}
	var notes []string
	if from.ChartDigest != to.ChartDigest {
		notes = append(notes, short(from.ChartDigest)+" → "+short(to.ChartDigest))
	}
	if from.ConfigDigest != to.ConfigDigest || len(h.Values) > 0 {
		notes = append(notes, "values changed")
	}
	if h.Unchanged() {
		notes = append(notes, "unchanged")
	}
	if to.Status != "" && to.Status != "deployed" {
		notes = append(notes, "release "+to.Status)
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

// prefixKey names what a value belongs to: "~ values auth.password …".
func prefixKey(v ValueChange, what string) string {
	v.Key = what + v.Key
	return v.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func chartOf(h *HelmRelease) string {
	return fmt.Sprintf("chart %s %s", nonEmpty(h.Chart, "?"), nonEmpty(h.Version, "?"))
}

func (im ImageChange) describe() string {
	switch {
	case im.From == nil:
		return "added, image " + imageOf(im.To)
	case im.To == nil:
		return "removed (was " + imageOf(im.From) + ")"
	case im.From.Image != im.To.Image:
		return "image " + imageOf(im.From) + " → " + imageOf(im.To)
	default:
		return "image " + im.To.Image + ", running " + ids(im.From.ImageIDs) + " → " + ids(im.To.ImageIDs)
	}
}

func imageOf(c *Container) string {
	if len(c.ImageIDs) == 0 {
		return c.Image
	}
	return c.Image + " (" + ids(c.ImageIDs) + ")"
}

func ids(list []string) string {
	if len(list) == 0 {
		return "no running container"
	}
	var out []string
	for _, id := range list {
		out = append(out, short(id))
	}
	return strings.Join(out, ", ")
}

// short keeps a digest readable: "sha256:" and its first 12 hex digits.
func short(digest string) string {
	if digest == "" {
		return "none"
	}
	if i := strings.LastIndex(digest, "sha256:"); i >= 0 && len(digest) > i+7+12 {
		return digest[i : i+7+12]
	}
	return digest
}

func describeFleet(f Fleet) string {
	c := f.Commit[:min(len(f.Commit), 12)]
	switch {
	case f.WorkingTree && c != "":
		return "working tree (on " + c + ")"
	case f.WorkingTree:
		return "working tree"
	case f.Ref != "" && f.Ref != f.Commit:
		return "commit " + c + " (" + f.Ref + ")"
	case c != "":
		return "commit " + c
	default:
		return "served " + f.Served[:min(len(f.Served), 12)]
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func index[T any](items []T, key func(T) string) map[string]T {
	m := make(map[string]T, len(items))
	for _, it := range items {
		m[key(it)] = it
	}
	return m
}

func unionKeys[A, B any](a map[string]A, b map[string]B) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
