package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/fluxsync"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
)

// clearTimeout bounds Clear: uninstalling releases and terminating
// namespaces is quick; a finalizer that never finishes is reported.
const clearTimeout = 2 * time.Minute

// Publisher changes what a brought-up run serves on its kept clusters: the
// edit → re-sync loop (Republish), another revision (PublishRevision), and
// taking the fleet off so that the next one starts from an empty cluster
// (Clear).
type Publisher struct {
	run *Run
	// cleared: Clear suspended the sync; the next publish resumes it.
	cleared atomic.Bool
}

// Republish snapshots the fleet (with Options.Revision, that revision
// again) and its charts, points every environment at the new revision and
// waits for them. ctx bounds it; so does the run's Timeout.
func (p *Publisher) Republish(ctx context.Context) (time.Duration, error) {
	return p.PublishRevision(ctx, p.run.opts.Revision)
}

// PublishRevision is Republish for another revision of the checkout that
// holds the fleet ("" = the working tree): a kept cluster, cleared, brought
// to a base of its own before an Upgrade.
func (p *Publisher) PublishRevision(ctx context.Context, revision string) (time.Duration, error) {
	r := p.run
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	start := time.Now()
	srv := r.state.serversNow()
	if srv.git == nil {
		return 0, errors.New("nothing is served yet: bring the run up first")
	}
	rev, err := r.publish(ctx, revision)
	if err != nil {
		return 0, err
	}
	err = eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		if err := fetchRevision(ctx, e, srv.git, rev); err != nil {
			return err
		}
		// Only now: resumed before the GitRepository holds the new revision,
		// the sync would briefly re-apply the cleared fleet's Kustomizations,
		// and they would apply the new sources with the old specs.
		if p.cleared.Load() {
			if err := fluxsync.Resume(ctx, e.Clients, fluxobj.Namespace, fluxobj.SyncName); err != nil {
				return fmt.Errorf("%s: resuming the sync: %w", e.Name, err)
			}
		}
		return r.waitAndRecord(ctx, e, start)
	})
	p.cleared.Store(false)
	return time.Since(start), err
}

// Clear takes the fleet off every environment and keeps the clusters with
// Flux installed, so that scenarios can share one cluster: the next fleet is
// edited into the served directory and Republish brings it up, from a
// cluster as empty as a fresh one, without creating a cluster and
// installing Flux again. It returns how long the clearing took.
func (p *Publisher) Clear(ctx context.Context) (time.Duration, error) {
	r := p.run
	ctx, cancel := context.WithTimeout(ctx, clearTimeout)
	defer cancel()
	start := time.Now()
	err := eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		if err := fluxsync.Clear(ctx, e.Clients, fluxobj.Namespace, fluxobj.SyncName); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		r.state.clearOutcome(e.Name)
		r.diag.forget(e.Name)
		return nil
	})
	p.cleared.Store(true)
	if err == nil {
		r.log.printf("fleet cleared from every environment in %s", since(start))
	}
	return time.Since(start), err
}

// publish publishes the charts (when served) and the fleet at revision
// ("" = the working tree) where the clusters fetch them: on the host, and
// to the fleet server in each cluster. It returns the commit served now.
func (r *Run) publish(ctx context.Context, revision string) (string, error) {
	srv := r.state.serversNow()
	if srv.git == nil {
		return "", errors.New("nothing is served yet: bring the run up first")
	}
	rev, err := publishFleet(ctx, srv.git, srv.charts, revision)
	if err != nil {
		return "", err
	}
	g, gctx := errgroup.WithContext(ctx)
	for env, in := range srv.inCluster {
		g.Go(func() error {
			if err := pushToFleetServer(gctx, in, srv.git, srv.charts); err != nil {
				return fmt.Errorf("%s: %w", env, err)
			}
			return nil
		})
	}
	return rev, g.Wait()
}

// publishFleet publishes the charts (when served) and the fleet at
// revision ("" = the working tree) on the host, and returns the commit
// served now.
func publishFleet(ctx context.Context, git *gitserver.Server, charts *chartserver.Server, revision string) (string, error) {
	if charts != nil {
		if _, err := charts.Publish(ctx); err != nil {
			return "", fmt.Errorf("publishing charts: %w", err)
		}
	}
	var rev string
	var err error
	if revision != "" {
		rev, err = git.PublishRevision(ctx, revision)
	} else {
		rev, err = git.Publish(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("publishing fleet: %w", err)
	}
	return rev, nil
}
