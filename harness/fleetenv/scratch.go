package fleetenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// scratchPrefix names a run's private temporary directory under the
// system's temporary directory.
const scratchPrefix = "flux-fleet-run-"

// aliveFile is held (flock) by the run that owns a scratch directory for as
// long as its process lives: the kernel frees it when the process dies, so
// a later run can tell a live run's directory from a dead one's.
const aliveFile = ".alive"

// scratch is one run's private temporary directory (0700): revision trees
// for the offline checks and the servers' repositories live in it, and it
// goes when the run ends — or, when the run was killed, at the next run's
// start.
type scratch struct {
	Dir   string
	alive *os.File
}

// newScratch reclaims the scratch directories of runs that are gone, then
// makes this run's own under base ("" = the system's temporary directory).
func newScratch(base string) (*scratch, []string, error) {
	if base == "" {
		base = os.TempDir()
	}
	reclaimed := reclaimScratch(base)
	dir, err := os.MkdirTemp(base, scratchPrefix)
	if err != nil {
		return nil, reclaimed, fmt.Errorf("creating the run's temporary directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, aliveFile), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, reclaimed, fmt.Errorf("marking %s as in use: %w", dir, err)
	}
	fmt.Fprintf(f, "pid %d\n", os.Getpid())
	return &scratch{Dir: dir, alive: f}, reclaimed, nil
}

// reclaimScratch removes the scratch directories under base whose owner
// process is gone (their alive file is not held), and returns them. It
// touches only directories of this user that carry the alive file, so a
// directory it did not make is never removed.
func reclaimScratch(base string) []string {
	matches, _ := filepath.Glob(filepath.Join(base, scratchPrefix+"*"))
	var gone []string
	for _, dir := range matches {
		if !ownScratch(dir) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, aliveFile))
		if err != nil {
			continue
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil && os.RemoveAll(dir) == nil {
			gone = append(gone, dir)
		}
		f.Close()
	}
	return gone
}

func ownScratch(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || !strings.HasPrefix(fi.Name(), scratchPrefix) {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

// Close removes the directory; the alive file goes last, so that no other
// run reclaims it while it is being removed.
func (s *scratch) Close() error {
	if s == nil {
		return nil
	}
	err := os.RemoveAll(s.Dir)
	if cerr := s.alive.Close(); err == nil && cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("removing the run's temporary directory %s: %w", s.Dir, err)
	}
	return nil
}
