package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/flux-fleet/flux-fleet/hack/internal/cli"
	"github.com/flux-fleet/flux-fleet/harness/report"
)

// mergeFlags are the flags of the merge mode (-merge).
type mergeFlags struct {
	dirs      string
	runID     string
	commit    string
	jobs      string
	lastGreen string
	night     string
}

func newMergeFlags(cmd *cli.Command) *mergeFlags {
	m := &mergeFlags{}
	cmd.Flags.StringVar(&m.dirs, "merge", "", "merge the shards under these directories (comma-separated) into one summary")
	cmd.Flags.StringVar(&m.runID, "run-id", "", "with -merge: the CI run's id, kept in the night")
	cmd.Flags.StringVar(&m.commit, "commit", "", "with -merge: the commit the CI run tested")
	cmd.Flags.StringVar(&m.jobs, "jobs", "", "with -merge: a JSON file of the workflow's needs context, for the jobs' results")
	cmd.Flags.StringVar(&m.lastGreen, "last-green", "", "with -merge: the night.json of the last green night (a missing file: none known)")
	cmd.Flags.StringVar(&m.night, "night", "", "with -merge: write tonight's night.json here")
	return m
}

// given reports whether -merge was passed, even empty, so that a list that
// names no directory is refused rather than read as the -in mode.
func (m *mergeFlags) given(cmd *cli.Command) bool {
	given := false
	cmd.Flags.Visit(func(f *flag.Flag) { given = given || f.Name == "merge" })
	return given
}

// runMerge is the merge mode: read the shards, merge, compare with the last
// green night, write the markdown and, when asked, the night.
func runMerge(cmd *cli.Command, m *mergeFlags, markdown string, appendMD bool, stdout io.Writer) int {
	dirs := cli.List(m.dirs)
	if len(dirs) == 0 {
		// Merging no directory would report a night with no shard uploaded.
		return cmd.Error(fmt.Errorf("-merge %q names no directory", m.dirs), "pass -merge DIR[,DIR...]")
	}
	shards, err := report.ReadShards(dirs...)
	if err != nil {
		return cmd.Error(err, "")
	}
	jobs, err := readJobs(m.jobs)
	if err != nil {
		return cmd.Error(err, "")
	}
	last, err := readLastGreen(m.lastGreen, cmd.Stderr)
	if err != nil {
		return cmd.Error(err, "")
	}
	night := report.Merge(m.runID, m.commit, jobs, shards)
	if m.night != "" {
		if err := report.WriteNight(m.night, night); err != nil {
			return cmd.Error(err, "")
		}
	}
	if markdown == "" {
		markdown = "-"
	}
	render := func(w io.Writer) error { return report.RenderNightMarkdown(w, night, last) }
	if err := writeMarkdownWith(markdown, appendMD, stdout, render); err != nil {
		return cmd.Error(err, "")
	}
	return cli.ExitClean
}

// readJobs reads the needs context as the workflow serializes it:
// {"<job>": {"result": "success", "outputs": {...}}}; "" reads none.
func readJobs(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the jobs' results: %w", err)
	}
	var needs map[string]struct {
		Result string `json:"result"`
	}
	if err := json.Unmarshal(data, &needs); err != nil {
		return nil, fmt.Errorf("jobs' results %s: not a needs context: %w", path, err)
	}
	jobs := map[string]string{}
	for job, n := range needs {
		if n.Result == "" {
			return nil, fmt.Errorf("jobs' results %s: job %q has no result", path, job)
		}
		jobs[job] = n.Result
	}
	return jobs, nil
}

// readLastGreen reads the last green night; a missing file (the CI cache
// had none yet) is no night, said on stderr.
func readLastGreen(path string, stderr io.Writer) (*report.Night, error) {
	if path == "" {
		return nil, nil
	}
	n, err := report.ReadNight(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "report: no last green night at %s: nothing to compare\n", path)
		return nil, nil
	}
	return n, err
}
