// Package gitserver serves a snapshot of a working tree over smart HTTP so
// that Flux in kind clusters can sync uncommitted changes: each Publish
// records the files git would see (tracked and untracked-not-ignored, with
// their current content) as a new commit in a private bare repository,
// served read-only with per-run basic-auth credentials; no other path of
// the host is reachable through it.
package gitserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// Username and Password protect the repository; random per run when empty.
	Username string
	Password string
	// Log receives one line per request (method, path, status, time, and
	// why it was refused or failed); nil discards them.
	Log io.Writer
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
	closed   bool
}

// Start creates the bare repository, publishes the first snapshot and
// starts serving it.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "gitserver-")
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

	s.snap, err = newSnapshotter(ctx, opts.SourceDir, s.bareDir, opts.Branch, filepath.Join(tmp, "index"))
	if err != nil {
		return nil, err
	}
	if _, err := s.Publish(ctx); err != nil {
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
	if o.RepoName == "" {
		o.RepoName = "fleet"
	}
	o.RepoName = strings.TrimSuffix(o.RepoName, ".git")
	// The handler compares the escaped request path byte for byte, so the
	// name must be one that URLs carry unescaped.
	if !repoNameRE.MatchString(o.RepoName) {
		return fmt.Errorf("repository name %q: want letters, digits, '.', '_' or '-', not starting with '.'", o.RepoName)
	}
	if o.Branch == "" {
		o.Branch = "main"
	}
	if o.Username == "" {
		o.Username = "fleet-" + randomHex(4)
	}
	if o.Password == "" {
		o.Password = randomHex(16)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
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
	return rev, nil
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
