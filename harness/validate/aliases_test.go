package validate

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// copyFleet copies a fixture fleet into a temporary directory the test may edit.
func copyFleet(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fleet")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(testsupport.RepoRoot(t), "fixtures", "fleets", name))); err != nil {
		t.Fatalf("copying fixture fleet %s: %v", name, err)
	}
	return dir
}

// aliasBombYAML is a ConfigMap of about 400 bytes whose levels of nine
// aliases each expand to width^levels nodes.
func aliasBombYAML(levels int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n")
	b.WriteString(`  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for i := 1; i < levels; i++ {
		ref := fmt.Sprintf("*l%d", i-1)
		fmt.Fprintf(&b, "  l%d: &l%d [%s]\n", i, i, strings.Repeat(ref+",", 8)+ref)
	}
	return b.String()
}

func TestAliasExpansion(t *testing.T) {
	cases := []struct {
		name     string
		yaml     string
		expanded int64
	}{
		// document, mapping, a, [x y] (3), b, [*a *a] (1+3+3)
		{"two aliases", "a: &a [x, y]\nb: [*a, *a]\n", 14},
		{"no alias", "a: &a [x, y]\n", 0},
		{"second document", "---\nx: 1\n---\na: &a [x]\nb: *a\n", 4 + 8},
		{"alias inside its own anchor", "a: &a [*a]\n", 5}, // ends: the decoders refuse it
		{"bomb", aliasBombYAML(7), 6_053_462},
		{"count past int64", aliasBombYAML(30), 1<<63 - 1},
		{"invalid YAML", "a: &a [x\nb: *a: :\n", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := aliasExpansion([]byte(tc.yaml)).expanded; got != tc.expanded {
				t.Errorf("expanded = %d, want %d", got, tc.expanded)
			}
		})
	}
}

// TestAliasBombIsAFinding: a file that expands to millions of nodes is
// named instead of being built (which took minutes and tens of gigabytes).
func TestAliasBombIsAFinding(t *testing.T) {
	dir := copyFleet(t, "basic")
	testsupport.WriteFile(t, dir, "infrastructure/redis/bomb.yaml", aliasBombYAML(7))
	testsupport.WriteFile(t, dir, "infrastructure/redis/kustomization.yaml",
		"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: redis\n"+
			"resources:\n  - namespace.yaml\n  - deployment.yaml\n  - service.yaml\n  - bomb.yaml\n")

	// The bound is far above the scan, which is milliseconds, and far
	// below the build of the expansion; the time is logged, not asserted.
	res := validateWithin(t, dir, 30*time.Second)
	for _, env := range []string{"production", "staging"} {
		found := false
		for _, f := range res.Findings {
			found = found || f.Env == env && f.File == "infrastructure/redis/bomb.yaml" &&
				strings.Contains(f.Reason, "expands to 6053462 nodes through YAML aliases")
		}
		if !found {
			t.Errorf("no %s finding names infrastructure/redis/bomb.yaml; findings: %v", env, res.Findings)
		}
	}
}

// TestNamedPipeIsAFinding: a named pipe listed as a resource would block
// the build until someone wrote to it; it is named instead, at once.
func TestNamedPipeIsAFinding(t *testing.T) {
	dir := copyFleet(t, "basic")
	if err := syscall.Mkfifo(filepath.Join(dir, "infrastructure/redis/pipe.yaml"), 0o600); err != nil {
		t.Fatalf("making a named pipe: %v", err)
	}
	testsupport.WriteFile(t, dir, "infrastructure/redis/kustomization.yaml",
		"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: redis\n"+
			"resources:\n  - namespace.yaml\n  - deployment.yaml\n  - service.yaml\n  - pipe.yaml\n")

	res := validateWithin(t, dir, 30*time.Second)
	for _, env := range []string{"production", "staging"} {
		want := Finding{Env: env, File: "infrastructure/redis/pipe.yaml", Reason: specialFileReason(fs.ModeNamedPipe)}
		if !slices.Contains(res.Findings, want) {
			t.Errorf("no finding %v; findings: %v", want, res.Findings)
		}
		if res.Env(env) != nil {
			t.Errorf("environment %s was built past a named pipe", env)
		}
	}
	if !strings.Contains(specialFileReason(fs.ModeNamedPipe), "is a named pipe, not a regular file") {
		t.Errorf("reason %q does not say what the file is", specialFileReason(fs.ModeNamedPipe))
	}
}

// validateWithin runs Validate on dir and fails the test if it has not
// returned within bound; how long it took is logged.
func validateWithin(t *testing.T, dir string, bound time.Duration) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		res, err := Validate(ctx, dir)
		done <- outcome{res, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-time.After(bound):
		t.Fatalf("Validate still running after %s", bound)
	}
	t.Logf("Validate returned in %s", time.Since(start))
	if out.err != nil {
		t.Fatalf("Validate: %v", out.err)
	}
	return out.res
}

// TestSymlinkedEnvironment: clusters/dev -> staging (or a link out of the
// fleet) is reported, not skipped: the e2e harness would deploy it, and
// source-controller's artifact would not hold it.
func TestSymlinkedEnvironment(t *testing.T) {
	for _, target := range []string{"staging", "outside"} {
		t.Run(target, func(t *testing.T) {
			dir := copyFleet(t, "basic")
			link := target
			if target == "outside" {
				link = t.TempDir()
				testsupport.WriteFile(t, link, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: outside\n  namespace: default\n")
			}
			if err := os.Symlink(link, filepath.Join(dir, "clusters", "dev")); err != nil {
				t.Fatal(err)
			}
			res, err := Validate(context.Background(), dir)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			want := Finding{Env: "dev", File: "clusters/dev", Reason: linkedEnvReason}
			if len(res.Findings) != 1 || res.Findings[0] != want {
				t.Errorf("findings %v, want exactly %v", res.Findings, want)
			}
			if res.Env("dev") != nil || res.Env("staging") == nil {
				t.Errorf("environments %v, want staging built and dev not", envNames(res.Envs))
			}
		})
	}
}

func envNames(envs []*Env) []string {
	var names []string
	for _, e := range envs {
		names = append(names, e.Name)
	}
	return names
}
