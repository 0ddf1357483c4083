package renderdiff

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"
)

// ANSI colours of the terminal view.
const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiCyan  = "\x1b[36m"
)

// painter colours text for a terminal, or leaves it as it is.
type painter bool

func (p painter) paint(color, s string) string {
	if !p || s == "" {
		return s
	}
	return color + s + ansiReset
}

// diffLine colours one line of a unified diff by its first character.
func (p painter) diffLine(line string) string {
	switch {
	case strings.HasPrefix(line, "---"), strings.HasPrefix(line, "+++"):
		return p.paint(ansiBold, line)
	case strings.HasPrefix(line, "@@"):
		return p.paint(ansiCyan, line)
	case strings.HasPrefix(line, "-"):
		return p.paint(ansiRed, line)
	case strings.HasPrefix(line, "+"):
		return p.paint(ansiGreen, line)
	}
	return line
}

// counts summarizes an environment's changes in words.
func (e *EnvDiff) counts() string {
	n := map[string]int{}
	releases := 0
	for _, o := range e.Owners {
		for _, c := range o.Objects {
			n[c.Change]++
		}
		if o.Release != nil {
			releases++
		}
	}
	var parts []string
	add := func(count int, what string) {
		if count > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count, what))
		}
	}
	add(len(e.Hazards), plural(len(e.Hazards), "hazard"))
	add(n[Added], "added")
	add(n[Removed], "removed")
	add(n[Changed], "changed")
	add(releases, plural(releases, "release")+" with another chart or values")
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// changeMark is the one-character mark of a change in the terminal view.
func changeMark(change string) string {
	switch change {
	case Added:
		return "+"
	case Removed:
		return "-"
	}
	return "~"
}

// WriteText writes the terminal view: per environment its hazards, then
// per Kustomization and HelmRelease each object changed with its diff
// (added and removed objects by name only), with ANSI colours when color
// is set.
func (r *Report) WriteText(w io.Writer, color bool) error {
	p := painter(color)
	var b strings.Builder
	fmt.Fprintf(&b, "base: %s\nhead: %s\n", r.Base, r.Head)
	for _, e := range r.Envs {
		fmt.Fprintf(&b, "%s: %s\n", p.paint(ansiBold, e.Name), e.counts())
		for _, h := range e.Hazards {
			field := ""
			if h.Field != "" {
				field = h.Field + ": "
			}
			fmt.Fprintf(&b, "  %s %s (%s): %s%s\n", p.paint(ansiRed, "✗ hazard"), h.Object, h.Owner, field, h.Reason)
			fmt.Fprintf(&b, "      base: %s\n      head: %s\n", h.Base, h.Head)
		}
		for _, o := range e.Owners {
			writeOwnerText(&b, p, o)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	fmt.Fprintf(&b, "left out of every object: %s; Secret values show as digests\n", strings.Join(r.OmittedFields, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

func writeOwnerText(b *strings.Builder, p painter, o *OwnerDiff) {
	fmt.Fprintf(b, "  %s\n", p.paint(ansiBold, o.Owner))
	if rc := o.Release; rc != nil {
		if rc.BaseChart == rc.HeadChart && rc.BaseSource == rc.HeadSource {
			fmt.Fprintf(b, "    chart: %s (%s), unchanged\n", rc.HeadChart, rc.HeadSource)
		} else {
			fmt.Fprintf(b, "    chart: %s (%s) → %s (%s)\n", orNone(rc.BaseChart), orNone(rc.BaseSource), orNone(rc.HeadChart), orNone(rc.HeadSource))
		}
		if rc.ValuesDiff != "" {
			b.WriteString("    values:\n")
			writeDiffText(b, p, rc.ValuesDiff)
		}
	}
	for _, c := range o.Objects {
		moved := ""
		if c.MovedFrom != "" {
			moved = " (moved from " + c.MovedFrom + ")"
		}
		fmt.Fprintf(b, "    %s %s%s\n", p.diffLine(changeMark(c.Change)), c.Object, moved)
		if c.Change == Changed {
			writeDiffText(b, p, c.Diff)
		}
	}
}

func writeDiffText(b *strings.Builder, p painter, diff string) {
	for _, line := range splitLines(diff) {
		fmt.Fprintf(b, "        %s\n", p.diffLine(line))
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// WriteMarkdown writes the view for a pull-request comment or a CI job
// summary: per environment the hazards first, then one collapsible block
// per object with its diff.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### Fleet diff: %s → %s\n\n", code(r.Base), code(r.Head))
	for _, e := range r.Envs {
		fmt.Fprintf(&b, "#### %s: %s\n\n", html.EscapeString(e.Name), e.counts())
		if len(e.Hazards) > 0 {
			b.WriteString("**Hazards**\n\n")
		}
		for _, h := range e.Hazards {
			field := ""
			if h.Field != "" {
				field = code(h.Field) + ": "
			}
			fmt.Fprintf(&b, "- ⚠️ %s (%s): %s%s<br>base: %s<br>head: %s\n", code(h.Object), code(h.Owner), field,
				html.EscapeString(h.Reason), code(h.Base), code(h.Head))
		}
		if len(e.Hazards) > 0 {
			b.WriteString("\n")
		}
		for _, o := range e.Owners {
			writeOwnerMarkdown(&b, o)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- note: %s\n", html.EscapeString(n))
	}
	fmt.Fprintf(&b, "\n<sub>Left out of every object: %s. Secret values show as digests.</sub>\n", html.EscapeString(strings.Join(r.OmittedFields, ", ")))
	_, err := io.WriteString(w, b.String())
	return err
}

func writeOwnerMarkdown(b *strings.Builder, o *OwnerDiff) {
	fmt.Fprintf(b, "**%s**\n\n", code(o.Owner))
	if rc := o.Release; rc != nil {
		fmt.Fprintf(b, "chart %s → %s\n\n", code(orNone(rc.BaseChart)), code(orNone(rc.HeadChart)))
		if rc.ValuesDiff != "" {
			writeDetails(b, "values", rc.ValuesDiff)
		}
	}
	for _, c := range o.Objects {
		summary := c.Change + " <code>" + html.EscapeString(c.Object) + "</code>"
		if c.MovedFrom != "" {
			summary += " (moved from <code>" + html.EscapeString(c.MovedFrom) + "</code>)"
		}
		writeDetails(b, summary, c.Diff)
	}
}

// writeDetails writes a collapsible block holding a diff; summary is HTML.
func writeDetails(b *strings.Builder, summary, diff string) {
	fence := strings.Repeat("`", max(3, longestRun(diff, '`')+1))
	fmt.Fprintf(b, "<details><summary>%s</summary>\n\n%sdiff\n%s%s\n\n</details>\n\n", summary, fence, diff, fence)
}

// code renders s as inline code that its own backticks cannot end.
func code(s string) string {
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

func longestRun(s string, c rune) int {
	longest, run := 0, 0
	for _, r := range s {
		if r == c {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// WriteJSON writes the report as indented JSON, for tools.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the diff as JSON: %w", err)
	}
	return nil
}
