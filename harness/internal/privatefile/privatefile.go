// Package privatefile writes the harness's artifacts (records, reports,
// diagnostics) so that only their owner can read them before they are
// uploaded: files 0600 in directories created 0700.
package privatefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Modes of what Write creates.
const (
	FileMode os.FileMode = 0o600
	DirMode  os.FileMode = 0o700
)

// Write replaces path with data, creating its directory (0700) when
// missing. It writes a temporary file (created 0600) next to path and
// renames it over path, so an older file's mode is replaced too and a
// reader never sees half a file. A directory on the way that another user
// controls (Trust.CheckTrusted) is refused.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("writing %s: creating its directory: %w", path, err)
	}
	// Checked again now that it exists: a directory another user made
	// first (below /tmp, say) after the run's options were checked.
	if err := CurrentTrust().CheckTrusted(dir); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: creating a temporary file: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: writing temporary file %s: %w", path, tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: renaming %s over it: %w", path, tmp, err)
	}
	return nil
}
