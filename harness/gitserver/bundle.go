package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// NewHandler serves the bare repository dir read-only over git's smart HTTP
// protocol at /<repoName>.git, behind basic auth with user and pass, logging
// one line per request to log (nil discards). It is the handler Start
// serves, exported so that the in-cluster fleet server speaks the protocol
// through the same code.
func NewHandler(repoName, dir, user, pass string, log io.Writer) (http.Handler, error) {
	repoName = trimGitSuffix(repoName)
	if !repoNameRE.MatchString(repoName) {
		return nil, fmt.Errorf("repository name %q: want letters, digits, '.', '_' or '-', not starting with '.'", repoName)
	}
	if user == "" || pass == "" {
		return nil, fmt.Errorf("repository %s: a user name and a password are required", repoName)
	}
	return newHandler(repoName, dir, user, pass, log), nil
}

// Bundle writes a git bundle of the served branch (its whole history, so
// that it applies to an empty repository) to w: what the in-cluster fleet
// server is handed in place of being reached.
func (s *Server) Bundle(ctx context.Context, w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("git server is closed")
	}
	// A file, not stdout: git writes a bundle to stdout only in newer
	// releases, and the file is removed at once.
	dir, err := os.MkdirTemp(s.tmpDir, "bundle-")
	if err != nil {
		return fmt.Errorf("creating a directory for the bundle of %s: %w", s.opts.SourceDir, err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "fleet.bundle")
	ref := "refs/heads/" + s.opts.Branch
	if _, err := runGit(ctx, s.bareDir, nil, "bundle", "create", "--quiet", file, ref); err != nil {
		return fmt.Errorf("bundling branch %s of the served snapshots of %s: %w", s.opts.Branch, s.opts.SourceDir, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("reading the bundle of %s: %w", s.opts.SourceDir, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("writing the bundle of %s: %w", s.opts.SourceDir, err)
	}
	return nil
}
