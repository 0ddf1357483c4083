package report

import (
	"fmt"
	"io"
	"strings"
)

// slowestShown is how many of the slowest objects a summary lists per
// environment: enough to see what gates the bring-up, short enough for CI.
const slowestShown = 5

// RenderMarkdown writes the report as a short job summary: the verdict per
// environment, failures with their one-line reason, the slowest objects
// and what changed.
func RenderMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", mdText(r.Headline()))
	for i := range r.Environments {
		fmt.Fprintf(&b, "- %s\n", mdText(r.VerdictLine(&r.Environments[i])))
	}
	writeMarkdownFailures(&b, r)
	writeMarkdownSlowest(&b, r)
	for _, e := range r.Environments {
		if len(e.Changes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n**Changes in %s** since %s\n\n```text\n", mdText(e.Name), mdText(e.Base))
		for _, l := range e.Changes {
			b.WriteString(strings.ReplaceAll(l, "```", "'''") + "\n")
		}
		b.WriteString("```\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the markdown summary of %s: %w", r.Headline(), err)
	}
	return nil
}

func writeMarkdownFailures(b *strings.Builder, r *Report) {
	var lines []string
	for _, e := range r.Environments {
		if f := e.Failure; f != nil {
			line := e.Name + ": " + f.Object + " " + f.Reason
			if f.Message != "" {
				line += ": " + firstLine(f.Message)
			}
			lines = append(lines, line)
		}
	}
	for _, c := range r.Checks {
		if c.Result == Failed {
			lines = append(lines, fmt.Sprintf("check %s (%s): %s", c.Name, c.Env, c.Failure))
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("\n**Failures**\n\n")
	for _, l := range lines {
		fmt.Fprintf(b, "- %s\n", mdText(l))
	}
}

func writeMarkdownSlowest(b *strings.Builder, r *Report) {
	header := false
	for i := range r.Environments {
		e := &r.Environments[i]
		for _, o := range slowest(e, slowestShown) {
			if !header {
				b.WriteString("\n**Slowest objects**\n\n| Environment | Object | Ready after |\n|---|---|---|\n")
				header = true
			}
			fmt.Fprintf(b, "| %s | %s | %s |\n", mdText(e.Name), mdText(o.Ref()), formatDuration(o.ReadyAt.Sub(o.FirstSeen)))
		}
	}
}

// mdText makes s inert in GitHub markdown: one line, no HTML (job summaries
// render it), no table cell breaks.
func mdText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "|", `\|`, "`", "'", "*", `\*`, "_", `\_`, "[", `\[`).Replace(s)
}
