package gitserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// historyRepo builds a checkout with two commits (the first tagged v1) and
// uncommitted edits on top, so that serving a revision can be told apart
// from serving the working tree. It returns the checkout and both commits.
func historyRepo(t *testing.T) (dir, first, second string) {
	t.Helper()
	dir = t.TempDir()
	testsupport.Git(t, dir, "init", "--quiet", "--initial-branch=main")
	testsupport.WriteFile(t, dir, "root.txt", "root\n")
	testsupport.WriteFile(t, dir, "fleet/clusters/staging/app.yaml", "replicas: 1\n")
	testsupport.Git(t, dir, "add", ".")
	testsupport.Git(t, dir, "commit", "--quiet", "-m", "first")
	testsupport.Git(t, dir, "tag", "v1")
	first = testsupport.Git(t, dir, "rev-parse", "HEAD")
	testsupport.WriteFile(t, dir, "fleet/clusters/staging/app.yaml", "replicas: 2\n")
	testsupport.WriteFile(t, dir, "fleet/clusters/production/app.yaml", "replicas: 3\n")
	testsupport.Git(t, dir, "add", ".")
	testsupport.Git(t, dir, "commit", "--quiet", "-m", "second")
	second = testsupport.Git(t, dir, "rev-parse", "HEAD")
	// Uncommitted: an edit, an untracked file and a directory only the
	// working tree has.
	testsupport.WriteFile(t, dir, "fleet/clusters/staging/app.yaml", "replicas: 99\n")
	testsupport.WriteFile(t, dir, "fleet/untracked.yaml", "x: 1\n")
	testsupport.WriteFile(t, dir, "fleet/new/only-here.yaml", "y: 1\n")
	return dir, first, second
}

func TestPublishRevision(t *testing.T) {
	requireGit(t)
	repo, first, second := historyRepo(t)
	plain := t.TempDir()
	testsupport.WriteFile(t, plain, "a.txt", "a\n")
	tests := []struct {
		name     string
		src      string
		rev      string
		wantTree string // the tree the served commit must have, exactly
		want     Origin
		wantErr  string
	}{
		{name: "tag at the checkout root", src: repo, rev: "v1",
			wantTree: testsupport.Git(t, repo, "rev-parse", first+"^{tree}"), want: Origin{Ref: "v1", Commit: first}},
		{name: "relative revision of a subdirectory", src: filepath.Join(repo, "fleet"), rev: "HEAD~1",
			wantTree: testsupport.Git(t, repo, "rev-parse", first+":fleet"), want: Origin{Ref: "HEAD~1", Commit: first, Path: "fleet"}},
		{name: "HEAD is the commit, not the edited working tree", src: filepath.Join(repo, "fleet"), rev: "HEAD",
			wantTree: testsupport.Git(t, repo, "rev-parse", second+":fleet"), want: Origin{Ref: "HEAD", Commit: second, Path: "fleet"}},
		{name: "full commit hash of a nested directory", src: filepath.Join(repo, "fleet", "clusters"), rev: second,
			wantTree: testsupport.Git(t, repo, "rev-parse", second+":fleet/clusters"), want: Origin{Ref: second, Commit: second, Path: "fleet/clusters"}},
		{name: "unknown revision", src: repo, rev: "no-such-branch",
			wantErr: `git revision "no-such-branch" is not a commit of the repository of ` + repo},
		{name: "an option is not a revision", src: repo, rev: "--output=" + filepath.Join(repo, "injected"),
			wantErr: "is not a commit of the repository"},
		{name: "directory absent at that revision", src: filepath.Join(repo, "fleet", "new"), rev: "HEAD",
			wantErr: `git revision "HEAD" (commit ` + second + `) has no directory fleet/new: was the fleet committed there?`},
		{name: "directory added after that revision", src: filepath.Join(repo, "fleet", "clusters", "production"), rev: "v1",
			wantErr: "has no directory fleet/clusters/production"},
		{name: "not a checkout", src: plain, rev: "HEAD", wantErr: plain + " is not inside a git checkout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(t.Context(), Options{Addr: "127.0.0.1", SourceDir: tt.src, Revision: tt.rev})
			if tt.wantErr != "" {
				if err == nil {
					_ = s.Close()
					t.Fatalf("Start succeeded, want an error saying %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v\nwant it to say %q", err, tt.wantErr)
				}
				if _, statErr := os.Stat(filepath.Join(repo, "injected")); statErr == nil {
					t.Fatal("a revision was passed to git as an option")
				}
				// The same check, before anything is started.
				if _, err := ResolveRevision(t.Context(), tt.src, tt.rev); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ResolveRevision error = %v, want it to say %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			bare := s.snap.bare
			if got := testsupport.Git(t, "", "--git-dir="+bare, "rev-parse", s.Revision()+"^{tree}"); got != tt.wantTree {
				t.Errorf("served tree %s, want the committed tree %s", got, tt.wantTree)
			}
			if got := s.Origin(); got != tt.want {
				t.Errorf("Origin() = %+v, want %+v", got, tt.want)
			}
			if got, err := ResolveRevision(t.Context(), tt.src, tt.rev); err != nil || got != tt.want.Commit {
				t.Errorf("ResolveRevision = %s, %v; want %s", got, err, tt.want.Commit)
			}
		})
	}
}

