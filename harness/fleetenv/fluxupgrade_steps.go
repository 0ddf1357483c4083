package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
	"github.com/flux-fleet/flux-fleet/harness/poll"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// controllersSettle bounds the wait for the old controller pods to leave
// once the Deployments are rolled out: kstatus counts a Deployment Current
// while its old pods are still being deleted.
const controllersSettle = 30 * time.Second

// fluxRoll is one UpgradeFlux in progress: what its steps found so far.
type fluxRoll struct {
	run    *Run
	target kitprofile.FluxSet
	from   string
	// reports and baselines by environment; each is made up front, so
	// that the environments' parallel lanes only fill their own.
	reports   map[string]*FluxUpgradeReport
	ordered   []*FluxUpgradeReport
	baselines map[string]*fluxBaseline
	// avail is an upgradeRoll used for its availability watch only: the
	// same requests through the ingress as an E2E_BASE upgrade makes.
	avail *upgradeRoll
}

// fluxBaseline is what an environment ran under the base Flux.
type fluxBaseline struct {
	record   *record.Record
	images   map[string][]string
	pods     map[string]workloadPod
	releases map[string]helmStorage
	// installed is the new Flux's install result, for the controllers' check.
	installed *fluxinstall.Result
	applied   time.Time
}

func newFluxRoll(r *Run, target kitprofile.FluxSet) *fluxRoll {
	f := &fluxRoll{run: r, target: target, from: r.opts.FluxBase, reports: map[string]*FluxUpgradeReport{},
		baselines: map[string]*fluxBaseline{}, avail: newUpgradeRoll(r, r.Git(), "")}
	for _, name := range r.opts.Envs {
		rep := &FluxUpgradeReport{Env: name, From: f.from, To: target.Version, Traffic: ErrNotChecked}
		f.reports[name], f.baselines[name] = rep, &fluxBaseline{}
		f.ordered = append(f.ordered, rep)
	}
	return f
}

// steps are the Flux upgrade, in order.
func (f *fluxRoll) steps() []upgradeStep {
	to := f.target.Version
	return []upgradeStep{
		{"checks under Flux " + f.from, f.checkBase},
		{"record Flux " + f.from, f.recordBase},
		{"watch availability", f.avail.watchAvailability},
		{"apply Flux " + to, f.applyTarget},
		{"controllers at " + to, f.checkControllers},
		{"reconcile under " + to, f.reconcile},
		{"settle", f.settle},
		{"checks under " + to, f.checkAfter},
	}
}

// checkBase requires each environment green under the base Flux, and the
// traffic check passing.
func (f *fluxRoll) checkBase(ctx context.Context) error {
	r := f.run
	return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		if ready := r.state.outcome(e.Name).err; ready != nil {
			return fmt.Errorf("%s: the fleet is not Ready under Flux %s, so there is nothing to upgrade under: %w", e.Name, f.from, ready)
		}
		answer, err := checkTrafficAfterReady(ctx, e)
		if err != nil {
			return fmt.Errorf("%s: traffic check under Flux %s: %w", e.Name, f.from, err)
		}
		r.log.printf("%-11s checks under Flux %s passed: every Flux object and workload Ready; GET / via nginx answered by pod %s", e.Name, f.from, answer.Hostname)
		return nil
	})
}

// recordBase keeps what each environment runs under the base Flux: its
// record (also written as record-<env>-flux-base.json), the controllers'
// images, the workload pods and the Helm release revisions.
func (f *fluxRoll) recordBase(ctx context.Context) error {
	r := f.run
	return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		b := f.baselines[e.Name]
		rec, err := r.records.current(ctx, e)
		if err != nil {
			return fmt.Errorf("%s: recording the fleet under Flux %s: %w", e.Name, f.from, err)
		}
		b.record = rec
		if err := record.Write(filepath.Join(r.opts.ArtifactsDir, record.FileName(e.Name, "flux-base")), rec); err != nil {
			r.log.printf("%-11s %v", e.Name, err)
		}
		if b.images, err = fluxinstall.RunningImages(ctx, e.Clients.Client, fluxobj.Namespace, f.controllers()); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		if b.pods, err = workloadPods(ctx, e.Clients, fleetNamespaces(rec)); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		if b.releases, err = helmReleaseStorage(ctx, e.Clients); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		return nil
	})
}

