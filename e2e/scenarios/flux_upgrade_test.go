package scenarios

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/report"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// fluxUpgradeFrom is the base the skip message names when the kit holds none:
// the previous minor. Offline here, the kit's base is whichever flux2
// release it could build (docs/upgrades.md says which and why).
const fluxUpgradeFrom = "v2.8.0"

// requireFluxBase returns the kit's base Flux, or skips with the command
// that builds one: it is opt-in, not in make test's default kit.
// E2E_REQUIRE_FLUX_BASE=true makes a missing base a failure, for a runner
// whose kit is built with one (the nightly uses make e2e-flux-upgrade).
func requireFluxBase(t *testing.T, opts fleetenv.Options) string {
	t.Helper()
	if base, ok := opts.Kit.FluxBase(); ok {
		return base.Version
	}
	msg := "the kit has no base Flux: build one with `go run ./hack/kit -flux-base " + fluxUpgradeFrom + "` (or run make e2e-flux-upgrade FROM=" + fluxUpgradeFrom + ")"
	if os.Getenv("E2E_REQUIRE_FLUX_BASE") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestFluxUpgrade converges the Helm fixture fleet under the kit's base Flux on
// kind, upgrades Flux in place to go.mod's version, and requires the fleet
// untouched: the controllers at the new images, every Kustomization and
// HelmRelease Ready at the same revision, no Helm release revision that is
// not explained, no workload pod replaced, no request through the ingress
// failed while the controllers rolled.
func TestFluxUpgrade(t *testing.T) {
	t.Parallel() // see parallelNote
	opts := options(t, filepath.Join(testsupport.RepoRoot(t), "fixtures", "fleets", "helm"), "fluxup-")
	requireKit(t, opts)
	from := requireFluxBase(t, opts)
	opts.ArtifactsDir = t.TempDir()
	opts.FluxBase, opts.MaxFailedRequests = from, 0
	target, err := fluxinstall.FluxVersion()
	if err != nil {
		t.Fatal(err)
	}
	run := newRun(t, opts)
	ctx := contextBeforeTestTimeout(t)

	// Every step but the last, so that the test holds the reports.
	steps := fleetenv.BringUp(opts)
	if last := steps[len(steps)-1]; last.Name != "flux upgrade" {
		t.Fatalf("the last step with a base Flux is %q, want flux upgrade", last.Name)
	}
	start := time.Now()
	for _, s := range steps[:len(steps)-1] {
		if _, err := run.Step(s)(ctx, nil); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	e := run.Env("staging")
	if e.Ready != nil || e.FluxInstall == nil || e.FluxInstall.Version != from {
		t.Fatalf("under the base Flux: ready %v, install %+v; want green under %s", e.Ready, e.FluxInstall, from)
	}
	t.Logf("green under Flux %s in %s", from, time.Since(start).Round(100*time.Millisecond))

	reports, err := run.UpgradeFlux(ctx)
	if err != nil {
		t.Fatalf("flux upgrade: %v", err)
	}
	rep := reports[0]
	if rep.From != from || rep.To != target || rep.Ready != nil || rep.Traffic != nil {
		t.Fatalf("upgrade %s → %s: ready %v, traffic %v; want %s → %s green", rep.From, rep.To, rep.Ready, rep.Traffic, from, target)
	}
	assertControllersAt(t, e, rep, target)
	if len(rep.Revisions) != 0 {
		t.Errorf("revisions moved across the Flux upgrade: %+v", rep.Revisions)
	}
	if len(rep.Releases) == 0 {
		t.Error("no HelmRelease in the report: the Helm fixture fleet has some")
	}
	for _, h := range rep.Releases {
		if h.NewRevision() && h.Why == "" {
			t.Errorf("%s: new Helm release v%d (was v%d) without an explanation", h.HelmRelease, h.After, h.Before)
		} else if h.NewRevision() {
			t.Logf("%s: new Helm release v%d: %s", h.HelmRelease, h.After, h.Why)
		}
	}
	if len(rep.PodsReplaced) != 0 {
		t.Errorf("workload pods replaced by the Flux upgrade: %q", rep.PodsReplaced)
	}
	if rep.Availability.Requests == 0 || rep.Availability.Failed != 0 {
		t.Errorf("availability during the roll: %s; want requests, none failed", rep.Availability)
	}
	assertFluxUpgradeCheck(t, run, rep)
	t.Logf("controllers rolled in %s, fleet reconciled in %s; %s", rep.Rolled.Round(100*time.Millisecond), rep.Reconciled.Round(100*time.Millisecond), rep.Availability)
}

// assertControllersAt requires every controller Deployment replaced by one
// of the target version (manifestgen labels it) whose pods run the new
// images, different from the base's.
func assertControllersAt(t *testing.T, e *fleetenv.Environment, rep *fleetenv.FluxUpgradeReport, version string) {
	t.Helper()
	if len(rep.Controllers) == 0 {
		t.Fatal("no controller in the report")
	}
	for _, c := range rep.Controllers {
		var d appsv1.Deployment
		if err := e.Clients.Client.Get(t.Context(), client.ObjectKey{Namespace: fluxobj.Namespace, Name: c.Deployment}, &d); err != nil {
			t.Fatal(err)
		}
		var images []string
		for _, ctr := range d.Spec.Template.Spec.Containers {
			images = append(images, ctr.Image)
		}
		slices.Sort(images)
		if got := d.Labels["app.kubernetes.io/version"]; got != version || !slices.Equal(c.To, images) || slices.Equal(c.From, c.To) {
			t.Errorf("%s: version label %q, images %v → %v, Deployment %v; want %s with new images the Deployment names", c.Deployment, got, c.From, c.To, images, version)
		}
	}
}

// assertFluxUpgradeCheck requires the upgrade in the run report as one
// passed check.
func assertFluxUpgradeCheck(t *testing.T, run *fleetenv.Run, rep *fleetenv.FluxUpgradeReport) {
	t.Helper()
	name := "flux upgrade " + rep.From + " → " + rep.To
	i := slices.IndexFunc(run.Report().Checks, func(c report.Check) bool { return c.Name == name && c.Env == "staging" })
	if i < 0 {
		t.Fatalf("the run report has no check %q", name)
	}
	if c := run.Report().Checks[i]; c.Result != report.Passed {
		t.Errorf("check %q: %s %s", name, c.Result, c.Failure)
	}
	if !strings.Contains(rep.String(), "fleet untouched") {
		t.Errorf("report:\n%s", rep)
	}
}
