package fleetenv

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// OfflineChecks is the step "offline checks": the offline tier on every
// tree the run will serve (the working tree, or the revisions of
// E2E_REVISION and E2E_BASE), so that a fleet it rejects fails before
// anything is created.
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
		for _, t := range trees {
			res, err := checkTree(ctx, r.opts.FleetDir, r.opts.Envs, t)
			if err != nil {
				return err
			}
			r.log.printf("fleet %s (%s): %d objects valid in %d environment(s)", r.opts.FleetDir, t.Label, res.ObjectCount(), len(res.Envs))
		}
		return nil
	}}
}

// checkTree validates one tree of fleetDir; a finding in one of envs (or in
// none) is an error listing every such finding.
func checkTree(ctx context.Context, fleetDir string, envs []string, t fleetTree) (*validate.Result, error) {
	res, err := validate.Validate(ctx, t.Dir)
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
		return nil, fmt.Errorf("fleet %s (%s) has %d problem(s) (make validate FLEET=%s shows them with the Flux tree):\n%s",
			fleetDir, t.Label, len(findings), fleetDir, strings.Join(findings, "\n"))
	}
	return res, nil
}
