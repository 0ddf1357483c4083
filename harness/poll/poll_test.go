package poll

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDoneAtOnceDoesNotWait(t *testing.T) {
	calls := 0
	start := time.Now()
	err := Until(context.Background(), Every(time.Hour).Within(time.Hour).For("nothing"), func(context.Context) (bool, error) {
		calls++
		return true, nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("Until = %v after %d calls; want nil after 1", err, calls)
	}
	// An interval of an hour: a wait of even one interval would show.
	if took := time.Since(start); took > time.Minute {
		t.Errorf("Until took %s for a condition done at once", took)
	}
}

func TestDoneAfterPolls(t *testing.T) {
	const interval = 5 * time.Millisecond
	calls := 0
	start := time.Now()
	err := Until(context.Background(), Every(interval).Within(time.Minute).For("the third call"), func(context.Context) (bool, error) {
		calls++
		if calls == 3 {
			return true, nil
		}
		return false, fmt.Errorf("call %d: not yet", calls)
	})
	if err != nil {
		t.Fatalf("Until = %v; want nil once the condition is done", err)
	}
	if calls != 3 {
		t.Errorf("condition asked %d times, want 3", calls)
	}
	// Two pauses lie between three calls.
	if took := time.Since(start); took < 2*interval {
		t.Errorf("three calls took %s, want at least two intervals (%s)", took, 2*interval)
	}
}

// The first call answers at once; every later one is cut short by the
// bound, as a request in flight is. The error names what was waited for,
// the bound, and the last answer given while the wait still ran — not
// what the cut-short call saw, however late it returned on a loaded
// machine.
func TestBoundReachedNamesWhatAndLastError(t *testing.T) {
	const bound = 200 * time.Millisecond
	calls := 0
	err := Until(context.Background(), Every(10*time.Millisecond).Within(bound).For("the kubernetes Service"), func(ctx context.Context) (bool, error) {
		calls++
		if calls > 1 {
			<-ctx.Done()
			return false, fmt.Errorf("try %d: %w", calls, ctx.Err())
		}
		return false, fmt.Errorf("try %d: connection refused", calls)
	})
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("Until = %v (%T); want an *Error", err, err)
	}
	want := "gave up waiting for the kubernetes Service after 200ms; last: try 1: connection refused"
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	if pe.Bound != bound || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Bound = %s, Is(DeadlineExceeded) = %v; want %s, true", pe.Bound, errors.Is(err, context.DeadlineExceeded), bound)
	}
	if pe.Waited < bound {
		t.Errorf("Waited = %s, less than the bound %s", pe.Waited, bound)
	}
}

func TestBoundReachedWithoutObservation(t *testing.T) {
	err := Until(context.Background(), Every(time.Millisecond).Within(20*time.Millisecond).For("x"), func(context.Context) (bool, error) {
		return false, nil
	})
	if want := "gave up waiting for x after 20ms"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// A condition that answers "not yet" without an error has nothing in the
// way any more: an older error is not reported as the last.
func TestLastIsTheLatestAnswer(t *testing.T) {
	// The wait ends from the third answer on: a bound could end it before
	// the second on a loaded machine.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	calls := 0
	err := Until(ctx, Every(time.Millisecond).For("x"), func(context.Context) (bool, error) {
		calls++
		switch calls {
		case 1:
			return false, errors.New("first answer")
		case 3:
			cancel(errors.New("enough answers"))
		}
		return false, nil
	})
	var pe *Error
	if !errors.As(err, &pe) || pe.Last != nil {
		t.Errorf("Until = %v; want an *Error without a last error", err)
	}
}

func TestContextCancelledKeepsCause(t *testing.T) {
	stop := errors.New("interrupted by the test")
	ctx, cancel := context.WithCancelCause(context.Background())
	calls := 0
	err := Until(ctx, Every(time.Millisecond).Within(time.Minute).For("the lock"), func(ctx context.Context) (bool, error) {
		calls++
		if calls == 3 {
			cancel(stop)
			// What a request cut short says is not kept over the answer before.
			return false, ctx.Err()
		}
		return false, errors.New("held by another build")
	})
	var pe *Error
	if !errors.As(err, &pe) || !errors.Is(err, stop) {
		t.Fatalf("Until = %v; want an *Error wrapping the cause %q", err, stop)
	}
	want := fmt.Sprintf("stopped waiting for the lock after %s: interrupted by the test; last: held by another build", pe.Waited.Round(time.Millisecond))
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	if pe.Bound != 0 || calls != 3 {
		t.Errorf("Bound = %s after %d calls; want 0 (the caller's context ended the wait) after 3", pe.Bound, calls)
	}
}

func TestCallerDeadlineIsNotTheBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := Until(ctx, Every(time.Millisecond).For("x"), func(context.Context) (bool, error) { return false, nil })
	var pe *Error
	if !errors.As(err, &pe) || pe.Bound != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Until = %v; want an *Error with no Bound wrapping context.DeadlineExceeded", err)
	}
}

func TestTerminalErrorStopsAtOnce(t *testing.T) {
	final := errors.New("image pull back-off")
	calls := 0
	err := Until(context.Background(), Every(time.Hour).Within(time.Hour).For("x"), func(context.Context) (bool, error) {
		calls++
		return true, final
	})
	if err != final || calls != 1 {
		t.Errorf("Until = %v after %d calls; want the condition's own error after 1", err, calls)
	}
}

func TestConditionContextEndsWithTheBound(t *testing.T) {
	var seen context.Context
	_ = Until(context.Background(), Every(time.Millisecond).Within(10*time.Millisecond).For("x"), func(ctx context.Context) (bool, error) {
		seen = ctx
		return false, nil
	})
	if seen.Err() == nil {
		t.Error("the condition's context is still live after the bound")
	}
}

func TestIntervalMustBePositive(t *testing.T) {
	called := false
	err := Until(context.Background(), Every(0).For("x"), func(context.Context) (bool, error) {
		called = true
		return true, nil
	})
	if want := "waiting for x: the poll interval 0s is not positive"; err == nil || err.Error() != want || called {
		t.Errorf("Until = %v (condition called: %v); want %q without a call", err, called, want)
	}
}
