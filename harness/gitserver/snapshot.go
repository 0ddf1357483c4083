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
	"regexp"
	"slices"
	"strings"
)

// snapshotter turns a working tree into commits of a bare repository with
// the git CLI. For a git checkout it works on a copy of the checkout's
// index (so tracked files, .gitignore, info/exclude and core.excludesFile
// count exactly as for `git status`) and writes new objects only into the
// bare repository, which borrows the checkout's objects as alternates: the
// checkout itself is never written to. A plain directory (in no checkout)
// is staged into a temporary index of the bare repository with the same
// ignore rules: its .gitignore files count, as they would once committed.
type snapshotter struct {
	src     string // directory to snapshot
	bare    string
	branch  string
	index   string   // temporary index file
	exclude []string // paths under src never served, relative to src

	inRepo     bool
	prefix     string // src relative to the checkout root, "" or "dir/"
	realIndex  string // the checkout's index
	srcObjects string // the checkout's object directory
	count      int
}

// newSnapshotter prepares snapshots of src into bare; exclude holds
// absolute paths whose files are never served (see Options.Exclude).
func newSnapshotter(ctx context.Context, src, bare, branch, index string, exclude []string) (*snapshotter, error) {
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("source directory %s: not a readable directory (%v)", src, err)
	}
	specs, err := excludedPaths(src, exclude)
	if err != nil {
		return nil, err
	}
	s := &snapshotter{src: src, bare: bare, branch: branch, index: index, exclude: specs}
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