// controllers are the controller Deployments the run installed.
func (f *fluxRoll) controllers() []string {
	if len(f.run.opts.FluxComponents) > 0 {
		return slices.Clone(f.run.opts.FluxComponents)
	}
	return fluxinstall.DefaultComponents()
}

// applyTarget installs the new Flux over the old as `flux install` does
// (fluxinstall.Install: manifestgen, server-side apply, CRDs first) with
// the options of the first install but the version, and waits until every
// controller Deployment is rolled out and Available.
func (f *fluxRoll) applyTarget(ctx context.Context) error {
	r := f.run
	return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		ctx, cancel := context.WithTimeoutCause(ctx, fluxInstallTimeout,
			fmt.Errorf("%s: the upgrade to Flux %s did not finish within %s", e.Name, f.target.Version, fluxInstallTimeout))
		defer cancel()
		opts := withFluxSet(fluxInstallOptions(r.opts, e, prefixed(r.out, e.Name)), f.target)
		if work := r.state.clusterWorkOf(e.Name); work != nil {
			// The same API server address as the first install, so that
			// only the version differs between the two.
			if api, err := work.apiServer.wait(ctx); err == nil {
				opts.APIServer = api
			}
		}
		b := f.baselines[e.Name]
		b.applied = time.Now()
		res, err := fluxinstall.Install(ctx, e.Clients, opts)
		if err != nil {
			return fmt.Errorf("%s: upgrading Flux %s → %s: %w", e.Name, f.from, f.target.Version, err)
		}
		b.installed = res
		f.reports[e.Name].Rolled = time.Since(b.applied)
		return nil
	})
}

// withFluxSet is opts installing set: its version (empty: go.mod's), its
// manifests and the extra CRDs next to them.
func withFluxSet(opts fluxinstall.Options, set kitprofile.FluxSet) fluxinstall.Options {
	opts.Version, opts.ManifestsDir, opts.ExtraCRDsDir = set.Version, set.Manifests, ""
	if dir := filepath.Join(set.Manifests, "extra-crds"); set.Manifests != "" && exists(dir) {
		opts.ExtraCRDsDir = dir
	}
	return opts
}

// checkControllers requires every controller's pods to run exactly the
// images the new manifests name, once the old pods have left.
func (f *fluxRoll) checkControllers(ctx context.Context) error {
	r := f.run
	return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		b, rep := f.baselines[e.Name], f.reports[e.Name]
		want := b.installed.Images
		var running map[string][]string
		spec := poll.Every(500 * time.Millisecond).Within(controllersSettle).For("the controllers to run Flux " + f.target.Version + "'s images only")
		err := poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
			var err error
			if running, err = fluxinstall.RunningImages(ctx, e.Clients.Client, fluxobj.Namespace, slices.Sorted(maps.Keys(want))); err != nil {
				return false, err
			}
			if m := fluxinstall.ImageMismatches(want, running); len(m) > 0 {
				return false, errors.New(strings.Join(m, "; "))
			}
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		for _, name := range slices.Sorted(maps.Keys(want)) {
			rep.Controllers = append(rep.Controllers, ControllerImages{Deployment: name, From: b.images[name], To: running[name]})
		}
		return nil
	})
}

