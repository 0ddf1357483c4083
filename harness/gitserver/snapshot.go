package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// snapshotter turns a working tree into commits of a bare repository with
// the git CLI. For a git checkout it works on a copy of the checkout's
// index (so tracked files, .gitignore, info/exclude and core.excludesFile
// count exactly as for `git status`) and writes new objects only into the
// bare repository, which borrows the checkout's objects as alternates: the
// checkout itself is never written to.
type snapshotter struct {
	src    string // directory to snapshot
	bare   string
	branch string
	index  string // temporary index file

	inRepo     bool
	prefix     string // src relative to the checkout root, "" or "dir/"
	realIndex  string // the checkout's index
	srcObjects string // the checkout's object directory
	count      int
}

func newSnapshotter(ctx context.Context, src, bare, branch, index string) (*snapshotter, error) {
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("source directory %s: not a readable directory (%v)", src, err)
	}
	s := &snapshotter{src: src, bare: bare, branch: branch, index: index}
	if _, err := s.git(ctx, "", nil, "init", "--quiet", "--bare", "--initial-branch="+branch, bare); err != nil {
		return nil, fmt.Errorf("creating bare repository: %w", err)
	}
	co, err := locateCheckout(ctx, src)
	if err != nil {
		return nil, err
	}
	if co == nil {
		return s, nil // not a checkout: snapshot every file
	}
	s.inRepo, s.realIndex, s.srcObjects, s.prefix = true, co.index, co.objects, co.prefix
	alternates := filepath.Join(bare, "objects", "info", "alternates")
	if err := os.WriteFile(alternates, []byte(s.srcObjects+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("linking the checkout's objects: %w", err)
	}
	return s, nil
}

// checkout is where a source directory sits in its git checkout.
type checkout struct {
	index   string // the checkout's index file
	objects string // the checkout's object directory
	prefix  string // the directory relative to the checkout root, "" or "dir/"
}

// locateCheckout finds the checkout that contains dir; nil when dir is in none.
func locateCheckout(ctx context.Context, dir string) (*checkout, error) {
	out, err := runGit(ctx, dir, nil, "rev-parse", "--is-inside-work-tree")
	if err != nil || strings.TrimSpace(out) != "true" {
		return nil, nil
	}
	out, err = runGit(ctx, dir, nil, "rev-parse", "--path-format=absolute", "--git-path", "index", "--git-path", "objects")
	if err != nil {
		return nil, fmt.Errorf("locating the git directory of %s: %w", dir, err)
	}
	paths := strings.Split(strings.TrimSpace(out), "\n")
	if len(paths) != 2 {
		return nil, fmt.Errorf("locating the git directory of %s: unexpected output %q", dir, out)
	}
	prefix, err := runGit(ctx, dir, nil, "rev-parse", "--show-prefix")
	if err != nil {
		return nil, fmt.Errorf("locating %s in its checkout: %w", dir, err)
	}
	return &checkout{index: paths[0], objects: paths[1], prefix: strings.TrimSpace(prefix)}, nil
}

