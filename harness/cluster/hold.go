package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A hold says "a live run is using this cluster name": an exclusive flock on
// <hold dir>/<name>.hold. The kernel drops the lock when the holding process
// exits, however it exits, so a crashed run's hold expires by itself. Hold
// files are never removed: removing a lock file lets two runs lock two
// different files of the same name.
const (
	holdRoot    = "/tmp"
	holdDirName = "flux-fleet-holds"
	holdSuffix  = ".hold"
	// sharedDirMode lets runs of different users share the hold directory
	// while none can remove another's files.
	sharedDirMode = fs.ModeSticky | 0o777
	// engineIDTimeout bounds `docker info`; an engine that cannot answer in
	// this time cannot run kind either.
	engineIDTimeout = 30 * time.Second
	// holderReadTries and holderReadPause bound rereading a holder's
	// record that is being written at that moment.
	holderReadTries = 5
	holderReadPause = 20 * time.Millisecond
	// maxHolderRecord bounds reading a holder record: any user can plant a
	// huge file under a record's name.
	maxHolderRecord = 64 << 10
	// holdOpenFlags keep an open in the hold directory, where any user can
	// plant entries, from following a symbolic link or waiting on a FIFO.
	holdOpenFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC
)

// Reasons openRegular refuses a path, wrapped in an *fs.PathError.
var (
	errSymlink    = errors.New("is a symbolic link: refusing to follow it")
	errNotRegular = errors.New("is not a regular file")
	errHardLinked = errors.New("has other hard links: refusing to write through one to another file")
)

// HolderInfo is the record a run writes into the hold file of each cluster
// name it holds, for the message of a run that wants the same name.
type HolderInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	WorkDir string    `json:"workDir"`
	RunID   string    `json:"runID"`
}

func (h HolderInfo) String() string {
	return fmt.Sprintf("pid %d on host %s, started %s, work dir %s, run %s",
		h.PID, h.Host, h.Started.Local().Format("2006-01-02 15:04:05"), h.WorkDir, orNone(h.RunID))
}

// HeldError is returned when another live run holds a requested cluster
// name: nothing was created, reused, deleted or written.
type HeldError struct {
	Name   string
	Holder HolderInfo
	// Unknown says why the holder's record could not be read; "" when
	// Holder is filled in.
	Unknown string
}

func (e *HeldError) Error() string {
	who := e.Holder.String()
	if e.Unknown != "" {
		who = "holder unknown: " + e.Unknown
	}
	return fmt.Sprintf("cluster %q is in use by another flux-fleet run (%s): wait for it to finish or set E2E_CLUSTER_PREFIX", e.Name, who)
}

// hold is one held cluster name; closing the file drops the lock.
type hold struct {
	name string
	f    *os.File
}

func (h *hold) release() {
	// Close cannot fail in a way that leaves the lock held: the kernel drops
	// it with the last descriptor.
	_ = h.f.Close()
}

// DefaultHoldDir is the hold directory of the Docker engine the docker CLI
// talks to, shared by every run on this host against that engine:
// /tmp/flux-fleet-holds/<engine ID>. It is not under TMPDIR, which differs
// between users and CI jobs that share the engine.
func DefaultHoldDir(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, engineIDTimeout)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ID}}")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("reading the Docker engine's ID for the cluster holds (docker info): %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	id := safeFileName(strings.TrimSpace(string(out)))
	if id == "" {
		return "", errors.New("reading the Docker engine's ID for the cluster holds: docker info reports no ID")
	}
	return filepath.Join(holdRoot, holdDirName, id), nil
}

// safeFileName keeps [A-Za-z0-9._-] of s and turns the rest into '-'
// (engine IDs of older Docker versions have colons).
func safeFileName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), ".")
}

// ensureSharedDir creates dir and, when absent, its parent with
// sharedDirMode. A directory someone else made is used as it is, unless it
// is a symbolic link.
func ensureSharedDir(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		err := os.Mkdir(d, 0o700)
		switch {
		case err == nil:
			if err := shareDir(d); err != nil {
				return fmt.Errorf("opening hold directory %s to all users: %w", d, err)
			}
		case errors.Is(err, fs.ErrExist):
			if err := checkHoldDir(d); err != nil {
				return err
			}
		default:
			return fmt.Errorf("creating hold directory %s: %w", d, err)
		}
	}
	return nil
}

