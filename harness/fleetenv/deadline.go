package fleetenv

import (
	"context"
	"fmt"
	"time"
)

// A run bound by `go test -timeout` must finish its teardown before the
// test binary panics: the work (waits, checks) ends a reserve earlier, and
// the reserve is split between diagnostics and the teardown itself.
const (
	minReserve = 20 * time.Second
	maxReserve = 2 * time.Minute
)

// Reserve is how long before the hard deadline the run's work must end:
// a quarter of the whole time, at least minReserve and at most maxReserve.
func Reserve(total time.Duration) time.Duration {
	return min(max(total/4, minReserve), maxReserve)
}

// WorkContext returns a context that ends Reserve before deadline (the
// moment `go test -timeout` panics the binary); a zero deadline means none.
func WorkContext(parent context.Context, start, deadline time.Time) (context.Context, context.CancelFunc) {
	if deadline.IsZero() {
		return context.WithCancel(parent)
	}
	reserve := Reserve(deadline.Sub(start))
	return context.WithDeadlineCause(parent, deadline.Add(-reserve),
		fmt.Errorf("the run's time is up: go test -timeout ends at %s and the teardown keeps the last %s", deadline.Format("15:04:05"), reserve))
}

// teardownBy is when diagnostics must have ended so that the teardown (half
// of the reserve) still fits before the hard deadline of a run that
// started at start; zero without a deadline.
func teardownBy(deadline, start time.Time) time.Time {
	if deadline.IsZero() {
		return time.Time{}
	}
	return deadline.Add(-Reserve(deadline.Sub(start)) / 2)
}

// diagnosticsContext bounds one environment's diagnostics: diagnoseTimeout,
// and never past by (zero: no such bound). ok is false when no time is
// left for them.
func diagnosticsContext(ctx context.Context, by time.Time) (_ context.Context, _ context.CancelFunc, ok bool) {
	ctx = context.WithoutCancel(ctx)
	until := time.Now().Add(diagnoseTimeout)
	if !by.IsZero() && by.Before(until) {
		until = by
	}
	if time.Until(until) < time.Second {
		return ctx, func() {}, false
	}
	dctx, cancel := context.WithDeadline(ctx, until)
	return dctx, cancel, true
}
