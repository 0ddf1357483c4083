package workflowlint

import (
	"io"
	"os"
	"path/filepath"
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
