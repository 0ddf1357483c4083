package cluster

import (
	"context"
	"fmt"
)

// kindCall runs f, a kind library call that takes no context, so that a
// cancelled ctx returns at once with an error naming what was interrupted.
// f still runs to its end in the background: kind's own cleanup on failure
// (deleting a half-made cluster, closing its docker commands) is not cut
// short. f is not started when ctx has already ended.
func kindCall[T any](ctx context.Context, what string, f func() (T, error)) (T, error) {
	var zero T
	if ctx.Err() != nil {
		return zero, fmt.Errorf("%s: not started: %w", what, context.Cause(ctx))
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, fmt.Errorf("%s: interrupted (kind finishes the call in the background): %w", what, context.Cause(ctx))
	}
}

// kindDo is kindCall for calls that return only an error.
func kindDo(ctx context.Context, what string, f func() error) error {
	_, err := kindCall(ctx, what, func() (struct{}, error) { return struct{}{}, f() })
	return err
}
