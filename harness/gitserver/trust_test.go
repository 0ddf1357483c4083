package gitserver

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// servedFiles clones what s serves with the git CLI over HTTP, with the
// server's credentials, and returns every file of the checkout by path.
func servedFiles(t *testing.T, s *Server) map[string]string {
	t.Helper()
	user, pass := s.Credentials()
	clone := filepath.Join(t.TempDir(), "clone")
	testsupport.Git(t, "", "clone", "--quiet", "--branch", s.Branch(), cloneURL(t, s.URL(), user, pass), clone)
	files := map[string]string{}
	err := filepath.WalkDir(clone, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(clone, p)
			files[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the clone: %v", err)
	}
	return files
}

// isolateGitConfig points git at an empty global config and no system
// config, so nothing on the machine marks a checkout as safe.
func isolateGitConfig(t *testing.T) {
	t.Helper()
	home := t.TempDir()
	empty := filepath.Join(home, "gitconfig")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_GLOBAL", empty)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
}

// TestRefusesCheckoutGitDistrusts: a checkout owned by another user, whose
// .gitignore hides a kubeconfig, is not served as a plain directory (which
// would serve the kubeconfig): Start fails, naming the directory, git's
// reason and the safe.directory fix.
func TestRefusesCheckoutGitDistrusts(t *testing.T) {
	requireGit(t)
	isolateGitConfig(t)
	repo := t.TempDir()
	testsupport.Git(t, repo, "init", "--quiet", "--initial-branch=main")
	testsupport.WriteFile(t, repo, ".gitignore", ".work/\n")
	testsupport.WriteFile(t, repo, "clusters/staging/kustomization.yaml", "resources: []\n")
	testsupport.Git(t, repo, "add", ".")
	testsupport.Git(t, repo, "commit", "--quiet", "-m", "initial")
	testsupport.WriteFile(t, repo, ".work/x.kubeconfig", "SECRET-admin-kubeconfig\n")
	const otherUID = 12345
	err := filepath.WalkDir(repo, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, otherUID, otherUID)
	})
	if err != nil {
		testsupport.SkipOrFail(t, "cannot give the checkout to another user (tests must run as root for this): "+err.Error())
	}

	for name, src := range map[string]string{"root": repo, "subdirectory": filepath.Join(repo, "clusters")} {
		t.Run(name, func(t *testing.T) {
			s, err := Start(t.Context(), Options{Addr: "127.0.0.1", SourceDir: src})
			if err == nil {
				files := servedFiles(t, s)
				_ = s.Close()
				t.Fatalf("Start served a checkout git refuses to read: %v", files)
			}
			t.Logf("error: %v", err)
			for _, want := range []string{
				"the checkout that contains " + src,
				"detected dubious ownership in repository at '" + repo + "'",
				"git config --global --add safe.directory " + repo,
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not say %q", err, want)
				}
			}
			if _, err := ResolveRevision(t.Context(), src, "HEAD"); err == nil || !strings.Contains(err.Error(), "safe.directory") {
				t.Errorf("ResolveRevision = %v, want the same refusal", err)
			}
		})
	}
}

