package gitserver

import (
	"context"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// requireGit skips a test that needs the git CLI when it is missing, but
// fails it under CI=true, where every test must run.
func requireGit(t *testing.T) {
	t.Helper()
	testsupport.RequireGit(t, "the snapshot and the upload-pack handler both run it")
}

// fixtureRepo builds a checkout with every kind of file state a snapshot
// must handle.
func fixtureRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testsupport.Git(t, dir, "init", "--quiet", "--initial-branch=main")
	testsupport.WriteFile(t, dir, ".gitignore", "ignored.txt\n*.log\nbuild/\n")
	testsupport.WriteFile(t, dir, "tracked.txt", "tracked\n")
	testsupport.WriteFile(t, dir, "modified.txt", "old\n")
	testsupport.WriteFile(t, dir, "deleted.txt", "soon gone\n")
	testsupport.WriteFile(t, dir, "clusters/staging/kustomization.yaml", "resources: []\n")
	testsupport.WriteFile(t, dir, "forced.log", "tracked although ignored\n")
	testsupport.Git(t, dir, "add", ".gitignore", "tracked.txt", "modified.txt", "deleted.txt", "clusters")
	testsupport.Git(t, dir, "add", "--force", "forced.log")
	testsupport.Git(t, dir, "commit", "--quiet", "-m", "initial")

	testsupport.WriteFile(t, dir, "modified.txt", "new\n")
	if err := os.Remove(filepath.Join(dir, "deleted.txt")); err != nil {
		t.Fatal(err)
	}
	testsupport.WriteFile(t, dir, "untracked.txt", "untracked\n")
	testsupport.WriteFile(t, dir, "clusters/staging/new.yaml", "kind: ConfigMap\n")
	testsupport.WriteFile(t, dir, "staged.txt", "staged\n")
	testsupport.Git(t, dir, "add", "staged.txt")
	testsupport.WriteFile(t, dir, "ignored.txt", "secret\n")
	testsupport.WriteFile(t, dir, "debug.log", "noise\n")
	testsupport.WriteFile(t, dir, "build/out.bin", "binary\n")
	return dir
}

func treeFiles(t *testing.T, bare, rev string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, name := range strings.Split(testsupport.Git(t, "", "--git-dir="+bare, "ls-tree", "-r", "--name-only", rev), "\n") {
		if name != "" {
			files[name] = testsupport.Git(t, "", "--git-dir="+bare, "show", rev+":"+name)
		}
	}
	return files
}

