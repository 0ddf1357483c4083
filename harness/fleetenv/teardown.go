package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/flux-fleet/flux-fleet/harness/report"
)

// Down stops the cluster work and the servers, deletes the clusters this
// run created unless the keep policy keeps them, removes what it installed
// on clusters it did not create (those are never deleted) unless the keep
// policy keeps that, and removes the run's temporary files. It is safe to
// call more than once.
func (r *Run) Down(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	// First, so that nothing still loads images into a cluster being deleted.
	for _, w := range r.state.takeClusterWork() {
		w.stop()
	}
	failed := r.failed.Load()
	errs := []error{r.downExisting(ctx, r.opts.Keep.Keep(failed))}
	git, charts := r.state.takeServers()
	if git != nil {
		errs = append(errs, git.Close())
	}
	if charts != nil {
		errs = append(errs, charts.Close())
	}
	errs = append(errs, r.guard.Cleanup(ctx, failed))
	errs = append(errs, r.work.close())
	writeRunReport(r.log, r.opts.ArtifactsDir, r.state.report)
	if r.opts.Keep.Keep(failed) {
		for _, env := range r.opts.Envs {
			if e := r.Env(env); e != nil && e.Cluster != nil && !e.Cluster.Existing() {
				r.log.printf("kept cluster %s: export KUBECONFIG=%s", e.Cluster.Name, e.Cluster.KubeconfigPath)
			}
		}
	}
	return errors.Join(errs...)
}

// downExisting undoes the run's work on the clusters it did not create:
// unless kept, it removes the fleet, Flux and the fleet server (uninstall);
// kept, it labels what stays as the harness's for the next run. The fleet
// servers' port-forwards stop either way.
func (r *Run) downExisting(ctx context.Context, keep bool) error {
	servers := r.state.takeFleetServers()
	var errs []error
	for _, env := range r.opts.Envs {
		e, srv := r.Env(env), servers[env]
		if e != nil && e.Cluster != nil && e.Cluster.Existing() {
			errs = append(errs, r.leaveExisting(ctx, e, srv, keep), e.Cluster.ReleaseExisting(ctx))
		}
		if srv != nil {
			errs = append(errs, srv.Close())
		}
	}
	return errors.Join(errs...)
}

// leaveExisting is downExisting for one environment.
func (r *Run) leaveExisting(ctx context.Context, e *Environment, srv fleetServer, keep bool) error {
	if keep {
		// The install labeled what it applied as the harness's
		// (fluxinstall.Options.Labels): the next run finds it its own.
		r.log.printf("kept the fleet and Flux on context %s (keep=%s); E2E_REUSE=true re-syncs them, a run without it removes them", e.Cluster.Context, r.opts.Keep)
		return nil
	}
	if err := uninstall(ctx, e, srv, r.log); err != nil {
		return fmt.Errorf("%s: %w", e.Name, err)
	}
	return nil
}

// writeRunReport writes the run report (report.json, report.html,
// report.md) into the artifacts directory; a report that cannot be written
// is said, never a failure of the run.
func writeRunReport(log logger, dir string, b *report.Builder) {
	if dir == "" {
		return
	}
	if err := report.WriteAll(dir, b.Report(time.Now())); err != nil {
		log.printf("run report not written: %v", err)
		return
	}
	log.printf("run report: %s", filepath.Join(dir, "report.html"))
}

// BeforeEachTest is an e2e-framework TestEnvFunc: it notes when a check
// started, for the run report.
func (r *Run) BeforeEachTest(ctx context.Context, _ *envconf.Config, t *testing.T) (context.Context, error) {
	r.checkStarts.Store(t.Name(), time.Now())
	return ctx, nil
}

// AfterEachTest is an e2e-framework TestEnvFunc: it records the check in the
// run report; a failed test marks the run failed (for the keep policy) and
// gets the diagnostics of every environment that was not diagnosed yet.
func (r *Run) AfterEachTest(ctx context.Context, _ *envconf.Config, t *testing.T) (context.Context, error) {
	r.state.report.AddCheck(checkResult(t, &r.checkStarts))
	if t.Failed() {
		r.MarkFailed()
		r.diag.all(ctx)
	}
	return ctx, nil
}

// checkResult is how a check went, for the run report; the failure text
// stays in the test log, since a check's message may quote what it read.
func checkResult(t *testing.T, starts *sync.Map) report.Check {
	c := report.Check{Name: t.Name(), Result: report.Passed}
	if start, ok := starts.Load(t.Name()); ok {
		c.Seconds = time.Since(start.(time.Time)).Seconds()
	}
	switch {
	case t.Failed():
		c.Result, c.Failure = report.Failed, "failed: see the test log"
	case t.Skipped():
		c.Result = report.Skipped
	}
	return c
}
