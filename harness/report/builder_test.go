package report

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/readiness"
)

// keptClusterBuilder is a run on one kept cluster whose first fleet failed
// on staging (podinfo's install) and was diagnosed; production came up.
func keptClusterBuilder() *Builder {
	b := newFixtureBuilder()
	bringUpSteps(b, 140, nil)
	staging := greenWait("staging")
	staging.Objects = staging.Objects[:7]
	b.SetReadiness("staging", staging, podinfoFailure)
	addDependencies(b, "staging")
	b.SetDiagnosis("staging", "staging: HelmRelease/podinfo/podinfo InstallFailed")
	b.AddStep("staging", "upgrade", at(141), at(142), errors.New("publishing the head revision: refused"))
	b.SetReadiness("production", greenWait("production"), nil)
	return b
}

func TestClearEnvironmentForgetsTheFleet(t *testing.T) {
	b := keptClusterBuilder()
	b.ClearEnvironment("staging")

	cleared := b.Report(at(200))
	if names := envNames(cleared); !slices.Equal(names, []string{"staging", "production"}) {
		t.Fatalf("environments after the clear: %q, want staging kept in its place", names)
	}
	s := cleared.Env("staging")
	if s.Verdict != Unknown || s.Failure != nil || s.Diagnosis != "" || len(s.Objects) != 0 || len(s.Steps) != 0 {
		t.Errorf("cleared staging still shows the first fleet: %+v", s)
	}
	if p := cleared.Env("production"); p.Verdict != Green || len(p.Objects) != len(greenWait("production").Objects) {
		t.Errorf("clearing staging changed production: verdict %q, %d objects", p.Verdict, len(p.Objects))
	}
	if len(cleared.Steps) != 8 {
		t.Errorf("the run's shared steps: %d, want the 8 of the bring-up kept", len(cleared.Steps))
	}

	// The next fleet fails on an object of its own; its report names it,
	// with nothing the first fleet's inventory said it waits for.
	next := &readiness.FailureError{Env: "staging", Object: "HelmRelease/nginx/nginx", Reason: "InstallFailed", Terminal: true}
	b.SetReadiness("staging", &readiness.Report{Env: "staging", Start: at(210), Total: 30 * time.Second,
		Objects: []readiness.ObjectTiming{readyAfter("Kustomization/flux-system/apps", 150)}}, next)
	s = b.Report(at(250)).Env("staging")
	if s.Verdict != NotReady || s.Failure == nil || s.Failure.Object != next.Object || s.Failure.Reason != next.Reason {
		t.Fatalf("the next fleet's failure: verdict %q, failure %+v; want %s %s", s.Verdict, s.Failure, next.Object, next.Reason)
	}
	var refs []string
	for _, o := range s.Objects {
		refs = append(refs, o.Ref())
		if len(o.After) != 0 {
			t.Errorf("%s waits for %q, which only the cleared fleet's inventory said", o.Ref(), o.After)
		}
	}
	if want := []string{"HelmRelease/nginx/nginx", "Kustomization/flux-system/apps"}; !slices.Equal(refs, want) {
		t.Errorf("objects of the next fleet: %q, want exactly %q", refs, want)
	}
}

func TestGreenWaitDropsTheDiagnosis(t *testing.T) {
	b := keptClusterBuilder()
	b.SetReadiness("staging", greenWait("staging"), nil)
	s := b.Report(at(200)).Env("staging")
	if s.Diagnosis != "" || s.Failure != nil {
		t.Errorf("a green re-sync still shows the earlier failure: diagnosis %q, failure %+v", s.Diagnosis, s.Failure)
	}

	// A wait that fails again keeps the diagnosis: it may be the same failure.
	b = keptClusterBuilder()
	b.SetReadiness("staging", greenWait("staging"), podinfoFailure)
	if d := b.Report(at(200)).Env("staging").Diagnosis; d == "" {
		t.Error("a failed re-sync dropped the diagnosis")
	}
}

func envNames(r *Report) []string {
	var names []string
	for _, e := range r.Environments {
		names = append(names, e.Name)
	}
	return names
}