// reconcile asks every Kustomization and HelmRelease to reconcile under the
// new controllers and waits until each has, then runs the readiness wait
// as the bring-up does (fail fast, diagnostics, the record).
func (f *fluxRoll) reconcile(ctx context.Context) error {
	r := f.run
	return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
		if err := reconcileAll(rctx, e.Clients, start); err != nil {
			return fmt.Errorf("%s: under Flux %s: %w", e.Name, f.target.Version, err)
		}
		r.log.printf("%-11s every Kustomization and HelmRelease reconciled under Flux %s in %s", e.Name, f.target.Version, since(start))
		if err := r.waitAndRecord(ctx, e, start); err != nil {
			return err
		}
		rep := f.reports[e.Name]
		rep.Ready, rep.Reconciled = r.state.outcome(e.Name).err, time.Since(start)
		return nil
	})
}

// settle keeps the availability watch going for settle once an environment
// is Ready under the new Flux, then stops it and keeps what it saw.
func (f *fluxRoll) settle(ctx context.Context) error {
	anyReady := false
	for _, rep := range f.ordered {
		anyReady = anyReady || rep.Ready == nil
	}
	if anyReady {
		select {
		case <-time.After(settle):
		case <-ctx.Done():
			return fmt.Errorf("settling after the Flux upgrade: %w", ctx.Err())
		}
	}
	f.avail.stopWatches()
	for name, rep := range f.reports {
		rep.Availability = f.avail.reports[name].Availability
	}
	return nil
}

// checkAfter compares each environment with its baseline, prints and
// records the report, and fails on what the upgrade did not prove or on
// more failed requests than allowed.
func (f *fluxRoll) checkAfter(ctx context.Context) error {
	r := f.run
	var errs []error
	for _, name := range r.opts.Envs {
		rep, b, e := f.reports[name], f.baselines[name], r.Env(name)
		if rep.Ready == nil {
			rep.Answer, rep.Traffic = checkTraffic(ctx, e)
		}
		if err := f.compare(ctx, e, b, rep); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		// With E2E_BASE too, the run report's changes stay the fleet
		// upgrade's; the Flux upgrade's are in its check and the log.
		if r.opts.Base == "" {
			r.state.report.SetChanges(name, rep.Changes)
		}
		r.state.report.AddCheck(rep.check())
		for _, line := range strings.Split(rep.String(), "\n") {
			r.log.printf("%-11s %s", name, line)
		}
		if problems := rep.Problems(); len(problems) > 0 {
			errs = append(errs, fmt.Errorf("%s: the Flux upgrade %s → %s: %s", name, f.from, f.target.Version, strings.Join(problems, "; ")))
		}
		if r.opts.MaxFailedRequests >= 0 && rep.Availability.Failed > r.opts.MaxFailedRequests {
			errs = append(errs, fmt.Errorf("%s: %d request(s) to the app failed while Flux was upgraded, more than E2E_MAX_FAILED_REQUESTS=%d allows: %s",
				name, rep.Availability.Failed, r.opts.MaxFailedRequests, rep.Availability))
		}
	}
	return errors.Join(errs...)
}

// compare fills rep from what e runs now against its baseline: revisions,
// Helm releases, pods and the record diff.
func (f *fluxRoll) compare(ctx context.Context, e *Environment, b *fluxBaseline, rep *FluxUpgradeReport) error {
	git := f.run.Git()
	after, err := f.run.records.collect(ctx, e, git)
	if err != nil {
		return fmt.Errorf("recording the fleet under Flux %s: %w", f.target.Version, err)
	}
	rep.Changes = record.Diff(b.record, after)
	rep.Revisions = revisionChanges(b.record, after)
	releases, err := helmReleaseStorage(ctx, e.Clients)
	if err != nil {
		return err
	}
	if rep.Releases, err = compareReleases(ctx, e.Clients, b.releases, releases, b.record, after); err != nil {
		return err
	}
	pods, err := workloadPods(ctx, e.Clients, fleetNamespaces(b.record))
	if err != nil {
		return err
	}
	rep.PodsReplaced = replacedPods(b.pods, pods)
	return nil
}
