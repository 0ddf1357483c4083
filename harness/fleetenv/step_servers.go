package fleetenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
)

// ServersOnKindNetwork is the step "servers on the kind network": the
// fleet's git repository, and the charts, served on the kind network's
// gateway, where the nodes reach the host.
func ServersOnKindNetwork() Step {
	return Step{Name: "servers on the kind network", run: func(ctx context.Context, r *Run) error {
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
	}}
}

// serveFleet starts the git server for o's fleet on host, at the revision
// the run starts with.
func serveFleet(ctx context.Context, o Options, host, tempDir string, log io.Writer) (*gitserver.Server, error) {
	git, err := gitserver.Start(ctx, gitserver.Options{
		Addr: host, SourceDir: o.FleetDir, Revision: o.firstRevision(), Log: log, TempDir: tempDir,
		// Kubeconfigs and diagnostics never reach a cluster, ignored or not.
		Exclude: []string{o.WorkDir, o.ArtifactsDir},
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
