package fleetenv

import (
	"context"
	"fmt"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/fluxsync"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
)

// syncTimeout bounds the first fetch of the fleet's revision: a git server
// that cannot be reached fails faster than that (fluxsync's grace).
const syncTimeout = 2 * time.Minute

// Sync is the step "sync": each environment's sync objects (its
// clusters/<env> from the git server, and the chart sources) applied, and
// the served revision fetched.
func Sync() Step {
	return Step{Name: "sync", run: func(ctx context.Context, r *Run) error {
		srv := r.state.serversNow()
		if srv.git == nil {
			return fmt.Errorf("nothing is served: the servers step did not run")
		}
		return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
			ctx, cancel := context.WithTimeout(ctx, syncTimeout)
			defer cancel()
			if err := fluxsync.Apply(ctx, e.Clients, syncOptions(e.Name, srv)); err != nil {
				return fmt.Errorf("%s: syncing clusters/%s: %w", e.Name, e.Name, err)
			}
			return fetchRevision(ctx, e, srv.git, srv.git.Revision())
		})
	}}
}

// syncOptions point env's sync at its directory on the git server, with
// the chart server's sources when there is one.
func syncOptions(env string, srv servers) fluxsync.Options {
	if in := srv.inCluster[env]; in != nil {
		return inClusterSyncOptions(env, srv.git, in)
	}
	user, pass := srv.git.Credentials()
	opts := fluxsync.Options{
		URL:      srv.git.URL(),
		Branch:   srv.git.Branch(),
		Path:     "./clusters/" + env,
		Username: user,
		Password: pass,
	}
	if srv.charts != nil {
		opts.Extra = srv.charts.ClusterObjects(srv.gateway, srv.chartsPort)
	}
	return opts
}

// fetchRevision asks Flux to fetch a published commit now (a reused
// cluster may hold an older one) and waits until it has.
func fetchRevision(ctx context.Context, e *Environment, git *gitserver.Server, commit string) error {
	if err := fluxsync.RequestReconcile(ctx, e.Clients, fluxobj.Namespace, fluxobj.SyncName); err != nil {
		return fmt.Errorf("%s: requesting reconciliation: %w", e.Name, err)
	}
	if err := fluxsync.WaitForRevision(ctx, e.Clients, fluxobj.Namespace, fluxobj.SyncName, git.FluxRevision(commit), 0); err != nil {
		return fmt.Errorf("%s: waiting for revision %s: %w", e.Name, commit, err)
	}
	return nil
}
