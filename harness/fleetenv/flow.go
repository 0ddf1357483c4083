package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
)

// Step is one named step of a bring-up. Its body takes what it needs from
// the run and hands its result back for the run to record.
type Step struct {
	Name string
	run  func(ctx context.Context, r *Run) error
}

// StepTiming is how long one step of a bring-up took.
type StepTiming struct {
	Name string
	Took time.Duration
	Err  error
}

// BringUp is the flow, in order: checks that need no cluster come first,
// so that a broken fleet fails in seconds; with a base, the upgrade, and
// with a base Flux, the Flux upgrade last.
func BringUp(o Options) []Step {
	steps := []Step{
		OfflineChecks(),
		ChartServer(),
		Preflight(),
		Clusters(),
		Servers(),
		FluxInstall(),
		Sync(),
		Wait(),
	}
	if o.Base != "" {
		steps = append(steps, UpgradeFromBase())
	}
	if o.FluxBase != "" {
		steps = append(steps, FluxUpgrade())
	}
	return steps
}

// Step returns s as an e2e-framework environment function; it also puts
// the Run into the context the features receive.
func (r *Run) Step(s Step) env.Func {
	return func(ctx context.Context, _ *envconf.Config) (context.Context, error) {
		ctx = WithRun(ctx, r)
		return ctx, r.runStep(ctx, s)
	}
}

// Up runs the steps of BringUp in order, for callers outside e2e-framework
// (scenarios, benchmarks). Down undoes it.
func (r *Run) Up(ctx context.Context) error {
	for _, s := range BringUp(r.opts) {
		if err := r.runStep(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// Timings returns the steps run so far, in order, with their durations.
func (r *Run) Timings() []StepTiming { return r.state.stepTimings() }

// runStep runs one step with its timing lines; its error names the step.
func (r *Run) runStep(ctx context.Context, s Step) error {
	if s.run == nil {
		return fmt.Errorf("step %q has no body: make steps with their constructors (BringUp)", s.Name)
	}
	if err := r.timed(ctx, s.Name, func(ctx context.Context) error { return s.run(ctx, r) }); err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	return nil
}

// timed runs do as the named step: a start line, a done or FAILED line
// with the time it took, its timing recorded, and a failure marks the run
// failed. A step ended by its context says why the context ended.
func (r *Run) timed(ctx context.Context, name string, do func(ctx context.Context) error) error {
	start := time.Now()
	r.log.printf("step %s ...", name)
	err := withCause(ctx, do(ctx))
	r.state.recordTiming(StepTiming{Name: name, Took: time.Since(start), Err: err}, start)
	if err != nil {
		r.MarkFailed()
		r.log.printf("step %-28s FAILED after %s", name, since(start))
		return err
	}
	r.log.printf("step %-28s done in %s", name, since(start))
	return nil
}

// withCause adds why ctx ended to err, when it did end: an interrupt, the
// test deadline or a cluster gone, which a wrapped "context canceled" alone
// does not say.
func withCause(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%v)", err, cause)
	}
	return err
}

// eachEnv runs f for every named environment in parallel. Each f runs under
// a watch of its cluster's API server: a cluster that is deleted or stops
// answering ends f within seconds with what the cluster answered, instead
// of letting its waits run to their timeouts.
func eachEnv(ctx context.Context, s *runState, names []string, f func(ctx context.Context, e *Environment) error) error {
	envs, err := s.environments(names)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, e := range envs {
		g.Go(func() error {
			wctx, stop := e.Cluster.WatchAPI(gctx)
			defer stop()
			err := f(wctx, e)
			var gone *cluster.GoneError
			if err != nil && errors.As(context.Cause(wctx), &gone) {
				return fmt.Errorf("%s: %w (while: %v)", e.Name, gone, err)
			}
			return err
		})
	}
	return g.Wait()
}
