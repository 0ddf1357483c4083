package fleetenv

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// gitRepo makes a checkout at dir with the given files committed.
func gitRepo(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	testsupport.RequireGit(t, "the fleet is served from a commit")
	for name, content := range files {
		testsupport.WriteFile(t, dir, name, content)
	}
	testsupport.Git(t, dir, "init", "--quiet", "--initial-branch=main")
	testsupport.Git(t, dir, "add", "--all")
	testsupport.Git(t, dir, "commit", "--quiet", "-m", "fleet")
}

const kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n"

// A revision without clusters/production fails the first step in seconds,
// naming the revision, even though the working tree has the directory: the
// checks judge what will be served.
func TestRevisionWithoutEnvironmentFailsBeforeAnyCluster(t *testing.T) {
	fleet := t.TempDir()
	gitRepo(t, fleet, map[string]string{"clusters/staging/kustomization.yaml": kustomization})
	if err := os.MkdirAll(filepath.Join(fleet, "clusters", "production"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fleet, "clusters", "production", "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	r := New(Options{FleetDir: fleet, Envs: []string{"staging", "production"}, Revision: "main", OfflineChecks: true}, io.Discard)
	t.Cleanup(func() { _ = r.Down(context.Background()) })

	start := time.Now()
	err := r.runStep(t.Context(), OfflineChecks())
	if err == nil {
		t.Fatal("offline checks of revision main passed, want: environment production has no directory clusters/production")
	}
	for _, want := range []string{`revision "main"`, "environment production has no directory clusters/production"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("refused in %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// An uncommitted bad edit does not block replaying a good revision, and the
// exported tree is what the checks read.
func TestRevisionTreeIgnoresWorkingTreeEdits(t *testing.T) {
	fleet := t.TempDir()
	gitRepo(t, fleet, map[string]string{"clusters/staging/kustomization.yaml": kustomization})
	if err := os.WriteFile(filepath.Join(fleet, "clusters", "staging", "kustomization.yaml"), []byte("resources: [missing.yaml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := New(Options{FleetDir: fleet, Envs: []string{"staging"}, Revision: "main"}, io.Discard)
	t.Cleanup(func() { _ = r.Down(context.Background()) })
	trees, err := r.work.treesToServe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(trees) != 1 || !strings.HasPrefix(trees[0].Label, `revision "main" (commit `) {
		t.Fatalf("trees = %+v, want the one tree of revision main", trees)
	}
	got, err := os.ReadFile(filepath.Join(trees[0].Dir, "clusters", "staging", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != kustomization {
		t.Errorf("exported tree holds %q, want the committed %q", got, kustomization)
	}
	dir := filepath.Dir(trees[0].Dir)
	if err := r.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the run's temporary directory %s is still there after Down (stat: %v)", dir, err)
	}
}

// With a base and a head, both trees are checked, base first.
func TestUpgradeChecksBaseAndHead(t *testing.T) {
	fleet := t.TempDir()
	gitRepo(t, fleet, map[string]string{"clusters/staging/kustomization.yaml": kustomization})
	r := New(Options{FleetDir: fleet, Envs: []string{"staging"}, Base: "main"}, io.Discard)
	t.Cleanup(func() { _ = r.Down(context.Background()) })
	trees, err := r.work.treesToServe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(trees) != 2 || !strings.HasPrefix(trees[0].Label, `revision "main"`) || trees[1].Label != "working tree" || trees[1].Dir != fleet {
		t.Fatalf("trees = %+v, want revision main then the working tree", trees)
	}
}

// A dead run's scratch directory is reclaimed; a live run's is not.
func TestReclaimScratchOfDeadRunsOnly(t *testing.T) {
	base := t.TempDir()
	live, _, err := newScratch(base)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	dead := filepath.Join(base, scratchPrefix+"dead")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, aliveFile), []byte("pid 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(base, scratchPrefix+"no-alive-file")
	if err := os.MkdirAll(foreign, 0o700); err != nil {
		t.Fatal(err)
	}

	got := reclaimScratch(base)
	if len(got) != 1 || got[0] != dead {
		t.Errorf("reclaimed %v, want only %s", got, dead)
	}
	for _, keep := range []string{live.Dir, foreign} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("%s is still there (stat: %v)", dead, err)
	}
}