// TestPlainDirectoryHonoursIgnoresAndExclude serves a directory that is in
// no checkout: what its .gitignore hides and what Exclude names (not
// ignored) are absent from a clone, before and after a Publish.
func TestPlainDirectoryHonoursIgnoresAndExclude(t *testing.T) {
	requireGit(t)
	dir := t.TempDir()
	testsupport.WriteFile(t, dir, ".gitignore", ".work/\n")
	testsupport.WriteFile(t, dir, ".work/x.kubeconfig", "SECRET-admin-kubeconfig\n")
	testsupport.WriteFile(t, dir, "clusters/staging/kustomization.yaml", "resources: []\n")
	testsupport.WriteFile(t, dir, "artifacts/run-1/kubeconfig", "SECRET-artifact\n")
	s, err := Start(t.Context(), Options{Addr: "127.0.0.1", SourceDir: dir, Exclude: []string{filepath.Join(dir, "artifacts")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(t *testing.T, want map[string]string) {
		t.Helper()
		files := servedFiles(t, s)
		for name, content := range want {
			if files[name] != content {
				t.Errorf("served %s = %q, want %q", name, files[name], content)
			}
		}
		for name, content := range files {
			if strings.Contains(content, "SECRET") {
				t.Errorf("served %s, which is ignored or excluded", name)
			}
		}
		if len(files) != len(want) {
			t.Errorf("served %d files, want %d: %v", len(files), len(want), files)
		}
	}
	want := map[string]string{".gitignore": ".work/\n", "clusters/staging/kustomization.yaml": "resources: []\n"}
	check(t, want)

	testsupport.WriteFile(t, dir, "artifacts/run-2/kubeconfig", "SECRET-artifact\n")
	testsupport.WriteFile(t, dir, ".work/y.kubeconfig", "SECRET-admin-kubeconfig\n")
	testsupport.WriteFile(t, dir, "clusters/production/kustomization.yaml", "resources: []\n")
	if _, err := s.Publish(t.Context()); err != nil {
		t.Fatal(err)
	}
	want["clusters/production/kustomization.yaml"] = "resources: []\n"
	check(t, want)
}

// TestExcludeInCheckout: excluded paths are absent from snapshots even when
// tracked or untracked-not-ignored, and from a served revision that holds
// them; a source directory inside an excluded path is refused.
func TestExcludeInCheckout(t *testing.T) {
	requireGit(t)
	repo := t.TempDir()
	testsupport.Git(t, repo, "init", "--quiet", "--initial-branch=main")
	testsupport.WriteFile(t, repo, "fleet/clusters/staging/kustomization.yaml", "resources: []\n")
	testsupport.WriteFile(t, repo, "fleet/artifacts/committed.txt", "SECRET-committed\n")
	testsupport.Git(t, repo, "add", ".")
	testsupport.Git(t, repo, "commit", "--quiet", "-m", "initial")
	testsupport.WriteFile(t, repo, "fleet/artifacts/untracked.txt", "SECRET-untracked\n")
	testsupport.WriteFile(t, repo, "fleet/.work/admin.kubeconfig", "SECRET-work\n")
	src := filepath.Join(repo, "fleet")
	exclude := []string{filepath.Join(src, "artifacts"), filepath.Join(src, ".work"), filepath.Join(repo, "elsewhere")}

	s, err := Start(t.Context(), Options{Addr: "127.0.0.1", SourceDir: src, Exclude: exclude})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	assertOnly := func(t *testing.T, files map[string]string) {
		t.Helper()
		if len(files) != 1 || files["clusters/staging/kustomization.yaml"] != "resources: []\n" {
			t.Errorf("served %v, want only clusters/staging/kustomization.yaml", files)
		}
	}
	t.Run("working tree", func(t *testing.T) { assertOnly(t, servedFiles(t, s)) })

	rev, err := s.PublishRevision(t.Context(), "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("revision", func(t *testing.T) {
		if got := testsupport.Git(t, "", "--git-dir="+s.snap.bare, "ls-tree", "-r", "--name-only", rev); got != "clusters/staging/kustomization.yaml" {
			t.Errorf("served revision holds %q, want only clusters/staging/kustomization.yaml", got)
		}
		assertOnly(t, servedFiles(t, s))
	})
	if status := testsupport.Git(t, repo, "status", "--porcelain"); status != "?? fleet/.work/\n?? fleet/artifacts/untracked.txt" {
		t.Errorf("the checkout's status changed: %q", status)
	}

	for _, outer := range []string{src, repo} {
		_, err := Start(t.Context(), Options{Addr: "127.0.0.1", SourceDir: src, Exclude: []string{outer}})
		if err == nil || !strings.Contains(err.Error(), "source directory "+src+" is inside "+outer) {
			t.Errorf("Start with %s excluded = %v, want it refused", outer, err)
		}
	}
}

// TestRefusesGitDirectory: a bare repository is no work tree, and not a
// plain directory either.
func TestRefusesGitDirectory(t *testing.T) {
	requireGit(t)
	bare := filepath.Join(t.TempDir(), "r.git")
	testsupport.Git(t, "", "init", "--quiet", "--bare", bare)
	s, err := Start(t.Context(), Options{Addr: "127.0.0.1", SourceDir: bare})
	if err == nil {
		_ = s.Close()
		t.Fatal("Start served a bare repository")
	}
	if !strings.Contains(err.Error(), bare+" is inside a git directory or bare repository, not a work tree") {
		t.Errorf("error %v does not say %s is no work tree", err, bare)
	}
}

// TestCheckoutFiles: the listing the chart server packages from is what a
// working-tree snapshot holds.
func TestCheckoutFiles(t *testing.T) {
	requireGit(t)
	repo := fixtureRepo(t)
	files, inCheckout, err := CheckoutFiles(t.Context(), repo)
	if err != nil || !inCheckout {
		t.Fatalf("CheckoutFiles(checkout) = %v, %v, %v", files, inCheckout, err)
	}
	snap, err := newSnapshotter(t.Context(), repo, filepath.Join(t.TempDir(), "r.git"), "main", filepath.Join(t.TempDir(), "index"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := snap.commit(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := testsupport.Git(t, "", "--git-dir="+snap.bare, "ls-tree", "-r", "--name-only", rev); strings.Join(files, "\n") != want {
		t.Errorf("CheckoutFiles = %q\nsnapshot holds %q", files, want)
	}
	sub, _, err := CheckoutFiles(t.Context(), filepath.Join(repo, "clusters"))
	if err != nil || strings.Join(sub, " ") != "staging/kustomization.yaml staging/new.yaml" {
		t.Errorf("CheckoutFiles(subdirectory) = %q, %v; want paths relative to it", sub, err)
	}

	plain := t.TempDir()
	if files, inCheckout, err := CheckoutFiles(t.Context(), plain); err != nil || inCheckout || files != nil {
		t.Errorf("CheckoutFiles(plain directory) = %v, %v, %v; want not in a checkout", files, inCheckout, err)
	}
	// Without git, a directory with no .git above it is plain all the
	// same; a checkout cannot be read.
	t.Setenv("PATH", t.TempDir())
	if _, inCheckout, err := CheckoutFiles(t.Context(), plain); err != nil || inCheckout {
		t.Errorf("CheckoutFiles(plain directory) without git = %v, %v; want not in a checkout", inCheckout, err)
	}
	if _, _, err := CheckoutFiles(t.Context(), repo); err == nil || !strings.Contains(err.Error(), "git is needed to tell which files of "+repo+" git ignores") {
		t.Errorf("CheckoutFiles(checkout) without git = %v, want an error saying git is needed", err)
	}
}