// shareDir gives the directory just made at d sharedDirMode. Mkdir's mode
// passes through the umask; Chmod's does not. It goes through a descriptor
// opened without following links: os.Chmod would follow a symbolic link
// put in d's place since the Mkdir.
func shareDir(d string) error {
	f, err := os.OpenFile(d, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(sharedDirMode)
}

// checkHoldDir accepts an existing hold directory, whoever made it, but not
// a symbolic link in its place: that could send holds anywhere.
func checkHoldDir(d string) error {
	fi, err := os.Lstat(d)
	switch {
	case err != nil:
		return fmt.Errorf("checking hold directory %s: %w", d, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("hold directory %s %w", d, errSymlink)
	case !fi.IsDir():
		return fmt.Errorf("hold directory %s: exists and is not a directory", d)
	}
	return nil
}

// openRegular opens path with flag and holdOpenFlags and returns it and its
// fstat only if it is a regular file with no other name. Refusals are
// *fs.PathError wrapping errSymlink, errNotRegular or errHardLinked; other
// errors are os.OpenFile's.
func openRegular(path string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, flag|holdOpenFlags, perm)
	switch {
	case errors.Is(err, syscall.ELOOP): // O_NOFOLLOW met a link
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: errSymlink}
	case errors.Is(err, syscall.ENXIO): // a FIFO or socket opened for writing
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: errNotRegular}
	case err != nil:
		return nil, nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = &fs.PathError{Op: "open", Path: path, Err: errNotRegular}
	case hardLinked(fi):
		// A link planted in the shared directory to someone's file: writing
		// the holder would overwrite that file.
		err = &fs.PathError{Op: "open", Path: path, Err: errHardLinked}
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// hardLinked reports whether the file fi describes has more than one name.
func hardLinked(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink > 1
}

// takeHold holds name in dir for info's run, or returns a *HeldError naming
// the run that holds it.
func takeHold(dir, name string, info HolderInfo) (*hold, error) {
	if err := ensureSharedDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+holdSuffix)
	f, writable, err := openHoldFile(path)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, readHeld(dir, name)
		}
		return nil, fmt.Errorf("locking hold file %s: %w", path, err)
	}
	if err := writeHolder(f, writable, path, info); err != nil {
		_ = f.Close()
		return nil, err
	}
	return &hold{name: name, f: f}, nil
}

// openHoldFile opens (creating) the hold file for writing, else, when it
// belongs to another user, read-only: flock works on either.
func openHoldFile(path string) (f *os.File, writable bool, err error) {
	f, _, err = openRegular(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, fs.ErrPermission) {
		return nil, false, fmt.Errorf("opening hold file %s: %w", path, err)
	}
	f, _, rerr := openRegular(path, os.O_RDONLY, 0)
	if rerr != nil {
		return nil, false, fmt.Errorf("opening hold file %s: %w (read-only: %v)", path, err, rerr)
	}
	return f, false, nil
}

// writeHolder records info in the held file, or, when that file is another
// user's, in <path>.<uid>: readers take the newest record of the two.
func writeHolder(f *os.File, writable bool, path string, info HolderInfo) error {
	line, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encoding the holder record for %s: %w", path, err)
	}
	line = append(line, '\n')
	if !writable {
		return writeSideRecord(path+"."+strconv.Itoa(os.Getuid()), line)
	}
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("writing the holder record %s: %w", path, err)
	}
	if _, err := f.WriteAt(line, 0); err != nil {
		return fmt.Errorf("writing the holder record %s: %w", path, err)
	}
	return nil
}

// writeSideRecord replaces the holder record at side with line, never
// through a symbolic link another user planted there.
func writeSideRecord(side string, line []byte) error {
	f, _, err := openRegular(side, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("writing the holder record %s: %w", side, err)
	}
	_, werr := f.Write(line)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("writing the holder record %s: %w", side, err)
	}
	return nil
}

// readHeld builds the *HeldError for a name another run holds, with the
// newest holder record found.
func readHeld(dir, name string) *HeldError {
	e := &HeldError{Name: name}
	var err error
	for range holderReadTries {
		if e.Holder, err = readHolder(filepath.Join(dir, name+holdSuffix)); err == nil {
			return e
		}
		// The holder may be writing its record right now.
		time.Sleep(holderReadPause)
	}
	e.Unknown = err.Error()
	return e
}

func readHolder(path string) (HolderInfo, error) {
	sides, _ := filepath.Glob(path + ".*")
	var newest HolderInfo
	var newestMod time.Time
	var errs []error
	for _, p := range append([]string{path}, sides...) {
		h, mod, err := readRecord(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if mod.After(newestMod) {
			newest, newestMod = h, mod
		}
	}
	if newestMod.IsZero() {
		errs = append(errs, fmt.Errorf("no readable holder record at %s", path))
		return HolderInfo{}, errors.Join(errs...)
	}
	return newest, nil
}

// readRecord reads the holder record at p and its modification time, at
// most maxHolderRecord bytes of a regular file.
func readRecord(p string) (HolderInfo, time.Time, error) {
	f, fi, err := openRegular(p, os.O_RDONLY, 0)
	if err != nil {
		return HolderInfo{}, time.Time{}, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxHolderRecord+1))
	if err != nil {
		return HolderInfo{}, time.Time{}, fmt.Errorf("reading holder record %s: %w", p, err)
	}
	if len(raw) > maxHolderRecord {
		return HolderInfo{}, time.Time{}, fmt.Errorf("holder record %s: larger than %d bytes", p, maxHolderRecord)
	}
	var h HolderInfo
	if err := json.Unmarshal(raw, &h); err != nil {
		return HolderInfo{}, time.Time{}, fmt.Errorf("holder record %s: %w", p, err)
	}
	return h, fi.ModTime(), nil
}

// takeHolds holds every name, in sorted order: of two runs wanting
// overlapping sets, one then fails at the first name they share instead of
// both failing with part of the set each. On a failure it releases what it
// took.
func takeHolds(dir string, names []string, info func(name string) HolderInfo) ([]*hold, error) {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	var taken []*hold
	for _, n := range names {
		h, err := takeHold(dir, n, info(n))
		if err != nil {
			releaseAll(taken)
			return nil, err
		}
		taken = append(taken, h)
	}
	return taken, nil
}

func releaseAll(holds []*hold) {
	for _, h := range holds {
		h.release()
	}
}

func holderInfo(spec Spec, runID string, started time.Time) HolderInfo {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	dir := filepath.Dir(spec.KubeconfigPath())
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return HolderInfo{PID: os.Getpid(), Host: host, Started: started, WorkDir: dir, RunID: runID}
}
