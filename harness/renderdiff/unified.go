package renderdiff

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// contextLines is how many unchanged lines a hunk shows around a change,
// as diff -u and git diff do.
const contextLines = 3

// unifiedDiff is a unified diff of two texts with the given file labels;
// empty when they are equal.
func unifiedDiff(fromLabel, toLabel, from, to string) string {
	if from == to {
		return ""
	}
	diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: linesOf(from), B: linesOf(to), FromFile: fromLabel, ToFile: toLabel, Context: contextLines,
	})
	if err != nil {
		// difflib writes into a strings.Builder, which does not fail; say
		// so in the output rather than drop the change.
		return "(no diff: " + err.Error() + ")\n"
	}
	return diff
}

// linesOf splits s into lines that each end in a newline, as difflib
// wants them (its own SplitLines adds an empty last line to text ending
// in one).
func linesOf(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	last := len(lines) - 1
	if lines[last] == "" {
		return lines[:last]
	}
	lines[last] += "\n"
	return lines
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
