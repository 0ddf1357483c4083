package report

import (
	"fmt"
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/record"
)

// ChangeLines renders a record diff for the report, one line per item,
// unchanged objects counted rather than listed. Values and substitutions
// are named by key only, never by value or digest: a record made with raw
// values holds them in the clear, and the report is for everyone.
func ChangeLines(c record.Changes) []string {
	lines := []string{"fleet: " + describeFleet(c.From) + " → " + describeFleet(c.To)}
	unchanged := 0
	for _, k := range c.Kustomizations {
		if k.Unchanged() {
			unchanged++
			continue
		}
		lines = append(lines, inventoryLines(k)...)
	}
	for _, h := range c.HelmReleases {
		if h.Unchanged() {
			unchanged++
			continue
		}
		lines = append(lines, h.Release+": "+describeRelease(h))
		lines = append(lines, valueLines("values", h.Values)...)
	}
	for _, im := range c.Images {
		lines = append(lines, fmt.Sprintf("%s container %s: %s", im.Workload, im.Container, describeImage(im)))
	}
	if c.Empty() {
		lines = append(lines, "nothing the fleet runs changed")
	} else if unchanged > 0 {
		lines = append(lines, fmt.Sprintf("%d more Kustomizations and HelmReleases unchanged", unchanged))
	}
	return lines
}

func inventoryLines(k record.InventoryChange) []string {
	var counts []string
	for _, n := range []struct {
		n    int
		what string
	}{{len(k.Changed), "changed"}, {len(k.Added), "added"}, {len(k.Removed), "removed"}, {len(k.Substitutions), "substitutions changed"}} {
		if n.n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n.n, n.what))
		}
	}
	lines := []string{k.Kustomization + ": " + strings.Join(counts, ", ")}
	for _, set := range []struct {
		mark string
		refs []string
	}{{"~", k.Changed}, {"+", k.Added}, {"-", k.Removed}} {
		for _, ref := range set.refs {
			lines = append(lines, "  "+set.mark+" "+ref)
		}
	}
	return append(lines, valueLines("substitute", k.Substitutions)...)
}

// valueLines names each changed value by its key; whether a side is empty
// tells added from removed, and nothing of the value is kept.
func valueLines(what string, values []record.ValueChange) []string {
	var lines []string
	for _, v := range values {
		switch {
		case v.From == "":
			lines = append(lines, "  + "+what+" "+v.Key+" added")
		case v.To == "":
			lines = append(lines, "  - "+what+" "+v.Key+" removed")
		default:
			lines = append(lines, "  ~ "+what+" "+v.Key+" changed")
		}
	}
	return lines
}

func describeRelease(h record.ReleaseChange) string {
	chart := func(r *record.HelmRelease) string { return "chart " + orUnknown(r.Chart) + " " + orUnknown(r.Version) }
	switch {
	case h.From == nil:
		return "installed, " + chart(h.To)
	case h.To == nil:
		return "removed, was " + chart(h.From)
	}
	s := chart(h.From) + " → " + orUnknown(h.To.Version)
	if h.From.Chart != h.To.Chart {
		s = chart(h.From) + " → " + chart(h.To)
	}
	if h.From.ConfigDigest != h.To.ConfigDigest || len(h.Values) > 0 {
		s += ", values changed"
	}
	if h.To.Status != "" && h.To.Status != "deployed" {
		s += ", release " + h.To.Status
	}
	return s
}

func describeImage(im record.ImageChange) string {
	if im.From != nil && im.To != nil && im.From.Image == im.To.Image {
		return "image " + im.To.Image + ", running digest changed"
	}
	return "image " + imageOf(im.From) + " → " + imageOf(im.To)
}

func imageOf(c *record.Container) string {
	if c == nil {
		return "none"
	}
	return c.Image
}

// describeFleet names a record's revision for a reader: the ref asked
// for, else the commit, else the working tree or the served commit.
func describeFleet(f record.Fleet) string {
	commit := f.Commit[:min(len(f.Commit), 12)]
	switch {
	case f.WorkingTree && commit != "":
		return "working tree (on " + commit + ")"
	case f.WorkingTree:
		return "working tree"
	case f.Ref != "" && f.Ref != f.Commit:
		return f.Ref + " (" + commit + ")"
	case commit != "":
		return commit
	default:
		return "served " + orUnknown(f.Served[:min(len(f.Served), 12)])
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
