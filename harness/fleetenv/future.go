package fleetenv

import "context"

// future is work started now whose result a later step waits for.
type future[T any] struct {
	done <-chan struct{}
	val  T
	err  error
}

// startFuture runs f in its own goroutine; its error carries why ctx ended
// when that is what stopped it.
func startFuture[T any](ctx context.Context, f func(ctx context.Context) (T, error)) *future[T] {
	done := make(chan struct{})
	fu := &future[T]{done: done}
	go func() {
		defer close(done)
		fu.val, fu.err = f(ctx)
		fu.err = withCause(ctx, fu.err)
	}()
	return fu
}

// wait returns the result once the work is done, or ctx's error first.
func (f *future[T]) wait(ctx context.Context) (T, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}
