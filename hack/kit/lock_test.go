package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/poll"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

func TestWaitingMessage(t *testing.T) {
	for _, tc := range []struct{ holder, want string }{
		{"pid 42, started 2026-11-26T09:10:00Z, repository /src/flux-fleet\n",
			"another kit build holds /k/.lock: waiting for pid 42, started 2026-11-26T09:10:00Z, repository /src/flux-fleet"},
		{"", "another kit build holds /k/.lock: waiting for a build that has not recorded itself yet"},
		{" \n", "another kit build holds /k/.lock: waiting for a build that has not recorded itself yet"},
	} {
		if got := waitingMessage("/k/.lock", tc.holder); got != tc.want {
			t.Errorf("waitingMessage(%q) = %q, want %q", tc.holder, got, tc.want)
		}
	}
	if got, want := holderLine(42, time.Date(2026, 11, 26, 10, 10, 0, 0, time.FixedZone("CET", 3600)), "/src/ff"),
		"pid 42, started 2026-11-26T09:10:00Z, repository /src/ff"; got != want {
		t.Errorf("holderLine = %q, want %q", got, want)
	}
}

// TestLockTakesTurns holds the lock as a first build and starts a second:
// the second says whom it waits for, gets the lock once the first releases
// it, and records itself.
func TestLockTakesTurns(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lock")
	ctx := context.Background()
	first, err := acquireLock(ctx, path, "pid 1, first", newLogger(&testsupport.SyncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	var log testsupport.SyncBuffer
	got := make(chan error, 1)
	go func() {
		second, err := acquireLock(ctx, path, "pid 2, second", newLogger(&log))
		if err == nil {
			defer second.release()
		}
		got <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "waiting for pid 1, first") {
		if time.Now().After(deadline) {
			t.Fatalf("the second build never said whom it waits for; log: %q", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-got:
		t.Fatalf("the second build got the lock while the first held it (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	first.release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second build did not get the lock after the first released it")
	}
	if holder, _ := os.ReadFile(path); string(holder) != "pid 2, second\n" {
		t.Errorf("lock file = %q, want the second build's holder line", holder)
	}
	if !strings.Contains(log.String(), "lock acquired after") {
		t.Errorf("the second build did not say when it got the lock; log: %q", log.String())
	}
}

func TestLockWaitStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lock")
	first, err := acquireLock(context.Background(), path, "pid 1", newLogger(&testsupport.SyncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer first.release()
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("interrupted by test")
	time.AfterFunc(100*time.Millisecond, func() { cancel(stop) })
	_, err = acquireLock(ctx, path, "pid 2", newLogger(&testsupport.SyncBuffer{}))
	var pe *poll.Error
	if !errors.As(err, &pe) || !errors.Is(err, stop) {
		t.Fatalf("err = %v, want a *poll.Error for the wait for %s stopped by the test", err, path)
	}
	if want := "stopped waiting for the kit lock " + path + " after " + pe.Waited.Round(time.Millisecond).String() + ": interrupted by test"; err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// TestStoppedWaitTakesNoLock: a build that stopped waiting must not take
// the lock later, when the holder lets it go, leaving it held for nobody.
func TestStoppedWaitTakesNoLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lock")
	first, err := acquireLock(context.Background(), path, "pid 1", newLogger(&testsupport.SyncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*lockPoll)
	defer cancel()
	if _, err := acquireLock(ctx, path, "pid 2", newLogger(&testsupport.SyncBuffer{})); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the wait stopped at its deadline", err)
	}
	first.release()
	// A wait left going on would take the lock within a poll of the
	// release (at once, blocked in flock): give it four.
	time.Sleep(4 * lockPoll)
	if lockHeld(t, path) {
		t.Fatal("the lock is held after its holder released it and the other build stopped waiting")
	}
}