// locateCheckout finds the checkout that contains dir; nil when git says
// dir is in none. A checkout git refuses to read is an error, never "none":
// a plain directory is snapshotted without the checkout's ignore rules and
// info/exclude, which would serve what they hide.
func locateCheckout(ctx context.Context, dir string) (*checkout, error) {
	inside, err := insideWorkTree(ctx, dir)
	if err != nil || !inside {
		return nil, err
	}
	out, err := runGit(ctx, dir, nil, "rev-parse", "--path-format=absolute", "--git-path", "index", "--git-path", "objects")
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

// insideWorkTree reports whether dir is in a git work tree: false only when
// git says there is no repository at or above dir; any other failure
// (dubious ownership, a broken .git file, a corrupt config) is an error
// carrying git's reason.
func insideWorkTree(ctx context.Context, dir string) (bool, error) {
	// Git's messages in English, whatever the locale: they are matched below.
	out, err := runGit(ctx, dir, []string{"LC_ALL=C", "LANGUAGE="}, "rev-parse", "--is-inside-work-tree")
	var gerr *gitError
	switch {
	case errors.Is(err, exec.ErrNotFound) && !underDotGit(dir):
		return false, nil // no git, and nothing it could read either
	case errors.Is(err, exec.ErrNotFound):
		return false, fmt.Errorf("git is needed to tell which files of %s git ignores: %w", dir, err)
	case err == nil && strings.TrimSpace(out) == "true":
		return true, nil
	case err == nil:
		return false, fmt.Errorf("%s is inside a git directory or bare repository, not a work tree: serve a checkout's work tree or a plain directory", dir)
	case errors.As(err, &gerr) && gerr.exitCode() == 128 && strings.Contains(gerr.stderr, "not a git repository (or any"):
		return false, nil
	}
	return false, refusedCheckout(dir, err)
}

// underDotGit reports whether dir or a parent holds a .git entry, the mark
// of a checkout (or a broken one).
func underDotGit(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return true
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

// CheckoutFiles lists the files of dir that git would commit — tracked and
// not deleted, or untracked and not ignored, as a snapshot of the working
// tree holds them — as slash-separated paths relative to dir, sorted.
// inCheckout is false (and files nil) when git says dir is in no checkout;
// a checkout git refuses to read is an error, as for Start.
func CheckoutFiles(ctx context.Context, dir string) (files []string, inCheckout bool, err error) {
	if inCheckout, err = insideWorkTree(ctx, dir); err != nil || !inCheckout {
		return nil, false, err
	}
	listed, err := lsFiles(ctx, dir, "--cached", "--others", "--exclude-standard")
	if err != nil {
		return nil, true, err
	}
	deleted, err := lsFiles(ctx, dir, "--deleted")
	if err != nil {
		return nil, true, err
	}
	for _, f := range listed {
		// A nested repository is listed as "dir/": a snapshot holds none
		// of its files.
		if !strings.HasSuffix(f, "/") && !slices.Contains(deleted, f) {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	return slices.Compact(files), true, nil
}

// lsFiles runs git ls-files in dir, paths relative to dir.
func lsFiles(ctx context.Context, dir string, args ...string) ([]string, error) {
	out, err := runGit(ctx, dir, nil, append([]string{"ls-files", "-z"}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("listing the files of %s: %w", dir, err)
	}
	return slices.DeleteFunc(strings.Split(out, "\x00"), func(s string) bool { return s == "" }), nil
}

// dubiousRepoRE picks the checkout git names in its dubious-ownership
// refusal.
var dubiousRepoRE = regexp.MustCompile(`dubious ownership in repository at '([^']*)'`)

// refusedCheckout explains a failure of git to read the checkout that
// contains dir, with the fix when git distrusts its owner.
func refusedCheckout(dir string, err error) error {
	var gerr *gitError
	if !errors.As(err, &gerr) || !strings.Contains(gerr.stderr, "dubious ownership") {
		return fmt.Errorf("git cannot read the checkout that contains %s, so it cannot tell which files are ignored, and nothing is served: %w", dir, err)
	}
	repo := dir
	if m := dubiousRepoRE.FindStringSubmatch(gerr.stderr); m != nil {
		repo = m[1]
	}
	reason, _, _ := strings.Cut(gerr.stderr, "\n")
	return fmt.Errorf("git refuses to read the checkout that contains %s (%s: it is owned by another user), so it cannot tell which files are ignored, and nothing is served; if you trust that checkout, run: git config --global --add safe.directory %s",
		dir, strings.TrimPrefix(reason, "fatal: "), repo)
}

// excludedPaths turns the absolute paths of Options.Exclude into paths
// relative to src, for git pathspecs; paths outside src are dropped, and a
// src inside an excluded path is refused, as nothing could be served.
// Both the paths as given and with symbolic links resolved are compared.
func excludedPaths(src string, exclude []string) ([]string, error) {
	var rels []string
	for _, p := range exclude {
		for _, sf := range pathForms(src) {
			for _, pf := range pathForms(p) {
				if up, err := filepath.Rel(pf, sf); err == nil && (up == "." || filepath.IsLocal(up)) {
					return nil, fmt.Errorf("source directory %s is inside %s, which must never be served", src, p)
				}
				if rel, err := filepath.Rel(sf, pf); err == nil && filepath.IsLocal(rel) {
					rels = append(rels, filepath.ToSlash(rel))
				}
			}
		}
	}
	slices.Sort(rels)
	return slices.Compact(rels), nil
}

// pathForms is p cleaned, and also with symbolic links resolved when that
// differs (and p exists).
func pathForms(p string) []string {
	forms := []string{filepath.Clean(p)}
	if real, err := filepath.EvalSymlinks(p); err == nil && real != forms[0] {
		forms = append(forms, real)
	}
	return forms
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
	if tree, err = s.withoutExcluded(ctx, tree); err != nil {
		return "", "", fmt.Errorf("leaving the excluded paths out of revision %s: %w", rev, err)
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
		// No --force: files the tree's .gitignore files ignore stay out.
		env = append(env, "GIT_DIR="+s.bare, "GIT_WORK_TREE="+s.src)
		if err := s.stage(ctx, env); err != nil {
			return "", err
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
	if err := s.stage(ctx, env); err != nil {
		return "", err
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

// stage updates the temporary index (env) to the working tree, leaving out
// the excluded paths: tracked files under them are dropped from the index,
// and the exclude pathspecs keep the rest from being staged, or even read.
func (s *snapshotter) stage(ctx context.Context, env []string) error {
	if err := s.dropExcluded(ctx, env); err != nil {
		return err
	}
	args := []string{"add", "--all", "--", "."}
	for _, rel := range s.exclude {
		args = append(args, ":(exclude,literal)"+rel)
	}
	if _, err := s.git(ctx, s.src, env, args...); err != nil {
		return fmt.Errorf("staging the working tree: %w", err)
	}
	return nil
}

// dropExcluded removes the excluded paths from the index env names.
func (s *snapshotter) dropExcluded(ctx context.Context, env []string) error {
	if len(s.exclude) == 0 {
		return nil
	}
	args := []string{"rm", "--cached", "-r", "-f", "-q", "--ignore-unmatch", "--"}
	for _, rel := range s.exclude {
		args = append(args, ":(literal)"+rel)
	}
	if _, err := s.git(ctx, s.src, env, args...); err != nil {
		return fmt.Errorf("dropping the excluded paths %s from the index: %w", strings.Join(s.exclude, ", "), err)
	}
	return nil
}

// withoutExcluded returns tree (src's tree at a revision) without the
// excluded paths; the tree itself when none is in it. It works in a
// scratch index of the bare repository, which reaches the checkout's
// objects as alternates.
func (s *snapshotter) withoutExcluded(ctx context.Context, tree string) (string, error) {
	if len(s.exclude) == 0 {
		return tree, nil
	}
	index := s.index + ".revision"
	if err := os.Remove(index); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	env := []string{"GIT_INDEX_FILE=" + index, "GIT_DIR=" + s.bare, "GIT_WORK_TREE=" + s.src}
	if _, err := s.git(ctx, s.src, env, "read-tree", tree); err != nil {
		return "", fmt.Errorf("reading tree %s: %w", tree, err)
	}
	if err := s.dropExcluded(ctx, env); err != nil {
		return "", err
	}
	out, err := s.git(ctx, s.src, env, "write-tree")
	if err != nil {
		return "", fmt.Errorf("writing tree: %w", err)
	}
	return strings.TrimSpace(out), nil
}

func (s *snapshotter) git(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	return runGit(ctx, dir, env, args...)
}

// runGit runs the git CLI in dir with the caller's GIT_* variables removed
// (a harness started from a git hook must not snapshot the hook's repo),
// except those that say where the user's and the system's config are.
func runGit(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "GIT_") || slices.Contains(configLocationVars, name) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &gitError{args: args, err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

// configLocationVars name config files, not a repository: they are the
// user's choice and are passed on to git.
var configLocationVars = []string{"GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM"}

// gitError is a failed git command, with what it wrote to stderr.
type gitError struct {
	args   []string
	err    error
	stderr string
}

func (e *gitError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", strings.Join(e.args, " "), e.err, e.stderr)
}

func (e *gitError) Unwrap() error { return e.err }

// exitCode is git's exit status, -1 when it did not exit (not found, killed).
func (e *gitError) exitCode() int {
	var exit *exec.ExitError
	if errors.As(e.err, &exit) {
		return exit.ExitCode()
	}
	return -1
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFile(to, in)
}

// writeFile writes r to a new or truncated file at path, 0600.
func writeFile(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
