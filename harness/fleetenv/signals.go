package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// Interrupts is the one signal handler of a test process: SIGINT or SIGTERM
// cancels its context, so that every step in flight gives up and every
// cleanup (e2e-framework's Finish, t.Cleanup) runs to completion; the
// process then exits with ExitCode. A second signal is left to the default
// handler, which ends the process at once.
type Interrupts struct {
	got  atomic.Pointer[os.Signal]
	stop func()
}

// WatchInterrupts returns a context cancelled on the first SIGINT or SIGTERM.
func WatchInterrupts(parent context.Context) (context.Context, *Interrupts) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	in := &Interrupts{}
	in.stop = func() {
		signal.Stop(sigs)
		close(done)
	}
	go func() {
		select {
		case sig := <-sigs:
			in.got.Store(&sig)
			// Let a second signal kill the process.
			signal.Stop(sigs)
			fmt.Fprintf(os.Stderr, "received %s: cleaning up (a second signal exits at once)\n", sig)
			cancel(&InterruptedError{Signal: sig})
		case <-done:
		}
	}()
	return ctx, in
}

// InterruptedError is the cause of a context WatchInterrupts cancelled.
type InterruptedError struct{ Signal os.Signal }

func (e *InterruptedError) Error() string { return fmt.Sprintf("received %s", e.Signal) }

// Interrupted says whether ctx ended because the process was interrupted:
// then the clusters are deleted first and diagnostics are skipped, since a
// user who pressed Ctrl-C wants the machine back, not a report.
func Interrupted(ctx context.Context) bool {
	var ie *InterruptedError
	return errors.As(context.Cause(ctx), &ie)
}

// Stop stops watching.
func (in *Interrupts) Stop() { in.stop() }

// ExitCode is 128+signal after an interrupt (130 for SIGINT), else code.
func (in *Interrupts) ExitCode(code int) int {
	if p := in.got.Load(); p != nil {
		if s, ok := (*p).(syscall.Signal); ok {
			return 128 + int(s)
		}
		return 1
	}
	return code
}
