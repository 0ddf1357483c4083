package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxsync"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
)

// ServerMode is where the git and chart servers run (Options.Servers).
type ServerMode string

const (
	// ServersHost serves from this machine, on the kind network's gateway.
	ServersHost ServerMode = "host"
	// ServersCluster deploys the fleet server into each cluster and hands
	// it the fleet and the charts through the API server.
	ServersCluster ServerMode = "cluster"
)

// loopback is where the git server listens when the clusters do not fetch
// from it: it only makes the snapshots the in-cluster servers are handed.
const loopback = "127.0.0.1"

// Servers is the step "servers": the fleet's git repository and the charts,
// served where the clusters reach them. On the host (Options.Servers
// "host"): on the kind network's gateway. In the clusters ("cluster"): the
// fleet server deployed into each one, handed the snapshot and the charts
// through the API server, so that a cluster with no route to this machine
// can sync.
func Servers() Step {
	return Step{Name: "servers", run: func(ctx context.Context, r *Run) error {
		if r.opts.Servers == ServersCluster {
			return serveInClusters(ctx, r)
		}
		return serveOnKindNetwork(ctx, r)
	}}
}

// serveOnKindNetwork serves the fleet, and the charts, on the kind
// network's gateway, where the nodes reach the host.
func serveOnKindNetwork(ctx context.Context, r *Run) error {
	host, err := cluster.HostAddress(ctx)
	if err != nil {
		return err
	}
	tmp, err := r.work.dir()
	if err != nil {
		return err
	}
	git, err := serveFleet(ctx, r.opts, host, tmp, prefixed(r.out, "git"))
	if err != nil {
		return err
	}
	// Recorded at once: Down must close it even when the charts fail.
	r.state.recordServers(git, host, 0)
	r.log.printf("serving %s at %s (revision %s: %s)", r.opts.FleetDir, git.URL(), git.Revision(), git.Origin())
	charts := r.state.chartServer()
	if charts == nil {
		return nil
	}
	hostPort, port, err := serveChartsOn(ctx, charts, host)
	if err != nil {
		return err
	}
	r.state.recordServers(git, host, port)
	r.log.printf("charts at http://%s (in the clusters: http://%s)", hostPort, chartserver.InClusterHost)
	return nil
}

// serveInClusters snapshots the fleet on this machine (the git server on
// loopback, which only the harness reads) and deploys the fleet server into
// every cluster, handing it that snapshot and the charts.
func serveInClusters(ctx context.Context, r *Run) error {
	image := r.opts.FleetServerImage()
	if image == "" {
		return errors.New("-servers=cluster: no fleet server image: set E2E_SERVER_IMAGE, or rebuild the kit (go run ./hack/kit), which builds one (FLEET_SERVER_IMAGE)")
	}
	tmp, err := r.work.dir()
	if err != nil {
		return err
	}
	git, err := serveFleet(ctx, r.opts, loopback, tmp, prefixed(r.out, "git"))
	if err != nil {
		return err
	}
	r.state.recordServers(git, "", 0)
	r.log.printf("snapshot of %s (revision %s: %s), served in the clusters by %s", r.opts.FleetDir, git.Revision(), git.Origin(), image)
	charts := r.state.chartServer()
	return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		srv, err := deployFleetServer(ctx, e, image, prefixed(r.out, e.Name+" server"))
		if err != nil {
			return fmt.Errorf("%s: deploying the fleet server: %w", e.Name, err)
		}
		r.state.recordFleetServer(e.Name, srv)
		if err := pushToFleetServer(ctx, srv, git, charts); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		r.log.printf("%-11s fleet server at %s", e.Name, srv.GitURL())
		return nil
	})
}

// pushToFleetServer hands an in-cluster fleet server the charts (when
// served) and the fleet's served branch, charts first: the new revision
// may use a chart version that is new too.
func pushToFleetServer(ctx context.Context, srv fleetServer, git *gitserver.Server, charts *chartserver.Server) error {
	if charts != nil {
		if err := srv.PushCharts(ctx, charts.Set()); err != nil {
			return fmt.Errorf("pushing the charts to the fleet server: %w", err)
		}
	}
	if err := srv.PushGit(ctx, func(w io.Writer) error { return git.Bundle(ctx, w) }); err != nil {
		return fmt.Errorf("pushing the fleet to the fleet server: %w", err)
	}
	return nil
}

// inClusterSyncOptions point env's sync at the fleet server in its
// cluster, which made the chart sources' Service and Secrets itself.
func inClusterSyncOptions(env string, git *gitserver.Server, srv fleetServer) fluxsync.Options {
	user, pass := srv.GitCredentials()
	return fluxsync.Options{
		URL:      srv.GitURL(),
		Branch:   git.Branch(),
		Path:     "./clusters/" + env,
		Username: user,
		Password: pass,
	}
}

// serveFleet starts the git server for o's fleet on host, at the revision
// the run starts with.
func serveFleet(ctx context.Context, o Options, host, tempDir string, log io.Writer) (*gitserver.Server, error) {
	git, err := gitserver.Start(ctx, gitserver.Options{
		Addr: host, SourceDir: o.FleetDir, Revision: o.firstRevision(), Log: log, TempDir: tempDir,
		// Kubeconfigs (the user's too) and diagnostics never reach a
		// cluster, ignored or not.
		Exclude: append([]string{o.WorkDir, o.ArtifactsDir}, filepath.SplitList(o.Kubeconfig)...),
	})
	if err != nil {
		return nil, fmt.Errorf("serving fleet %s: %w", o.FleetDir, err)
	}
	return git, nil
}

// serveChartsOn adds a listener on host to the chart server and returns
// its address and port.
func serveChartsOn(ctx context.Context, charts *chartserver.Server, host string) (string, int, error) {
	hostPort, err := charts.AddListener(ctx, host)
	if err != nil {
		return "", 0, fmt.Errorf("serving charts on %s: %w", host, err)
	}
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", 0, fmt.Errorf("chart server address %q: %w", hostPort, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("chart server address %q: %w", hostPort, err)
	}
	return hostPort, port, nil
}
