package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// failedNamesShown bounds the failed tests listed per shard: the JUnit
// files hold the rest, and a summary must stay one screen.
const failedNamesShown = 10

// RenderNightMarkdown writes the night as one job summary: the verdict,
// per shard and environment pass/fail and time to green, the jobs that did
// not succeed, the failed tests, and what changed since last (nil: no
// green night is known yet).
func RenderNightMarkdown(w io.Writer, n, last *Night) error {
	var b strings.Builder
	verdict := "not green"
	if n.Green {
		verdict = "green"
	}
	fmt.Fprintf(&b, "### Nightly run %s: %s\n\n", mdText(n.RunID), verdict)
	if n.Commit != "" {
		fmt.Fprintf(&b, "Commit %s.\n\n", mdText(n.Commit))
	}
	writeNightTable(&b, n)
	writeNightJobs(&b, n)
	writeNightFailures(&b, n)
	writeNightChanges(&b, n, last)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the summary of night %s: %w", n.RunID, err)
	}
	return nil
}

func writeNightTable(b *strings.Builder, n *Night) {
	if len(n.Shards) == 0 {
		b.WriteString("No shard uploaded a report.\n")
		return
	}
	b.WriteString("| Shard | Environment | Result | Time to green | Tests |\n|---|---|---|---|---|\n")
	for i := range n.Shards {
		s := &n.Shards[i]
		tests := testsCell(s.Tests)
		if s.Error != "" && len(s.Environments) == 0 {
			fmt.Fprintf(b, "| %s | | failed: %s | | %s |\n", mdText(s.Name), mdText(firstLine(s.Error)), tests)
			continue
		}
		for _, e := range s.Environments {
			green := ""
			if e.TimeToGreen > 0 {
				green = formatDuration(time.Duration(e.TimeToGreen * float64(time.Second)))
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", mdText(s.Name), mdText(e.Name), mdText(resultCell(e)), green, tests)
		}
	}
}

// resultCell is "pass" or "fail: " and the verdict line's reason.
func resultCell(e ShardEnv) string {
	if e.Verdict == Green {
		return "pass"
	}
	return "fail: " + strings.TrimPrefix(e.Line, e.Name+": ")
}

func testsCell(t TestResults) string {
	switch {
	case t.Total == 0:
		return "no JUnit"
	case t.Failed > 0:
		return fmt.Sprintf("%d failed of %d", t.Failed, t.Total)
	default:
		return fmt.Sprintf("%d passed, %d skipped", t.Total-t.Skipped, t.Skipped)
	}
}

func writeNightJobs(b *strings.Builder, n *Night) {
	var bad []string
	for _, job := range slices.Sorted(maps.Keys(n.Jobs)) {
		if r := n.Jobs[job]; r != "success" && r != "skipped" {
			bad = append(bad, job+": "+r)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintf(b, "\n**Jobs not successful**: %s\n", mdText(strings.Join(bad, ", ")))
	}
}

func writeNightFailures(b *strings.Builder, n *Night) {
	header := false
	for i := range n.Shards {
		s := &n.Shards[i]
		var lines []string
		if s.Error != "" {
			lines = append(lines, firstLine(s.Error))
		}
		shown := s.Tests.FailedNames[:min(failedNamesShown, len(s.Tests.FailedNames))]
		lines = append(lines, shown...)
		if more := len(s.Tests.FailedNames) - len(shown); more > 0 {
			lines = append(lines, fmt.Sprintf("and %d more failed tests (see the JUnit file)", more))
		}
		if len(lines) == 0 {
			continue
		}
		if !header {
			b.WriteString("\n**Failures**\n\n")
			header = true
		}
		for _, l := range lines {
			fmt.Fprintf(b, "- %s: %s\n", mdText(s.Name), mdText(l))
		}
	}
}

func writeNightChanges(b *strings.Builder, n, last *Night) {
	if last == nil {
		b.WriteString("\nNo earlier green night is known: nothing to compare.\n")
		return
	}
	fmt.Fprintf(b, "\n**Since the last green night** (run %s, commit %s)\n\n", mdText(last.RunID), mdText(last.Commit))
	changes := Compare(last, n)
	if len(changes) == 0 {
		b.WriteString("Nothing changed.\n")
		return
	}
	b.WriteString("```text\n")
	for _, c := range changes {
		for _, l := range c.Lines {
			b.WriteString(strings.ReplaceAll(c.Shard+": "+l, "```", "'''") + "\n")
		}
	}
	b.WriteString("```\n")
}