func objectFiles(t *testing.T, gitDir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(filepath.Join(gitDir, "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestSnapshotContents(t *testing.T) {
	requireGit(t)
	repo := fixtureRepo(t)
	plain := t.TempDir()
	testsupport.WriteFile(t, plain, "a.txt", "a\n")
	testsupport.WriteFile(t, plain, "dir/b.yaml", "b: 1\n")
	testsupport.WriteFile(t, plain, ".gitignore", "a.txt\n")

	tests := []struct {
		name    string
		src     string
		want    map[string]string // path → content
		missing []string
	}{
		{
			name: "checkout root",
			src:  repo,
			want: map[string]string{
				"tracked.txt": "tracked", "modified.txt": "new", "untracked.txt": "untracked",
				"staged.txt": "staged", "forced.log": "tracked although ignored",
				"clusters/staging/kustomization.yaml": "resources: []", "clusters/staging/new.yaml": "kind: ConfigMap",
				".gitignore": "ignored.txt\n*.log\nbuild/",
			},
			missing: []string{"deleted.txt", "ignored.txt", "debug.log", "build/out.bin"},
		},
		{
			name: "subdirectory of a checkout",
			src:  filepath.Join(repo, "clusters"),
			want: map[string]string{
				"staging/kustomization.yaml": "resources: []", "staging/new.yaml": "kind: ConfigMap",
			},
			missing: []string{"tracked.txt", "clusters/staging/new.yaml"},
		},
		{
			name:    "plain directory: its .gitignore honoured",
			src:     plain,
			want:    map[string]string{"dir/b.yaml": "b: 1", ".gitignore": "a.txt"},
			missing: []string{"a.txt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			statusBefore := testsupport.Git(t, repo, "status", "--porcelain")
			objectsBefore := objectFiles(t, filepath.Join(repo, ".git"))

			bare := filepath.Join(t.TempDir(), "r.git")
			snap, err := newSnapshotter(t.Context(), tt.src, bare, "main", filepath.Join(t.TempDir(), "index"), nil)
			if err != nil {
				t.Fatal(err)
			}
			rev, err := snap.commit(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			got := treeFiles(t, bare, rev)
			for name, content := range tt.want {
				if got[name] != content {
					t.Errorf("%s = %q, want %q", name, got[name], content)
				}
			}
			for _, name := range tt.missing {
				if _, ok := got[name]; ok {
					t.Errorf("%s must not be in the snapshot", name)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("snapshot has %d files, want %d: %v", len(got), len(tt.want), got)
			}
			if head := testsupport.Git(t, "", "--git-dir="+bare, "rev-parse", "refs/heads/main"); head != rev {
				t.Errorf("main = %s, want %s", head, rev)
			}

			// The checkout must be left exactly as it was.
			if after := testsupport.Git(t, repo, "status", "--porcelain"); after != statusBefore {
				t.Errorf("git status changed:\nbefore:\n%s\nafter:\n%s", statusBefore, after)
			}
			if after := objectFiles(t, filepath.Join(repo, ".git")); !slices.Equal(after, objectsBefore) {
				t.Errorf("snapshot wrote into the checkout's object store")
			}
		})
	}
}

func TestStartRefusesWildcardAddress(t *testing.T) {
	for _, addr := range []string{"", "0.0.0.0", "::", "localhost"} {
		if s, err := Start(t.Context(), Options{Addr: addr, SourceDir: t.TempDir()}); err == nil {
			_ = s.Close()
			t.Errorf("Start(Addr %q) succeeded, want error", addr)
		}
	}
}

func TestRepoNameValidation(t *testing.T) {
	for _, tt := range []struct {
		name, want string // want "" = refused
	}{
		{"", "fleet"},
		{"fleet-e2e", "fleet-e2e"},
		{"fleet.git", "fleet"},
		{"v1.2_x", "v1.2_x"},
		{"a/b", ""},
		{`a\b`, ""},
		{"..", ""},
		{".hidden", ""},
		{"my repo", ""},
		{"%2e%2e", ""},
	} {
		o := Options{Addr: "127.0.0.1", SourceDir: ".", RepoName: tt.name}
		err := o.setDefaults()
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("RepoName %q accepted as %q, want it refused", tt.name, o.RepoName)
		case tt.want == "" && !strings.Contains(err.Error(), "want letters, digits"):
			t.Errorf("RepoName %q: error %v does not say what is allowed", tt.name, err)
		case tt.want != "" && (err != nil || o.RepoName != tt.want):
			t.Errorf("RepoName %q = %q, %v; want %q", tt.name, o.RepoName, err, tt.want)
		}
	}
}

func cloneURL(t *testing.T, raw, user, pass string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

func TestServeCloneFetch(t *testing.T) {
	requireGit(t)
	repo := fixtureRepo(t)
	ctx := t.Context()
	start := time.Now()
	s, err := Start(ctx, Options{Addr: "127.0.0.1", SourceDir: repo})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start: %.0fms, serving %s", float64(time.Since(start).Microseconds())/1000, s.URL())
	defer func() {
		tmp := s.tmpDir
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Errorf("Close left %s behind", tmp)
		}
	}()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/fleet.git") {
		t.Errorf("URL() = %s", s.URL())
	}
	user, pass := s.Credentials()
	if user == "" || len(pass) < 16 {
		t.Errorf("Credentials() = %q, %q: want random non-empty ones", user, pass)
	}
	first := s.Revision()

	t.Run("wrong password rejected", func(t *testing.T) {
		cmd := exec.Command("git", "clone", "--quiet", cloneURL(t, s.URL(), user, "wrong"), filepath.Join(t.TempDir(), "c"))
		cmd.Env = testsupport.GitEnv()
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatal("clone with a wrong password succeeded")
		}
		if !strings.Contains(string(out), "Authentication failed") && !strings.Contains(string(out), "401") {
			t.Errorf("unexpected clone error: %s", out)
		}
	})

	clone := filepath.Join(t.TempDir(), "clone")
	testsupport.Git(t, "", "clone", "--quiet", "--branch", "main", cloneURL(t, s.URL(), user, pass), clone)
	if got := testsupport.Git(t, clone, "rev-parse", "HEAD"); got != first {
		t.Errorf("cloned HEAD %s, want %s", got, first)
	}
	if b, err := os.ReadFile(filepath.Join(clone, "modified.txt")); err != nil || string(b) != "new\n" {
		t.Errorf("clone has modified.txt = %q, %v", b, err)
	}

	testsupport.WriteFile(t, repo, "clusters/production/kustomization.yaml", "resources: []\n")
	start = time.Now()
	second, err := s.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Publish: %.0fms", float64(time.Since(start).Microseconds())/1000)
	testsupport.Git(t, clone, "fetch", "--quiet", "origin")
	if got := testsupport.Git(t, clone, "rev-parse", "origin/main"); got != second {
		t.Errorf("fetched origin/main %s, want %s", got, second)
	}
	if parent := testsupport.Git(t, clone, "rev-parse", "origin/main^"); parent != first {
		t.Errorf("parent of the new snapshot %s, want the previous one %s", parent, first)
	}
	if !strings.Contains(testsupport.Git(t, clone, "ls-tree", "-r", "--name-only", "origin/main"), "clusters/production/kustomization.yaml") {
		t.Error("new file missing from the published snapshot")
	}

	// Nothing changed: still a new revision, for clusters kept from before.
	third, err := s.Publish(ctx)
	if err != nil || third == second {
		t.Errorf("Publish without changes = %s, %v; want a new commit", third, err)
	}
	if got, want := s.FluxRevision(third), "main@sha1:"+third; got != want {
		t.Errorf("FluxRevision = %s, want %s", got, want)
	}

	if err := exec.Command("git", "-C", clone, "push", "--quiet", "origin", "HEAD:refs/heads/other").Run(); err == nil {
		t.Error("push to the snapshot server succeeded, want it refused")
	}
}

// TestPublishThisRepository snapshots the project's own checkout, timing
// it, and checks the snapshot against git's own listings: for this package's
// directory exactly the files git would commit (tracked and not deleted,
// plus untracked-not-ignored), and nowhere any file git ignores.
func TestPublishThisRepository(t *testing.T) {
	requireGit(t)
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		testsupport.SkipOrFail(t, "not running inside a git checkout")
	}
	root := strings.TrimSpace(string(top))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	s, err := Start(ctx, Options{Addr: "127.0.0.1", SourceDir: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("Start (first snapshot) of this repository: %.0fms", float64(time.Since(start).Microseconds())/1000)
	start = time.Now()
	rev, err := s.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Publish of this repository: %.0fms (%s)", float64(time.Since(start).Microseconds())/1000, rev)

	served := strings.Split(testsupport.Git(t, "", "--git-dir="+s.snap.bare, "ls-tree", "-r", "--name-only", "--full-tree", rev), "\n")
	pkg := testsupport.Git(t, "", "rev-parse", "--show-prefix") // this package, as tests run in its directory
	want := map[string]bool{}
	for _, f := range gitList(t, "ls-files", "--cached", "--others", "--exclude-standard", "--full-name") {
		want[f] = true
	}
	for _, f := range gitList(t, "ls-files", "--deleted", "--full-name") {
		delete(want, f)
	}
	var got []string
	for _, f := range served {
		if strings.HasPrefix(f, pkg) {
			got = append(got, f)
		}
	}
	slices.Sort(got)
	if wantList := slices.Sorted(maps.Keys(want)); !slices.Equal(got, wantList) {
		t.Errorf("snapshot of %s holds %q\nwant what git lists: %q", pkg, got, wantList)
	}
	if !slices.Contains(got, pkg+"gitserver_test.go") {
		t.Errorf("snapshot lacks %sgitserver_test.go", pkg)
	}
	// Ignored files anywhere in the checkout (whole directories end in "/").
	ignored := strings.Split(testsupport.Git(t, root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"), "\x00")
	for _, f := range served {
		for _, ig := range ignored {
			if ig != "" && (f == ig || strings.HasSuffix(ig, "/") && strings.HasPrefix(f, ig)) {
				t.Errorf("snapshot serves %s, which git ignores (%s)", f, ig)
			}
		}
	}
}

// gitList runs git in the current directory and returns the NUL-separated
// paths it lists.
func gitList(t *testing.T, args ...string) []string {
	t.Helper()
	var out []string
	for _, f := range strings.Split(testsupport.Git(t, "", append(args, "-z")...), "\x00") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// TestGoGitClone clones with go-git, the client source-controller uses.
func TestGoGitClone(t *testing.T) {
	requireGit(t)
	repo := fixtureRepo(t)
	s, err := Start(t.Context(), Options{Addr: "127.0.0.1", SourceDir: repo, RepoName: "fleet-e2e", Branch: "trunk"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	user, pass := s.Credentials()
	for _, tt := range []struct {
		name    string
		pass    string
		wantErr bool
	}{
		{"right password", pass, false},
		{"wrong password", pass + "x", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := gogit.PlainCloneContext(t.Context(), t.TempDir(), false, &gogit.CloneOptions{
				URL:           s.URL(),
				Auth:          &githttp.BasicAuth{Username: user, Password: tt.pass},
				ReferenceName: plumbing.NewBranchReferenceName("trunk"),
				SingleBranch:  true,
			})
			if tt.wantErr {
				if err == nil {
					t.Fatal("clone succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			head, err := r.Head()
			if err != nil || head.Hash().String() != s.Revision() {
				t.Errorf("HEAD = %v, %v; want %s", head, err, s.Revision())
			}
		})
	}
}
