package fleetenv

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/readiness"
)

// Wait is the step "wait": each environment's readiness outcome recorded.
// It fails only when a wait could not run at all; an environment that is
// not Ready is in its outcome, diagnosed.
func Wait() Step {
	return Step{Name: "wait", run: func(ctx context.Context, r *Run) error {
		start := time.Now()
		return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
			return r.waitAndRecord(ctx, e, start)
		})
	}}
}

// waitForFleet waits until every object the fleet defines in e is Ready,
// or one fails, within o.Timeout; the wait's progress goes to out.
func waitForFleet(ctx context.Context, e *Environment, o Options, out io.Writer) waitOutcome {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	report, err := readiness.WaitForFlux(ctx, e.Clients, readiness.Options{
		Env:             e.Name,
		Out:             out,
		RawValues:       o.RawValues,
		PodFailureGrace: o.PodFailureGrace,
	})
	return waitOutcome{report: report, err: err}
}

// waitAndRecord is the wait of one environment as every caller runs it
// (bring-up, publish, upgrade): the outcome recorded with what runs, a
// failure diagnosed, green with each object's time to Ready. start is when
// the awaited change began, for the log.
func (r *Run) waitAndRecord(ctx context.Context, e *Environment, start time.Time) error {
	outcome := waitForFleet(ctx, e, r.opts, r.out)
	r.state.recordOutcome(e.Name, outcome)
	defer r.records.write(ctx, e)
	if outcome.err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", e.Name, outcome.err)
		}
		// The wait's messages come with their values replaced (readiness.Options.RawValues).
		r.log.printf("%-11s NOT READY after %s: %v", e.Name, since(start), outcome.err)
		r.MarkFailed()
		r.diag.once(ctx, e.Name)
		return nil
	}
	r.log.printf("%-11s green in %s", e.Name, since(start))
	// Per object: time to Ready and how late the harness saw the flip.
	fmt.Fprint(r.out, outcome.report.String())
	return nil
}
