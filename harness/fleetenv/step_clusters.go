package fleetenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// ClusterProvider is where a run's clusters come from (Options.Clusters).
type ClusterProvider string

const (
	// ProviderKind creates a kind cluster per environment (or reuses one).
	ProviderKind ClusterProvider = "kind"
	// ProviderKubeconfig connects to a cluster per environment, a context
	// of one kubeconfig, that the harness did not create.
	ProviderKubeconfig ClusterProvider = "kubeconfig"
)

// Clusters is the step "clusters": one cluster per environment with its
// API clients, in parallel. kind clusters are created (or reused);
// kubeconfig clusters are connected to and checked (connectClusters). It
// then starts the cluster-side work that finishes alongside the Flux
// install (clusterWork), and does not wait for it.
func Clusters() Step {
	return Step{Name: "clusters", run: func(ctx context.Context, r *Run) error {
		if r.opts.Clusters == ProviderKubeconfig {
			return connectClusters(ctx, r)
		}
		envs, err := createClusters(ctx, r.guard, r.opts, r.out)
		if err != nil {
			return err
		}
		for _, e := range envs {
			r.state.recordEnvironment(e, startClusterWork(ctx, e.Cluster, nodeImages(r.opts)))
			r.log.printf("%-11s kubeconfig %s", e.Name, e.Cluster.KubeconfigPath)
		}
		return nil
	}}
}

// nodeImages are the images loaded into new kind nodes: the kit's, and
// the fleet server's when it runs in the clusters.
func nodeImages(o Options) []string {
	images := o.Kit.PreloadImages
	if image := o.FleetServerImage(); o.Servers == ServersCluster && image != "" && !slices.Contains(images, image) {
		images = append(slices.Clone(images), image)
	}
	return images
}

// createClusters creates the clusters of o's environments through guard
// and returns them as environments, in o.Envs order.
func createClusters(ctx context.Context, guard *cluster.Guard, o Options, log io.Writer) ([]*Environment, error) {
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating work directory %s: %w", o.WorkDir, err)
	}
	specs := make([]cluster.Spec, 0, len(o.Envs))
	for _, env := range o.Envs {
		specs = append(specs, cluster.Spec{
			Name:       o.ClusterName(env),
			Fleet:      o.FleetDir,
			NodeImage:  o.Kit.NodeImage,
			KindConfig: o.Kit.KindConfig,
			WorkDir:    o.WorkDir,
			Reuse:      o.Reuse,
			// The images and the Service network come after, alongside
			// the Flux install (startClusterWork).
			Log: log,
		})
	}
	clusters, err := guard.CreateAll(ctx, specs)
	if err != nil {
		return nil, fmt.Errorf("creating clusters: %w", err)
	}
	envs := make([]*Environment, 0, len(clusters))
	for i, c := range clusters {
		clients, err := fluxobj.NewClients(c.RESTConfig)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Envs[i], err)
		}
		envs = append(envs, &Environment{Name: o.Envs[i], Cluster: c, Clients: clients})
	}
	return envs, nil
}

// clusterWorkTimeout bounds the cluster-side work of one environment: the
// error then says which part did not finish.
const clusterWorkTimeout = fluxInstallTimeout

// clusterWork is the cluster-side work of one fresh cluster that can
// overlap the Flux install: kube-proxy programming the Service network,
// the images the node image lacks loading into the nodes, and the API
// server's own address (where the controllers reach it without that
// Service network).
type clusterWork struct {
	network   *future[struct{}]
	images    *future[struct{}]
	apiServer *future[string]
	// stop cancels the work and waits until it ended.
	stop func()
}

// startClusterWork starts c's cluster-side work under a watch of its API
// server, so that a cluster that goes away ends it at once.
func startClusterWork(ctx context.Context, c *cluster.Cluster, images []string) *clusterWork {
	ctx, cancel := context.WithTimeoutCause(ctx, clusterWorkTimeout,
		fmt.Errorf("%s: the Service network and the image load did not finish within %s", c.Name, clusterWorkTimeout))
	wctx, stopWatch := c.WatchAPI(ctx)
	var running sync.WaitGroup
	start := func(f func(ctx context.Context) error) *future[struct{}] {
		running.Add(1)
		return startFuture(wctx, func(ctx context.Context) (struct{}, error) {
			defer running.Done()
			return struct{}{}, f(ctx)
		})
	}
	w := &clusterWork{
		network: start(func(ctx context.Context) error { return c.WaitServiceNetwork(ctx, 0) }),
		images:  start(func(ctx context.Context) error { return c.LoadImages(ctx, images...) }),
	}
	running.Add(1)
	w.apiServer = startFuture(wctx, func(ctx context.Context) (string, error) {
		defer running.Done()
		return c.APIServerEndpoint(ctx)
	})
	// The watch and the bound end with the work, not with the step.
	go func() {
		running.Wait()
		stopWatch()
		cancel()
	}()
	w.stop = func() {
		cancel()
		running.Wait()
	}
	return w
}
