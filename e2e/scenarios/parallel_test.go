package scenarios

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// parallelNote: every scenario that creates a cluster calls t.Parallel, so
// that they all share one pool of go test's -parallel slots (GOMAXPROCS by
// default: two clusters at a time on two cores). A scenario spends most of
// its time waiting (cluster start, Flux, the pod failure grace), so a slot
// is seldom idle. Fleets that can follow one another on one cluster do so
// (sharedCluster: TestBrokenFleetsFailFast, TestEditsOnAKeptCluster): a
// cluster and a Flux install cost more than clearing a fleet off. Other
// scenarios stay independent: each has its own cluster prefix, fleet copy,
// servers and temporary directory. More cores: go test -parallel N.
// TestEveryClusterScenarioIsParallel holds the scenarios to it: one that
// does not call t.Parallel runs alone before the pool starts.
const parallelNote = "see the comment above"

// TestEveryClusterScenarioIsParallel: each Test function of this package
// that reaches requireKind (directly or through the package's own
// functions) calls t.Parallel in its body or its subtests'.
func TestEveryClusterScenarioIsParallel(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("listing the package's test files: %v (%d files)", err, len(files))
	}
	fset := token.NewFileSet()
	bodies := map[string]*ast.BlockStmt{}
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatalf("parsing %s: %v", f, err)
		}
		for _, d := range file.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
				bodies[fn.Name.Name] = fn.Body
			}
		}
	}
	var checked []string
	for name, body := range bodies {
		if !strings.HasPrefix(name, "Test") || name == "TestMain" || !reaches(bodies, name, "requireKind", map[string]bool{}) {
			continue
		}
		checked = append(checked, name)
		if !slices.Contains(callees(body), "Parallel") {
			t.Errorf("%s creates a cluster but never calls t.Parallel: it runs alone, before every parallel scenario (parallelNote)", name)
		}
	}
	slices.Sort(checked)
	if !slices.Contains(checked, "TestBrokenFleetsFailFast") {
		t.Fatalf("the check found no cluster scenario where it must (found %v): the call graph walk is broken", checked)
	}
	t.Logf("cluster scenarios checked: %s", strings.Join(checked, ", "))
}

// reaches reports whether the package function from calls target, directly
// or through other functions of the package (methods included, by name).
func reaches(bodies map[string]*ast.BlockStmt, from, target string, seen map[string]bool) bool {
	if seen[from] {
		return false
	}
	seen[from] = true
	for _, c := range callees(bodies[from]) {
		if c == target || (bodies[c] != nil && reaches(bodies, c, target, seen)) {
			return true
		}
	}
	return false
}

// callees names every function called in body: f(...) as f, x.f(...) as f.
func callees(body *ast.BlockStmt) []string {
	var names []string
	ast.Inspect(body, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				names = append(names, fn.Name)
			case *ast.SelectorExpr:
				names = append(names, fn.Sel.Name)
			}
		}
		return true
	})
	return names
}
