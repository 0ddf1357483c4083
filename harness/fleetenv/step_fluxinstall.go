package fleetenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// fluxInstallTimeout bounds the Flux install of one environment: the error
// then names each controller Deployment that is not Available and its last
// condition.
const fluxInstallTimeout = 5 * time.Minute

// sourceControllerService is the Service Flux's install gives
// source-controller, where the other controllers fetch artifacts.
const sourceControllerService = "source-controller"

// FluxInstall is the step "flux install": Flux on every cluster while the
// cluster work the clusters step started finishes. The controllers reach
// the API server at its own address, so they need not wait for the Service
// network; the step ends when both are done, because the sync needs both.
func FluxInstall() Step {
	return Step{Name: "flux install", run: func(ctx context.Context, r *Run) error {
		return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
			start := time.Now()
			work := r.state.clusterWorkOf(e.Name)
			if work == nil {
				return fmt.Errorf("%s: the clusters step started no cluster work", e.Name)
			}
			set, err := r.opts.fluxAtInstall()
			if err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
			opts := withFluxSet(fluxInstallOptions(r.opts, e, prefixed(r.out, e.Name)), set)
			res, err := installFlux(ctx, e, work, opts, set.Images)
			if err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
			r.state.recordFluxInstall(e.Name, res)
			r.log.printf("%-11s flux %s (%s) ready in %s, with the Service network (%.1fs) and images (%.1fs) alongside",
				e.Name, res.Version, strings.Join(res.Components, ", "), since(start),
				e.Cluster.ServiceNetworkTook.Seconds(), e.Cluster.LoadTook.Seconds())
			return nil
		})
	}}
}

// fluxInstallOptions are the install's options for e, without what the
// cluster work provides (the API server's address, the wait for images).
func fluxInstallOptions(o Options, e *Environment, out io.Writer) fluxinstall.Options {
	opts := fluxinstall.Options{
		Components:     o.FluxComponents,
		ManifestsDir:   o.Kit.FluxManifests,
		ControllerArgs: fluxinstall.HarnessControllerArgs(o.FluxComponents),
		// A controller is ready a second or two after it starts.
		ReadinessProbePeriod: time.Second,
		ClusterName:          e.Cluster.Name,
		Out:                  out,
		// What a teardown on a cluster the run did not create deletes.
		Labels: map[string]string{cluster.ManagedByLabel: cluster.ManagedByValue},
	}
	if dir := filepath.Join(o.Kit.FluxManifests, "extra-crds"); o.Kit.FluxManifests != "" && exists(dir) {
		opts.ExtraCRDsDir = dir
	}
	return opts
}

// installFlux installs Flux on e once its cluster work allows: the manifests
// are generated while the images load, and applied once they are on the
// nodes (a controller pod made before its image is there goes into a pull
// back-off: there is no registry). It returns once the Service network
// carries source-controller's Service too.
func installFlux(ctx context.Context, e *Environment, work *clusterWork, opts fluxinstall.Options, images []string) (*fluxinstall.Result, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, fluxInstallTimeout,
		fmt.Errorf("%s: the Flux install did not finish within %s", e.Name, fluxInstallTimeout))
	defer cancel()
	apiServer, err := work.apiServer.wait(ctx)
	if err != nil {
		return nil, err
	}
	opts.APIServer = apiServer
	opts.BeforeApply = func(ctx context.Context) error {
		if _, err := work.images.wait(ctx); err != nil {
			return err
		}
		// A base Flux's images (E2E_FLUX_BASE) are not in the kit's node
		// image: loaded here, only where a node lacks them.
		return e.Cluster.LoadImages(ctx, images...)
	}
	res, err := fluxinstall.Install(ctx, e.Clients, opts)
	if err != nil {
		return nil, fmt.Errorf("installing Flux: %w", err)
	}
	if _, err := work.network.wait(ctx); err != nil {
		return nil, err
	}
	// The sync's first step is kustomize-controller fetching from
	// source-controller through its Service: reachable only once kube-proxy
	// has programmed it, which can trail the controller's Ready.
	if err := e.Cluster.WaitServiceAnswers(ctx, fluxobj.Namespace, sourceControllerService, time.Minute); err != nil {
		return nil, err
	}
	return res, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
