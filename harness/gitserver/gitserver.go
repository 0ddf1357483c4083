// Package gitserver serves a snapshot of a working tree over smart HTTP so
// that Flux in kind clusters can sync uncommitted changes: each Publish
// records the files git would see (tracked and untracked-not-ignored, with
// their current content) as a new commit in a private bare repository,
// served read-only with per-run basic-auth credentials; no other path of
// the host is reachable through it. A directory in no checkout is served
// as git would commit it (its .gitignore files honoured); a checkout git
// refuses to read (another user's, say) is refused in turn, since its
// ignore rules cannot be known. PublishRevision (and Options.Revision)
// serves a committed revision instead, its tree unchanged but for
// Options.Exclude, to replay exactly what a commit held.
package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/internal/basicauth"
)

// Options configures Start.
type Options struct {
	// Addr is the host IP to listen on, normally the kind network gateway
	// (cluster.HostAddress) so that nodes can reach it. The port is chosen
	// at random. Unspecified addresses (0.0.0.0, ::) are refused.
	Addr      string
	SourceDir string // working tree to snapshot
	RepoName  string // served as /<RepoName>.git; "" = "fleet"
	Branch    string // "" = "main"
	// Revision, when set, is a git revision (commit, branch, tag or an
	// expression such as HEAD~1) of the checkout that contains SourceDir:
	// Start publishes SourceDir's tree at that commit instead of the
	// working tree.
	Revision string
	// Exclude lists paths (absolute, or relative to the current directory)
	// that are never served, ignored by git or not — the run's own work and
	// artifacts directories, which hold admin kubeconfigs. Files under them
	// are left out of every snapshot, tracked ones included, and out of a
	// served revision's tree. Paths outside SourceDir change nothing; a
	// SourceDir inside one of them is refused.
	Exclude []string
	// Username and Password protect the repository; random per run when empty.
	Username string
	Password string
	// Log receives one line per request (method, path, status, time, and
	// why it was refused or failed); nil discards them.
	Log io.Writer
	// TempDir is where the server keeps its repository ("" = the system's
	// temporary directory): a run passes its own, which a later run
	// reclaims if this one is killed.
	TempDir string
}

// Server serves snapshots of Options.SourceDir.
type Server struct {
	opts     Options
	tmpDir   string
	bareDir  string
	url      string
	listener net.Listener
	http     *http.Server
	served   chan error

	mu       sync.Mutex
	snap     *snapshotter
	revision string
	origin   Origin
	closed   bool
}

// Origin is what a published commit holds: a commit of the checkout, or the
// working tree as it was.
type Origin struct {
	// Ref is the revision as asked for (e.g. "HEAD~1"); "" for a snapshot
	// of the working tree.
	Ref string
	// Commit is the checkout's commit the tree comes from: Ref resolved, or
	// for a working-tree snapshot the checkout's HEAD ("" outside a
	// checkout or before its first commit).
	Commit string
	// WorkingTree marks a snapshot of the working tree, uncommitted edits
	// included.
	WorkingTree bool
	// Path is SourceDir relative to the checkout root ("" at the root or
	// outside a checkout).
	Path string
}

// String describes the origin in one phrase, for log lines.
func (o Origin) String() string {
	short := o.Commit[:min(len(o.Commit), 12)]
	switch {
	case !o.WorkingTree && o.Ref != "" && o.Ref != o.Commit:
		return fmt.Sprintf("commit %s (%s)", short, o.Ref)
	case !o.WorkingTree:
		return "commit " + short
	case short != "":
		return "working tree (on " + short + ")"
	default:
		return "working tree"
	}
}

// Start creates the bare repository, publishes the first snapshot and
// starts serving it.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "gitserver-")
	if err != nil {
		return nil, fmt.Errorf("creating git server directory: %w", err)
	}
	s := &Server{opts: opts, tmpDir: tmp, bareDir: filepath.Join(tmp, "repos", opts.RepoName+".git")}
	ok := false
	defer func() {
		if !ok {
			_ = s.Close()
		}
	}()

	s.snap, err = newSnapshotter(ctx, opts.SourceDir, s.bareDir, opts.Branch, filepath.Join(tmp, "index"), opts.Exclude)
	if err != nil {
		return nil, err
	}
	if opts.Revision != "" {
		_, err = s.PublishRevision(ctx, opts.Revision)
	} else {
		_, err = s.Publish(ctx)
	}
	if err != nil {
		return nil, err
	}

	var lc net.ListenConfig
	s.listener, err = lc.Listen(ctx, "tcp", net.JoinHostPort(opts.Addr, "0"))
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", opts.Addr, err)
	}
	s.url = fmt.Sprintf("http://%s/%s.git", s.listener.Addr().String(), opts.RepoName)

	// Read-only: pushes would bypass the snapshot history.
	h := newHandler(opts.RepoName, s.bareDir, opts.Username, opts.Password, opts.Log)
	s.http = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// The server's own errors (TLS probes, bad requests) go to the
		// same place as the request log, not to Go's global logger.
		ErrorLog: log.New(logOrDiscard(opts.Log), "", 0),
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.http.Serve(s.listener) }()
	ok = true
	return s, nil
}

var repoNameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*$`)

func trimGitSuffix(name string) string { return strings.TrimSuffix(name, ".git") }

func logOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func (o *Options) setDefaults() error {
	ip := net.ParseIP(o.Addr)
	switch {
	case o.Addr == "":
		return errors.New("git server needs an address to listen on (the kind network gateway)")
	case ip == nil:
		return fmt.Errorf("git server address %q is not an IP address", o.Addr)
	case ip.IsUnspecified():
		return fmt.Errorf("git server address %s would listen on every interface: use the kind network gateway", o.Addr)
	}
	if o.SourceDir == "" {
		return errors.New("git server needs a source directory")
	}
	abs, err := filepath.Abs(o.SourceDir)
	if err != nil {
		return fmt.Errorf("resolving source directory: %w", err)
	}
	o.SourceDir = abs
	excl := make([]string, len(o.Exclude))
	for i, p := range o.Exclude {
		if excl[i], err = filepath.Abs(p); err != nil {
			return fmt.Errorf("resolving excluded path %s: %w", p, err)
		}
	}
	o.Exclude = excl
	if o.RepoName == "" {
		o.RepoName = "fleet"
	}
	o.RepoName = trimGitSuffix(o.RepoName)
	// The handler compares the escaped request path byte for byte, so the
	// name must be one that URLs carry unescaped.
	if !repoNameRE.MatchString(o.RepoName) {
		return fmt.Errorf("repository name %q: want letters, digits, '.', '_' or '-', not starting with '.'", o.RepoName)
	}
	if o.Branch == "" {
		o.Branch = "main"
	}
	if o.Username == "" || o.Password == "" {
		o.Username, o.Password = basicauth.Random("fleet-")
	}
	return nil
}

// URL is the clone URL, http://<addr>:<port>/<repo>.git.
func (s *Server) URL() string { return s.url }

// Credentials are the basic-auth user and password the server accepts.
func (s *Server) Credentials() (user, pass string) { return s.opts.Username, s.opts.Password }

// Branch is the branch snapshots are committed to.
func (s *Server) Branch() string { return s.opts.Branch }

// Revision is the commit of the latest snapshot.
func (s *Server) Revision() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revision
}

// FluxRevision formats a commit the way Flux reports it in
// GitRepository and Kustomization status: "<branch>@sha1:<commit>".
func (s *Server) FluxRevision(commit string) string {
	return s.opts.Branch + "@sha1:" + commit
}

// Publish snapshots the working tree as it is now into a new commit on
// the branch, whose parent is the previous snapshot, and returns the
// commit's hash. Every call makes a new commit, even when nothing changed,
// so a cluster kept from an earlier run always sees a new revision.
func (s *Server) Publish(ctx context.Context) (revision string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("git server is closed")
	}
	rev, err := s.snap.commit(ctx, s.revision)
	if err != nil {
		return "", fmt.Errorf("publishing snapshot of %s: %w", s.opts.SourceDir, err)
	}
	s.revision = rev
	s.origin = Origin{Commit: s.snap.head(ctx), WorkingTree: true, Path: strings.TrimSuffix(s.snap.prefix, "/")}
	return rev, nil
}

// PublishRevision publishes SourceDir's tree at a revision of the checkout
// that contains it — the committed tree object itself, so the content is
// exactly the commit's, whatever the working tree holds (committed content
// only: ignored files are never in it), less any Options.Exclude path the
// commit holds — as a new commit on the branch whose parent is the previous
// publish, and returns that commit.
func (s *Server) PublishRevision(ctx context.Context, rev string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("git server is closed")
	}
	served, source, err := s.snap.commitRevision(ctx, rev, s.revision)
	if err != nil {
		return "", fmt.Errorf("publishing revision %s of %s: %w", rev, s.opts.SourceDir, err)
	}
	s.revision = served
	s.origin = Origin{Ref: rev, Commit: source, Path: strings.TrimSuffix(s.snap.prefix, "/")}
	return served, nil
}

// Origin says what the latest publish holds.
func (s *Server) Origin() Origin {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.origin
}

// ResolveRevision resolves a revision of the checkout that contains dir to
// its commit and checks that dir exists as a directory at that commit, so a
// mistyped or unfetched revision is reported before anything starts.
func ResolveRevision(ctx context.Context, dir, rev string) (string, error) {
	_, commit, _, err := resolveInCheckout(ctx, dir, rev)
	return commit, err
}

// resolveInCheckout is ResolveRevision that also returns dir made absolute
// and dir's tree at the commit.
func resolveInCheckout(ctx context.Context, dir, rev string) (abs, commit, tree string, err error) {
	if abs, err = filepath.Abs(dir); err != nil {
		return "", "", "", fmt.Errorf("resolving %s: %w", dir, err)
	}
	co, err := locateCheckout(ctx, abs)
	if err != nil {
		return "", "", "", err
	}
	if co == nil {
		return "", "", "", fmt.Errorf("%s is not inside a git checkout: only a checkout has revisions", abs)
	}
	commit, tree, err = revisionTree(ctx, abs, co.prefix, rev)
	return abs, commit, tree, err
}

// Close stops serving and removes the repository.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	var errs []error
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping git server: %w", err))
			_ = s.http.Close()
		}
		if err := <-s.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("git server: %w", err))
		}
		s.http = nil
	} else if s.listener != nil {
		_ = s.listener.Close()
	}
	if s.tmpDir != "" {
		if err := os.RemoveAll(s.tmpDir); err != nil {
			errs = append(errs, fmt.Errorf("removing git server directory: %w", err))
		}
		s.tmpDir = ""
	}
	return errors.Join(errs...)
}