// TestServeRevisionsThenWorkingTree serves a base revision, then a newer
// one, then the working tree, as an upgrade run does, and fetches each over
// HTTP: every publish is a child of the previous one, and each holds
// exactly its source.
func TestServeRevisionsThenWorkingTree(t *testing.T) {
	requireGit(t)
	repo, first, second := historyRepo(t)
	ctx := t.Context()
	s, err := Start(ctx, Options{Addr: "127.0.0.1", SourceDir: filepath.Join(repo, "fleet"), Revision: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	user, pass := s.Credentials()
	clone := filepath.Join(t.TempDir(), "clone")
	testsupport.Git(t, "", "clone", "--quiet", "--branch", "main", cloneURL(t, s.URL(), user, pass), clone)
	base := s.Revision()
	if got, want := testsupport.Git(t, clone, "rev-parse", "HEAD^{tree}"), testsupport.Git(t, repo, "rev-parse", first+":fleet"); got != want {
		t.Errorf("cloned base tree %s, want %s", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(clone, "clusters", "staging", "app.yaml")); err != nil || string(b) != "replicas: 1\n" {
		t.Errorf("base app.yaml = %q, %v; want the first commit's", b, err)
	}

	head, err := s.PublishRevision(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	testsupport.Git(t, clone, "fetch", "--quiet", "origin")
	if got, want := testsupport.Git(t, clone, "rev-parse", "origin/main^{tree}"), testsupport.Git(t, repo, "rev-parse", second+":fleet"); got != want {
		t.Errorf("fetched head tree %s, want %s", got, want)
	}
	if parent := testsupport.Git(t, clone, "rev-parse", "origin/main^"); parent != base {
		t.Errorf("parent of the head %s, want the base %s", parent, base)
	}
	if got := s.Origin(); got != (Origin{Ref: second, Commit: second, Path: "fleet"}) {
		t.Errorf("Origin() after PublishRevision = %+v", got)
	}

	wt, err := s.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testsupport.Git(t, clone, "fetch", "--quiet", "origin")
	if parent := testsupport.Git(t, clone, "rev-parse", "origin/main^"); parent != head {
		t.Errorf("parent of the working-tree snapshot %s, want %s", parent, head)
	}
	if got := testsupport.Git(t, clone, "show", wt+":clusters/staging/app.yaml"); got != "replicas: 99" {
		t.Errorf("working-tree snapshot has app.yaml %q, want the uncommitted edit", got)
	}
	if got := s.Origin(); got != (Origin{Commit: second, WorkingTree: true, Path: "fleet"}) {
		t.Errorf("Origin() after Publish = %+v", got)
	}
	if got := s.Origin().String(); got != "working tree (on "+second[:12]+")" {
		t.Errorf("Origin().String() = %q", got)
	}
}

func TestOriginString(t *testing.T) {
	const c = "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct {
		o    Origin
		want string
	}{
		{Origin{Ref: "HEAD~1", Commit: c}, "commit 0123456789ab (HEAD~1)"},
		{Origin{Ref: c, Commit: c}, "commit 0123456789ab"},
		{Origin{Commit: c, WorkingTree: true}, "working tree (on 0123456789ab)"},
		{Origin{WorkingTree: true}, "working tree"},
	} {
		if got := tt.o.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.o, got, tt.want)
		}
	}
}
