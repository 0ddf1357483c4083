package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// kitLock is the kit directory's lock: one build at a time per directory,
// since the stages share scratch paths, tags and the profile. It is an
// flock on the open lock file, which belongs to that open file and not to
// a process: the recipes inherit it (runner.lock), so it is released when
// the last process of the build exits, however the kit itself ended, and
// never while a recipe of a killed kit still writes its outputs.
type kitLock struct{ f *os.File }

// acquireLock takes the lock at path, first saying whom it waits for when
// another build holds it, and then records holder in the file.
func acquireLock(ctx context.Context, path, holder string, log *logger) (*kitLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the kit lock: %w", err)
	}
	fd := int(f.Fd())
	err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		current, _ := os.ReadFile(path)
		log.printf("%s", waitingMessage(path, string(current)))
		start := time.Now()
		if err = waitForLock(ctx, fd, path); err != nil {
			f.Close()
			return nil, err
		}
		log.printf("lock acquired after %s", time.Since(start).Round(time.Second))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("recording the holder in %s: %w", path, err)
	}
	if _, err := f.WriteString(holder + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("recording the holder in %s: %w", path, err)
	}
	return &kitLock{f: f}, nil
}

// lockPoll is how often a waiting build tries the lock again. It polls
// rather than blocking in flock, which nothing could interrupt when the
// wait is stopped and which would then take the lock for nobody.
const lockPoll = 250 * time.Millisecond

// waitForLock tries the flock on fd until it is acquired or ctx ends (then
// returning a *poll.Error that names path and wraps ctx's cause).
func waitForLock(ctx context.Context, fd int, path string) error {
	return poll.Until(ctx, poll.Every(lockPoll).For("the kit lock "+path), func(context.Context) (bool, error) {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		if err != nil {
			// Trying again would not mend it.
			return true, fmt.Errorf("locking %s: %w", path, err)
		}
		return true, nil
	})
}

// release drops the kit's own hold; a recipe process still running keeps
// the lock held until it exits.
func (l *kitLock) release() { l.f.Close() }

// waitingMessage is what a build says while another holds the lock: whom
// it waits for, as the holder recorded itself.
func waitingMessage(path, holder string) string {
	holder = strings.TrimSpace(holder)
	if holder == "" {
		holder = "a build that has not recorded itself yet"
	}
	return fmt.Sprintf("another kit build holds %s: waiting for %s", path, holder)
}

// holderLine is what a build records in the lock file.
func holderLine(pid int, started time.Time, repo string) string {
	return fmt.Sprintf("pid %d, started %s, repository %s", pid, started.UTC().Format(time.RFC3339), repo)
}
