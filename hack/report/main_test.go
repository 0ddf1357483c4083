package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/hack/internal/cli"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/record"
	"github.com/flux-fleet/flux-fleet/harness/report"
)

// writeRunReport writes a failed run's report.json and a record next to
// it, as a run leaves them in its artifacts directory.
func writeRunReport(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "artifacts")
	start := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	b := report.NewBuilder(report.Run{ID: "pr-7", Started: start})
	b.AddStep("", "wait", start, start.Add(time.Minute), nil)
	b.SetReadiness("staging", &readiness.Report{Env: "staging", Start: start, Total: time.Minute}, &readiness.FailureError{
		Env: "staging", Object: "Kustomization/flux-system/apps", Reason: "BuildFailed", Message: "kustomize build failed", Terminal: true})
	if err := report.Write(filepath.Join(dir, report.FileName), b.Report(start.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "record-staging.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, report.FileName)
}

const verdictLine = "- staging: not ready: Kustomization/flux-system/apps failed: BuildFailed\n"

func runCommand(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRendersPageAndAppendsSummary(t *testing.T) {
	in := writeRunReport(t)
	outDir := filepath.Join(filepath.Dir(filepath.Dir(in)), "site")
	if err := os.Mkdir(outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	page, summary := filepath.Join(outDir, "page.html"), filepath.Join(outDir, "summary.md")
	if err := os.WriteFile(summary, []byte("earlier step's summary\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCommand("-in", in, "-html", page, "-markdown", summary, "-append"); code != cli.ExitClean {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	// The page lives elsewhere: its link climbs back to the artifacts.
	if want := `<a href="../artifacts/record-staging.json">`; !strings.Contains(string(html), want) {
		t.Errorf("page lacks %s", want)
	}
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(md), "earlier step's summary\n### flux-fleet run pr-7: not ready\n") || !strings.Contains(string(md), verdictLine) {
		t.Errorf("summary was not appended with the verdict:\n%s", md)
	}
}

func TestPrintsMarkdownByDefault(t *testing.T) {
	code, stdout, stderr := runCommand("-in", writeRunReport(t))
	if code != cli.ExitClean || !strings.Contains(stdout, verdictLine) {
		t.Errorf("exit %d, stdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad, v1 := filepath.Join(dir, "report.json"), filepath.Join(dir, "v1.json")
	if err := os.WriteFile(bad, []byte(`{"version": 9}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v1, []byte(`{"version": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	runReport := writeRunReport(t)
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no report", nil, "report: no report given (pass -in path/to/report.json)\n"},
		{"other version", []string{"-in", bad}, "report: run report " + bad + ": version 9, this harness reads version 1\n"},
		{"not a run report", []string{"-in", v1}, "report: run report " + v1 + ": no run.id; no run.started; no run.verdict\n"},
		{"merge of no directory", []string{"-merge", ",,"}, "report: -merge \",,\" names no directory (pass -merge DIR[,DIR...])\n"},
		{"merge of empty list", []string{"-merge", ""}, "report: -merge \"\" names no directory (pass -merge DIR[,DIR...])\n"},
		{"run report as last green night", []string{"-merge", dir, "-last-green", runReport},
			"report: night " + runReport + ": no green, no shards (it is a run report, not a merged night)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCommand(tc.args...)
			if code != cli.ExitError || stderr != tc.stderr {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr, cli.ExitError, tc.stderr)
			}
		})
	}
}

// TestMergesShards runs the merge mode as the nightly's merge job does: one
// shard downloaded, the needs context, no last green night in the cache.
func TestMergesShards(t *testing.T) {
	in := writeRunReport(t)
	shards := t.TempDir()
	shard := filepath.Join(shards, report.ShardPrefix+"e2e-staging")
	if err := os.Rename(filepath.Dir(in), shard); err != nil {
		t.Fatal(err)
	}
	if err := record.Write(filepath.Join(shard, record.FileName("staging", "")), &record.Record{Format: record.Format, Env: "staging"}); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	jobs, night, summary := filepath.Join(work, "needs.json"), filepath.Join(work, "night.json"), filepath.Join(work, "summary.md")
	if err := os.WriteFile(jobs, []byte(`{"e2e": {"result": "failure", "outputs": {}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCommand("-merge", shards, "-run-id", "77", "-jobs", jobs, "-last-green", filepath.Join(work, "none.json"),
		"-night", night, "-markdown", summary, "-append")
	if code != cli.ExitClean {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := "report: no last green night at " + filepath.Join(work, "none.json") + ": nothing to compare\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### Nightly run 77: not green\n",
		"| e2e-staging | staging | fail: not ready: Kustomization/flux-system/apps failed: BuildFailed |  | no JUnit |\n",
		"**Jobs not successful**: e2e: failure\n"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	n, err := report.ReadNight(night)
	if err != nil || n.Green || n.RunID != "77" || len(n.Shards) != 1 || n.Shards[0].Records["record-staging.json"] == nil {
		t.Errorf("night %+v, %v: want run 77, not green, one shard with its record", n, err)
	}
}

func TestMergeRefusesBadJobs(t *testing.T) {
	jobs := filepath.Join(t.TempDir(), "needs.json")
	if err := os.WriteFile(jobs, []byte(`{"e2e": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCommand("-merge", t.TempDir(), "-jobs", jobs)
	if want := "report: jobs' results " + jobs + ": job \"e2e\" has no result\n"; code != cli.ExitError || stderr != want {
		t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr, cli.ExitError, want)
	}
}
