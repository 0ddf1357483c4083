package workflowlint

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// lint runs actionlint on files. shellcheck and pyflakes stay off: they are
// not installed everywhere this test runs, and an absent tool must not turn
// into a silent pass or a spurious failure.
func lint(t *testing.T, files []string) []*actionlint.Error {
	t.Helper()
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{
		LogWriter:  io.Discard,
		Shellcheck: "",
		Pyflakes:   "",
	})
	if err != nil {
		t.Fatalf("creating actionlint linter: %v", err)
	}
	errs, err := l.LintFiles(files, nil)
	if err != nil {
		t.Fatalf("linting %v: %v", files, err)
	}
	return errs
}

func workflowFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join("..", "..", ".github", "workflows", pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// TestWorkflows fails on any actionlint finding in .github/workflows.
func TestWorkflows(t *testing.T) {
	files := workflowFiles(t)
	// Guard against a moved directory making this test pass vacuously.
	for _, want := range []string{"nightly.yaml", "ci.yaml"} {
		found := false
		for _, f := range files {
			found = found || filepath.Base(f) == want
		}
		if !found {
			t.Errorf("workflow %s not found among %v", want, files)
		}
	}
	for _, e := range lint(t, files) {
		t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
	}
}

// TestLinterCatchesBrokenWorkflows proves the lint is not a no-op: each
// workflow here has one mistake actionlint must report.
func TestLinterCatchesBrokenWorkflows(t *testing.T) {
	const header = "name: bad\non: [push]\njobs:\n"
	tests := []struct {
		name     string
		workflow string
		wantKind string // actionlint rule name of the expected error
		wantMsg  string
	}{
		{
			name:     "job without runs-on",
			workflow: header + "  test:\n    steps:\n      - run: echo hi\n",
			wantKind: "syntax-check",
			wantMsg:  `"runs-on" section is missing`,
		},
		{
			name: "runner context in job env",
			workflow: header + "  test:\n    runs-on: ubuntu-latest\n    env:\n      DIR: ${{ runner.temp }}/a\n" +
				"    steps:\n      - run: echo \"$DIR\"\n",
			wantKind: "expression",
			wantMsg:  `context "runner" is not allowed here`,
		},
		{
			name: "unknown action input",
			workflow: header + "  test:\n    runs-on: ubuntu-latest\n    steps:\n" +
				"      - uses: actions/upload-artifact@v6\n        with:\n          name: x\n          pathh: y\n",
			wantKind: "action",
			wantMsg:  `input "pathh" is not defined`,
		},
		{
			name: "undefined matrix property",
			workflow: header + "  test:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        env: [a]\n" +
				"    steps:\n      - run: echo ${{ matrix.enviroment }}\n",
			wantKind: "expression",
			wantMsg:  `property "enviroment" is not defined`,
		},
		{
			name:     "invalid YAML",
			workflow: header + "  test:\n    runs-on: [ubuntu-latest\n",
			wantKind: "syntax-check",
			wantMsg:  "could not parse as YAML",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(path, []byte(tt.workflow), 0o644); err != nil {
				t.Fatal(err)
			}
			errs := lint(t, []string{path})
			var got []string
			for _, e := range errs {
				got = append(got, e.Kind+": "+e.Message)
				if e.Kind == tt.wantKind && strings.Contains(e.Message, tt.wantMsg) {
					return
				}
			}
			t.Errorf("want a %s error containing %q; got %d errors:\n%s", tt.wantKind, tt.wantMsg, len(errs), strings.Join(got, "\n"))
		})
	}
}

// parse parses one workflow with actionlint's parser, failing on its errors.
func parse(t *testing.T, path string, src []byte) *actionlint.Workflow {
	t.Helper()
	w, errs := actionlint.Parse(src)
	for _, e := range errs {
		t.Errorf("%s:%d: %s", path, e.Line, e.Message)
	}
	if w == nil {
		t.Fatalf("%s: not a workflow", path)
	}
	return w
}

// TestProjectRules fails on any project rule broken in .github/workflows.
func TestProjectRules(t *testing.T) {
	for _, f := range workflowFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, finding := range Check(f, parse(t, f, src)) {
			t.Error(finding)
		}
	}
}

