// Package poll waits for a condition by asking it again and again, at a
// fixed interval and within a bound, and when the wait ends unfinished says
// what it waited for, how long, and what it saw last. It imports no package
// of the harness, so that every package of the harness can use it.
//
//	err := poll.Until(ctx, poll.Every(time.Second).Within(time.Minute).For("the nodes to be Ready"),
//		func(ctx context.Context) (bool, error) { ... })
package poll

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Spec says how to wait: how often to ask, for how long at most, and for
// what (the words an error names the wait by).
type Spec struct {
	interval time.Duration
	bound    time.Duration
	what     string
}

// Every asks the condition once at once, and again interval after each
// answer.
func Every(interval time.Duration) Spec { return Spec{interval: interval} }

// Within bounds the wait; without it (or with 0) only the caller's context
// does.
func (s Spec) Within(bound time.Duration) Spec {
	s.bound = bound
	return s
}

// For names what the wait is for, as in "waiting for <what>".
func (s Spec) For(what string) Spec {
	s.what = what
	return s
}

// Condition is asked whether the wait is over. done ends the wait: Until
// returns err as it is, nil for success and anything else as a failure
// that waiting longer cannot mend. While done is false, err is what stands
// in the way (an error of the API, or a sentence saying what was seen); the
// wait goes on, and names the last one if it ends unfinished.
type Condition func(ctx context.Context) (done bool, err error)

// Until asks cond until it is done, the bound has passed or ctx ends.
// cond's context ends with the wait. A wait that ends unfinished returns an
// *Error.
func Until(ctx context.Context, s Spec, cond Condition) error {
	if s.interval <= 0 {
		return fmt.Errorf("waiting for %s: the poll interval %s is not positive", s.what, s.interval)
	}
	start := time.Now()
	waitCtx, cancel := ctx, context.CancelFunc(func() {})
	if s.bound > 0 {
		waitCtx, cancel = context.WithTimeout(ctx, s.bound)
	}
	defer cancel()
	timer := time.NewTimer(s.interval)
	defer timer.Stop()
	var last error
	for {
		done, err := cond(waitCtx)
		if done {
			return err
		}
		// What a condition sees once the wait has ended is mostly that its
		// own requests were cut short: the answer before says more.
		if waitCtx.Err() == nil || last == nil {
			last = err
		}
		if waitCtx.Err() == nil {
			timer.Reset(s.interval)
			select {
			case <-waitCtx.Done():
			case <-timer.C:
				continue
			}
		}
		return ended(ctx, s, start, last)
	}
}

// ended is the error of a wait whose context (the caller's or the bound's)
// ended before the condition was done.
func ended(ctx context.Context, s Spec, start time.Time, last error) *Error {
	e := &Error{What: s.what, Waited: time.Since(start), Last: last, Cause: context.Cause(ctx)}
	if e.Cause == nil {
		e.Bound, e.Cause = s.bound, context.DeadlineExceeded
	}
	return e
}

// Error is how a wait ended unfinished.
type Error struct {
	What   string        // what was waited for
	Waited time.Duration // how long
	// Bound is the Spec's bound when that is what ended the wait, else 0:
	// then the caller's context ended it, for Cause.
	Bound time.Duration
	Cause error // context.Cause of the caller's context, or context.DeadlineExceeded for the bound
	Last  error // the condition's last error, nil when it had none
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Bound > 0 {
		fmt.Fprintf(&b, "gave up waiting for %s after %s", e.What, e.Bound)
	} else {
		fmt.Fprintf(&b, "stopped waiting for %s after %s: %v", e.What, e.Waited.Round(time.Millisecond), e.Cause)
	}
	if e.Last != nil {
		fmt.Fprintf(&b, "; last: %v", e.Last)
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see both why the wait ended and what
// stood in its way.
func (e *Error) Unwrap() []error {
	if e.Last == nil {
		return []error{e.Cause}
	}
	return []error{e.Cause, e.Last}
}