// revisionTree resolves rev in the checkout containing dir to a commit and
// returns it with the tree of dir (prefix in the checkout) at that commit.
func revisionTree(ctx context.Context, dir, prefix, rev string) (commit, tree string, err error) {
	if strings.TrimSpace(rev) == "" {
		return "", "", errors.New("empty git revision")
	}
	out, err := runGit(ctx, dir, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", "", fmt.Errorf("git revision %q is not a commit of the repository of %s (fetched? for a remote branch, e.g. origin/main, run git fetch)", rev, dir)
	}
	commit = strings.TrimSpace(out)
	spec := commit + "^{tree}"
	if p := strings.TrimSuffix(prefix, "/"); p != "" {
		spec = commit + ":" + p
	}
	out, err = runGit(ctx, dir, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", spec)
	if err == nil {
		tree = strings.TrimSpace(out)
		if kind, terr := runGit(ctx, dir, nil, "cat-file", "-t", tree); terr != nil || strings.TrimSpace(kind) != "tree" {
			err = errors.New("not a directory")
		}
	}
	if err != nil {
		return "", "", fmt.Errorf("git revision %q (commit %s) has no directory %s: was the fleet committed there?", rev, commit, strings.TrimSuffix(prefix, "/"))
	}
	return commit, tree, nil
}

// commit records the working tree as a commit with the given parent ("" for
// none), moves the branch to it and returns its hash.
func (s *snapshotter) commit(ctx context.Context, parent string) (string, error) {
	tree, err := s.writeTree(ctx)
	if err != nil {
		return "", err
	}
	s.count++
	msg := fmt.Sprintf("Snapshot %d of the working tree %s", s.count, filepath.Base(s.src))
	if head := s.head(ctx); head != "" {
		msg += " (based on " + head[:min(len(head), 12)] + ")"
	}
	return s.commitTree(ctx, tree, parent, msg)
}

// head is the checkout's HEAD commit, "" outside a checkout or before its
// first commit.
func (s *snapshotter) head(ctx context.Context) string {
	if !s.inRepo {
		return ""
	}
	out, err := s.git(ctx, s.src, nil, "rev-parse", "--verify", "--quiet", "HEAD")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// commitRevision records the source directory's tree at rev, unchanged, as a
// commit with the given parent; it returns the new commit and the resolved
// source commit.
func (s *snapshotter) commitRevision(ctx context.Context, rev, parent string) (served, source string, err error) {
	if !s.inRepo {
		return "", "", fmt.Errorf("%s is not inside a git checkout: only a checkout has revisions to serve", s.src)
	}
	source, tree, err := revisionTree(ctx, s.src, s.prefix, rev)
	if err != nil {
		return "", "", err
	}
	s.count++
	where := strings.TrimSuffix(s.prefix, "/")
	if where == "" {
		where = "the repository root"
	}
	msg := fmt.Sprintf("Revision %s (%s) of %s, as committed", source[:12], rev, where)
	served, err = s.commitTree(ctx, tree, parent, msg)
	return served, source, err
}

// commitTree commits tree with the given parent ("" for none) and moves the
// branch to the new commit.
func (s *snapshotter) commitTree(ctx context.Context, tree, parent, msg string) (string, error) {
	args := []string{"-c", "commit.gpgSign=false", "--git-dir=" + s.bare, "commit-tree", tree, "-m", msg}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	identity := []string{
		"GIT_AUTHOR_NAME=flux-fleet harness", "GIT_AUTHOR_EMAIL=harness@flux-fleet.invalid",
		"GIT_COMMITTER_NAME=flux-fleet harness", "GIT_COMMITTER_EMAIL=harness@flux-fleet.invalid",
	}
	out, err := s.git(ctx, "", identity, args...)
	if err != nil {
		return "", fmt.Errorf("committing snapshot: %w", err)
	}
	rev := strings.TrimSpace(out)
	update := []string{"--git-dir=" + s.bare, "update-ref", "refs/heads/" + s.branch, rev}
	if parent != "" {
		update = append(update, parent) // refuse if the branch moved under us
	}
	if _, err := s.git(ctx, "", nil, update...); err != nil {
		return "", fmt.Errorf("moving branch %s: %w", s.branch, err)
	}
	return rev, nil
}

func (s *snapshotter) writeTree(ctx context.Context) (string, error) {
	env := []string{"GIT_INDEX_FILE=" + s.index}
	if !s.inRepo {
		// The temporary index persists between snapshots as a stat cache.
		env = append(env, "GIT_DIR="+s.bare, "GIT_WORK_TREE="+s.src)
		if _, err := s.git(ctx, s.src, env, "add", "--all", "--force", "--", "."); err != nil {
			return "", fmt.Errorf("staging files: %w", err)
		}
		out, err := s.git(ctx, s.src, env, "write-tree")
		if err != nil {
			return "", fmt.Errorf("writing tree: %w", err)
		}
		return strings.TrimSpace(out), nil
	}

	// Starting from the checkout's index keeps tracked files that match an
	// ignore pattern, and its stat data saves re-hashing unchanged files.
	if err := copyFile(s.realIndex, s.index); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("copying the index: %w", err)
	}
	if err := os.Remove(s.index + ".lock"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	env = append(env,
		"GIT_OBJECT_DIRECTORY="+filepath.Join(s.bare, "objects"),
		"GIT_ALTERNATE_OBJECT_DIRECTORIES="+s.srcObjects,
	)
	if _, err := s.git(ctx, s.src, env, "add", "--all", "--", "."); err != nil {
		return "", fmt.Errorf("staging the working tree: %w", err)
	}
	args := []string{"write-tree"}
	if s.prefix != "" {
		args = append(args, "--prefix="+s.prefix)
	}
	out, err := s.git(ctx, s.src, env, args...)
	if err != nil {
		return "", fmt.Errorf("writing tree: %w", err)
	}
	return strings.TrimSpace(out), nil
}

func (s *snapshotter) git(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	return runGit(ctx, dir, env, args...)
}

// runGit runs the git CLI in dir with the caller's GIT_* variables removed:
// a harness started from a git hook must not snapshot the hook's repo.
func runGit(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
