package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/fixtures/upgrades"
	"github.com/flux-fleet/flux-fleet/harness/renderdiff"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// pairRepo is a git repository holding the prune-in-use pair: the base
// committed, then the head committed; the working tree is left at the base.
func pairRepo(t *testing.T) (dir, base, head string) {
	t.Helper()
	testsupport.RequireGit(t, "the pair's base and head are commits")
	pair, err := upgrades.Load(testsupport.RepoRoot(t), "prune-in-use")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	testsupport.Git(t, dir, "init", "--quiet", "--initial-branch=main")
	if err := pair.WriteBase(dir); err != nil {
		t.Fatal(err)
	}
	testsupport.Git(t, dir, "add", "--all")
	testsupport.Git(t, dir, "commit", "--quiet", "-m", "base")
	base = testsupport.Git(t, dir, "rev-parse", "HEAD")
	if err := pair.WriteHead(dir); err != nil {
		t.Fatal(err)
	}
	testsupport.Git(t, dir, "commit", "--quiet", "--all", "-m", "head")
	head = testsupport.Git(t, dir, "rev-parse", "HEAD")
	testsupport.Git(t, dir, "checkout", "--quiet", base, "--", ".")
	return dir, base, head
}

func runDiff(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestExitCodes: 0 without a change, 1 with one (the working tree or a
// head revision), 2 for a revision that does not exist, naming it.
func TestExitCodes(t *testing.T) {
	dir, base, head := pairRepo(t)
	const hazard = "  ✗ hazard Service/apps/fleet-app (Kustomization/flux-system/apps): removed while still in use"
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // a line the output must hold
		stderrHead string // how stderr must start
	}{
		{"working tree at the base", []string{"-base", base}, 0, "staging: no changes\n", "diff: 2 environment(s), " + base + " (commit " + base[:12] + ") → working tree"},
		{"head revision", []string{"-base", base, "-head", head}, 1, hazard, "diff: 2 environment(s)"},
		{"one environment", []string{"-base", base, "-head", head, "-env", "production"}, 1, "production: 1 hazard, 1 removed\n", "diff: 1 environment(s)"},
		{"bad revision", []string{"-base", "no-such-revision"}, 2, "", `diff: git revision "no-such-revision" is not a commit of the repository of `},
		{"bad format", []string{"-base", base, "-o", "yaml"}, 2, "", `diff: -o "yaml": want text, markdown or json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runDiff(t, append(tt.args, "-fleet", dir)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout)
			}
			if !strings.HasPrefix(stderr, tt.stderrHead) {
				t.Errorf("stderr does not start with %q:\n%s", tt.stderrHead, stderr)
			}
		})
	}
}

// TestWorkingTreeEdits: uncommitted edits are the head by default.
func TestWorkingTreeEdits(t *testing.T) {
	dir, base, _ := pairRepo(t)
	pair, err := upgrades.Load(testsupport.RepoRoot(t), "prune-in-use")
	if err != nil {
		t.Fatal(err)
	}
	if err := pair.WriteHead(dir); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runDiff(t, "-base", base, "-fleet", dir, "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	var report renderdiff.Report
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout)
	}
	if report.Head != "working tree" || len(report.Hazards()) != 2 {
		t.Errorf("head %q, hazards %v; want the working tree and one hazard per environment", report.Head, report.Hazards())
	}
	code, stdout, _ = runDiff(t, "-base", base, "-fleet", dir, "-o", "markdown")
	if code != 1 || !strings.HasPrefix(stdout, "### Fleet diff: `"+base+" (commit "+base[:12]+")` → `working tree`\n") {
		t.Errorf("-o markdown: exit %d\n%s", code, stdout)
	}
	if strings.Contains(stdout, "\x1b[") {
		t.Error("colour codes in output that is not a terminal")
	}
}

// TestTimeoutBound: a bound that is not positive is a usage error, and one
// that runs out is named as the cause, not the git call it cut short.
func TestTimeoutBound(t *testing.T) {
	fleet := testsupport.RepoRoot(t)
	tests := []struct {
		name       string
		args       []string
		stderrHead string
	}{
		{"zero", []string{"-timeout", "0"}, "diff: -timeout 0s: want a positive duration\n"},
		{"negative", []string{"-timeout", "-5s"}, "diff: -timeout -5s: want a positive duration\n"},
		{"ran out", []string{"-timeout", "1ns"}, "diff: -timeout 1ns ran out while finding the git checkout of fleet directory " + fleet + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runDiff(t, append(tt.args, "-fleet", fleet)...)
			if code != 2 {
				t.Errorf("exit %d, want 2\nstdout:\n%s", code, stdout)
			}
			if !strings.HasPrefix(stderr, tt.stderrHead) {
				t.Errorf("stderr does not start with %q:\n%s", tt.stderrHead, stderr)
			}
		})
	}
}
