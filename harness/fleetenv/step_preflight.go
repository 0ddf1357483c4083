package fleetenv

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/preflight"
)

// Preflight is the step "pre-flight": every HelmRelease of every tree the
// run will serve resolved and rendered before any cluster exists. Sources
// that cannot be reached from here (public registries on a machine without
// internet) are reported and left to the clusters; every other finding
// fails the run.
func Preflight() Step {
	return Step{Name: "pre-flight", run: func(ctx context.Context, r *Run) error {
		if !r.opts.Preflight {
			r.log.printf("pre-flight skipped (E2E_PREFLIGHT=false)")
			return nil
		}
		trees, err := r.work.treesToServe(ctx)
		if err != nil {
			return err
		}
		kube, err := preflight.KitKubeVersion(r.opts.Root)
		if err != nil {
			return err
		}
		for _, t := range trees {
			opts := preflightOptions(r.opts, t, kube, r.state.chartServer())
			note, err := preflightTree(ctx, r.opts.FleetDir, opts, t)
			if err != nil {
				return err
			}
			r.log.printf("%s", note)
		}
		return nil
	}}
}

// preflightOptions are the pre-flight's options for tree t: the charts are
// taken from the loopback chart server where the clusters would fetch them
// from its in-cluster name.
func preflightOptions(o Options, t fleetTree, kube string, charts *chartserver.Server) preflight.Options {
	opts := preflight.Options{
		FleetDir:    t.Dir,
		Envs:        o.Envs,
		KnownImages: o.Kit.PreloadImages,
		// Offline, an image the kit did not build can never be pulled.
		KnownImagesOnly: o.Offline(),
		KubeVersion:     kube,
		Timeout:         time.Minute,
		RawValues:       o.RawValues,
	}
	if charts != nil {
		user, pass := charts.Credentials()
		opts.HostRewrites = map[string]string{chartserver.InClusterHost: charts.Host()}
		opts.Credentials = map[string]preflight.Credential{chartserver.InClusterHost: {Username: user, Password: pass}}
	}
	return opts
}

// preflightTree runs the pre-flight on tree t of fleetDir and returns the
// line that says how it went, or the error listing the findings.
func preflightTree(ctx context.Context, fleetDir string, opts preflight.Options, t fleetTree) (string, error) {
	rep, err := preflight.Run(ctx, opts)
	if err != nil {
		return "", fmt.Errorf("pre-flight of %s (%s): %w", fleetDir, t.Label, err)
	}
	switch {
	case !rep.HasHelmReleases():
		return fmt.Sprintf("pre-flight (%s): no HelmRelease in the fleet", t.Label), nil
	case rep.OK():
		return fmt.Sprintf("pre-flight (%s): every HelmRelease resolved and rendered, every image present", t.Label), nil
	case rep.OnlyUnreachable():
		return fmt.Sprintf("pre-flight (%s): sources unreachable from this machine, left to the clusters:\n%s", t.Label, indent(rep.Findings())), nil
	default:
		return "", fmt.Errorf("pre-flight of %s found problems before any cluster was created:\n%s", t.Label, rep.String())
	}
}

func indent[T fmt.Stringer](items []T) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString("  " + it.String() + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