// TestMakeTestRunsExactlyMakeTest: the pull-request workflow runs .ci/run,
// and .ci/run runs exactly `make test`, the README's command.
func TestMakeTestRunsExactlyMakeTest(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", ".github", "workflows", "ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w := parse(t, "ci.yaml", src)
	found := false
	for _, job := range w.Jobs {
		for _, st := range job.Steps {
			found = found || strings.Contains(runScript(st), ".ci/run 2>&1 | tee make-test.log")
		}
	}
	if !found {
		t.Error("no ci.yaml step runs .ci/run")
	}
	run, err := os.ReadFile(filepath.Join("..", "..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var makes []string
	for _, line := range strings.Split(string(run), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "make ") || l == "make" {
			makes = append(makes, l)
		}
	}
	if want := []string{"make test || status=$?"}; !slices.Equal(makes, want) {
		t.Errorf(".ci/run runs %q, want exactly %q", makes, want)
	}
}

// TestProjectRulesCatchBrokenWorkflows proves each rule can fail.
func TestProjectRulesCatchBrokenWorkflows(t *testing.T) {
	const header = "name: bad\non: [push]\njobs:\n"
	const kitKey = "      - id: kit\n        run: echo \"hash=$(go run ./hack/kit -hash)\" >>\"$GITHUB_OUTPUT\"\n"
	job := func(steps string) string { return header + "  a:\n    runs-on: ubuntu-latest\n    steps:\n" + steps }
	kubeStep := func(script string) string {
		return job("      - name: kc\n        env:\n          KC: ${{ secrets.E2E_KUBECONFIG_EDGE }}\n        run: |\n" + script)
	}
	tests := []struct {
		name, workflow, rule string
	}{
		{"secret in a script", job("      - run: echo ${{ secrets.TOKEN }} | docker login\n"), RuleSecretInRun},
		{"kubeconfig without umask", kubeStep("          printf '%s' \"$KC\" >\"$RUNNER_TEMP/kc\"\n"), RuleKubeconfig},
		{"kubeconfig outside the runner's temp", kubeStep("          umask 077\n          printf '%s' \"$KC\" >kc\n"), RuleKubeconfig},
		{"kubeconfig echoed", kubeStep("          umask 077\n          printf '%s' \"$KC\" >\"$RUNNER_TEMP/kc\"\n          echo \"$KC\"\n"), RuleKubeconfig},
		{"kit cache keyed by hand", job("      - uses: actions/cache/restore@v5\n        with:\n          path: ~/.cache/flux-fleet/kit\n          key: kit-v1\n"), RuleKitCacheKey},
		{"kit cache saved on every branch", job(kitKey + "      - uses: actions/cache/save@v5\n        with:\n          path: ~/.cache/flux-fleet/kit\n          key: k-${{ steps.kit.outputs.hash }}\n"), RuleKitCacheSave},
		{"kit cache by actions/cache", job(kitKey + "      - uses: actions/cache@v5\n        with:\n          path: ~/.cache/flux-fleet/kit\n          key: k-${{ steps.kit.outputs.hash }}\n"), RuleKitCacheSave},
		{"summary not always", header + "  e2e:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n" +
			"  summary:\n    needs: [e2e]\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n", RuleSummaryNeeds},
		{"summary misses a job", header + "  e2e:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n" +
			"  summary:\n    if: always()\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n", RuleSummaryNeeds},
		{"scenarios run by a nightly job", job("      - run: gotestsum -- -count=1 ./e2e/...\n"), RuleScenariosPkg},
		{"no notice without clusters", job("      - env:\n          C: ${{ vars.E2E_EXISTING_CLUSTERS }}\n        run: '[ -n \"$C\" ] || exit 0'\n"), RuleClustersNotes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings := Check("bad.yaml", parse(t, "bad.yaml", []byte(tt.workflow)))
			var rules []string
			for _, f := range findings {
				rules = append(rules, f.Rule)
			}
			if !slices.Equal(rules, []string{tt.rule}) {
				t.Errorf("findings %v, want exactly one %s", findings, tt.rule)
			}
		})
	}
}
