package fleetenv

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// OfflineChecks is the step "offline checks": the offline tier on every
// tree the run will serve (the working tree, or the revisions of
// E2E_REVISION and E2E_BASE), so that a fleet it rejects fails before
// anything is created. It judges the fleet by the Flux the run installs,
// and with E2E_FLUX_BASE by the base Flux too, since the fleet must
// converge under the base before the upgrade.
func OfflineChecks() Step {
	return Step{Name: "offline checks", run: func(ctx context.Context, r *Run) error {
		trees, err := r.work.treesToServe(ctx)
		if err != nil {
			return err
		}
		if !r.opts.OfflineChecks {
			r.log.printf("offline checks skipped (E2E_OFFLINE_CHECKS=false)")
			return nil
		}
		opts, err := offlineOptions(r.opts.FluxBase)
		if err != nil {
			return err
		}
		for _, t := range trees {
			res, err := checkTree(ctx, r.opts.FleetDir, r.opts.Envs, t, opts)
			if err != nil {
				return err
			}
			r.log.printf("fleet %s (%s): %d objects valid in %d environment(s) for Flux %s",
				r.opts.FleetDir, t.Label, res.ObjectCount(), len(res.Envs), strings.Join(res.FluxVersions, " and "))
		}
		return nil
	}}
}

// offlineOptions names the Flux releases to check against: go.mod's, and
// the base first when the run upgrades Flux.
func offlineOptions(fluxBase string) (validate.Options, error) {
	if fluxBase == "" {
		return validate.Options{}, nil
	}
	target, err := fluxinstall.FluxVersion()
	if err != nil {
		return validate.Options{}, fmt.Errorf("offline checks: finding the Flux version the upgrade goes to: %w", err)
	}
	return validate.Options{FluxVersions: []string{fluxBase, target}}, nil
}

// checkTree validates one tree of fleetDir; a finding in one of envs (or in
// none) is an error listing every such finding.
func checkTree(ctx context.Context, fleetDir string, envs []string, t fleetTree, opts validate.Options) (*validate.Result, error) {
	res, err := validate.ValidateWith(ctx, t.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("validating fleet %s (%s): %w", fleetDir, t.Label, err)
	}
	var findings []string
	for _, f := range res.Findings {
		if f.Env == "" || slices.Contains(envs, f.Env) {
			findings = append(findings, "  "+f.String())
		}
	}
	if len(findings) > 0 {
		show := "make validate FLEET=" + fleetDir
		if len(opts.FluxVersions) > 0 {
			show = "go run ./hack/validate -fleet " + fleetDir + " -flux-version " + strings.Join(opts.FluxVersions, ",")
		}
		return nil, fmt.Errorf("fleet %s (%s) has %d problem(s) (%s shows them with the Flux tree):\n%s",
			fleetDir, t.Label, len(findings), show, strings.Join(findings, "\n"))
	}
	return res, nil
}
