// Command report renders a run's report.json as a self-contained HTML page
// and as markdown for a CI job summary.
//
//	go run ./hack/report -in report.json [-html out.html] [-markdown out.md [-append]]
//
// Without -html or -markdown it prints the markdown. The page links every
// file next to report.json (the run's artifacts). -append adds the markdown
// to the end of the file, for $GITHUB_STEP_SUMMARY.
//
//	go run ./hack/report -merge DIR[,DIR...] [-run-id ID] [-commit SHA] [-jobs needs.json]
//	    [-last-green night.json] [-night night.json] [-markdown out.md [-append]]
//
// -merge reads the shards a CI run's jobs uploaded (each DIR's
// subdirectories named shard-<name>: report.json, record-*.json, JUnit
// *.xml) and writes one summary: per shard and environment pass/fail and
// time to green, the failed tests, and what changed since the last green
// night (-last-green, a night.json an earlier merge wrote; a missing file
// means none is known). -night writes tonight's night.json; -jobs reads the
// workflow's needs context (toJSON(needs)) for the jobs' results.
// Exit status: 0 rendered, 2 usage error or unreadable input.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/flux-fleet/flux-fleet/hack/internal/cli"
	"github.com/flux-fleet/flux-fleet/harness/report"
)

func main() { cli.Main(run) }

func run(_ context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := cli.New("report", stdout, stderr)
	merge := newMergeFlags(cmd)
	in := cmd.Flags.String("in", "", "the run's report.json (required); the page links the files next to it")
	html := cmd.Flags.String("html", "", "write the HTML page to this file")
	markdown := cmd.Flags.String("markdown", "", `write the markdown summary to this file ("-": standard output)`)
	appendMD := cmd.Flags.Bool("append", false, "append the markdown to the file instead of replacing it (for $GITHUB_STEP_SUMMARY)")
	if !cmd.Parse(args) {
		return cli.ExitError
	}
	if merge.given(cmd) {
		return runMerge(cmd, merge, *markdown, *appendMD, stdout)
	}
	if *in == "" {
		return cmd.Error(errors.New("no report given"), "pass -in path/to/report.json")
	}
	r, err := report.Read(*in)
	if err != nil {
		return cmd.Error(err, "")
	}
	if *html == "" && *markdown == "" {
		*markdown = "-"
	}
	if *html != "" {
		if err := report.WriteHTML(*html, r, filepath.Dir(*in)); err != nil {
			return cmd.Error(err, "")
		}
	}
	if *markdown != "" {
		if err := writeMarkdown(*markdown, *appendMD, r, stdout); err != nil {
			return cmd.Error(err, "")
		}
	}
	return cli.ExitClean
}

// writeMarkdown writes the summary to stdout ("-") or to path, replaced or
// appended to; a new file is 0600 like the other artifacts.
func writeMarkdown(path string, appendTo bool, r *report.Report, stdout io.Writer) error {
	return writeMarkdownWith(path, appendTo, stdout, func(w io.Writer) error { return report.RenderMarkdown(w, r) })
}

// writeMarkdownWith writes what render renders to stdout ("-") or to path.
func writeMarkdownWith(path string, appendTo bool, stdout io.Writer, render func(io.Writer) error) error {
	if path == "-" {
		return render(stdout)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if appendTo {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return fmt.Errorf("writing the markdown summary: %w", err)
	}
	werr := render(f)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("writing the markdown summary to %s: %w", path, err)
	}
	return nil
}
