package renderdiff

import (
	"fmt"
	"strings"
)

// contextLines is how many unchanged lines a hunk shows around a change,
// as diff -u and git diff do.
const contextLines = 3

// maxLCSCells bounds the line-matching table: two long texts that differ
// throughout are shown as one replacement rather than matched line by line.
const maxLCSCells = 4 << 20

// edit is one line of an edit script: ' ' kept, '-' removed, '+' added.
type edit struct {
	op   byte
	line string
}

// unifiedDiff is a unified diff of two texts with the given file labels;
// empty when they are equal.
func unifiedDiff(fromLabel, toLabel, from, to string) string {
	if from == to {
		return ""
	}
	script := editScript(splitLines(from), splitLines(to))
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s\n+++ %s\n", fromLabel, toLabel)
	for _, h := range hunks(script) {
		writeHunk(&b, script, h)
	}
	return b.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// editScript turns a into b: the common prefix and suffix kept, the middle
// matched by a longest common subsequence of lines.
func editScript(a, b []string) []edit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []edit
	for _, l := range a[:pre] {
		out = append(out, edit{' ', l})
	}
	out = append(out, middleScript(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, l := range a[len(a)-suf:] {
		out = append(out, edit{' ', l})
	}
	return out
}

// middleScript matches two runs of lines by their longest common
// subsequence, removals before additions within each change.
func middleScript(a, b []string) []edit {
	var out []edit
	if len(a)*len(b) > maxLCSCells || len(a) == 0 || len(b) == 0 {
		for _, l := range a {
			out = append(out, edit{'-', l})
		}
		for _, l := range b {
			out = append(out, edit{'+', l})
		}
		return out
	}
	// lcs[i][j] is the length of the LCS of a[i:] and b[j:].
	lcs := make([][]int32, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out = append(out, edit{' ', a[i]})
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, edit{'-', a[i]})
			i++
		default:
			out = append(out, edit{'+', b[j]})
			j++
		}
	}
	return out
}

// hunk is a range [start, end) of an edit script.
type hunk struct{ start, end int }

// hunks groups the changes of a script with their context; changes closer
// than twice the context share a hunk.
func hunks(script []edit) []hunk {
	var out []hunk
	for i, e := range script {
		if e.op == ' ' {
			continue
		}
		start, end := max(0, i-contextLines), min(len(script), i+1+contextLines)
		if n := len(out); n > 0 && start <= out[n-1].end {
			out[n-1].end = end
			continue
		}
		out = append(out, hunk{start, end})
	}
	return out
}

// writeHunk writes one hunk with its @@ header (1-based line numbers; a
// side with no lines in the hunk starts at the line before, as diff -u).
func writeHunk(b *strings.Builder, script []edit, h hunk) {
	fromLine, toLine := 1, 1
	for _, e := range script[:h.start] {
		if e.op != '+' {
			fromLine++
		}
		if e.op != '-' {
			toLine++
		}
	}
	fromCount, toCount := 0, 0
	for _, e := range script[h.start:h.end] {
		if e.op != '+' {
			fromCount++
		}
		if e.op != '-' {
			toCount++
		}
	}
	if fromCount == 0 {
		fromLine--
	}
	if toCount == 0 {
		toLine--
	}
	fmt.Fprintf(b, "@@ -%d,%d +%d,%d @@\n", fromLine, fromCount, toLine, toCount)
	for _, e := range script[h.start:h.end] {
		b.WriteByte(e.op)
		b.WriteString(e.line)
		b.WriteByte('\n')
	}
}
