package report

import (
	"errors"
	"fmt"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// runStart is when the fixture runs start; every time is an offset from it.
var runStart = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

func at(seconds float64) time.Time {
	return runStart.Add(time.Duration(seconds * float64(time.Second)))
}

// bringUpSteps are fleetenv's steps with plausible bounds; the wait ends
// at waitEnd with err.
func bringUpSteps(b *Builder, waitEnd float64, err error) {
	bounds := []struct {
		name       string
		start, end float64
	}{{"offline checks", 0, 2}, {"chart server", 2, 3}, {"pre-flight", 3, 8}, {"clusters", 8, 40},
		{"servers on the kind network", 40, 41}, {"flux install", 41, 60}, {"sync", 60, 62}}
	for _, s := range bounds {
		b.AddStep("", s.name, at(s.start), at(s.end), nil)
	}
	b.AddStep("", "wait", at(62), at(waitEnd), err)
}

// readyAfter is one object as readiness reports it, Ready after seconds
// of a wait that started at 62 s.
func readyAfter(object string, seconds float64) readiness.ObjectTiming {
	seen := at(62 + seconds)
	// Every fixture object is a Flux object: its Ready condition has a
	// transition time, truncated to the second by the API server.
	t := readiness.ObjectTiming{Object: object, Seen: seen, TimeToReady: seen.Sub(at(62)), Transition: seen.Truncate(time.Second)}
	t.Latency = seen.Sub(t.Transition)
	return t
}

// greenWait is what readiness returns for a fleet that came up: sources
// first, infrastructure, then the apps, the root last.
func greenWait(env string) *readiness.Report {
	return &readiness.Report{Env: env, Start: at(62), Total: 88 * time.Second, Objects: []readiness.ObjectTiming{
		{Object: "GitRepository/flux-system/flux-system", AlreadyReady: true, Seen: at(62)},
		readyAfter("HelmRepository/flux-system/bitnami", 5),
		readyAfter("HelmRepository/flux-system/podinfo", 5.5),
		readyAfter("OCIRepository/flux-system/nginx-ingress", 6),
		readyAfter("HelmRelease/nginx/nginx", 40),
		readyAfter("HelmRelease/redis/redis", 55),
		readyAfter("Kustomization/flux-system/infrastructure", 57),
		readyAfter("HelmRelease/podinfo/podinfo", 80),
		readyAfter("Kustomization/flux-system/apps", 85),
		readyAfter("Kustomization/flux-system/flux-system", 88),
	}}
}

// fleetRecord is a run record of env: what each Kustomization applied.
func fleetRecord(env string) *record.Record {
	inv := func(refs ...string) []record.Object {
		var out []record.Object
		for _, r := range refs {
			out = append(out, record.Object{Ref: r, Digest: "sha256:0123456789ab"})
		}
		return out
	}
	return &record.Record{Format: record.Format, Env: env, Outcome: "Ready", Kustomizations: []record.Kustomization{
		{Ref: "Kustomization/flux-system/flux-system", Objects: inv("GitRepository/flux-system/flux-system",
			"Kustomization/flux-system/apps", "Kustomization/flux-system/infrastructure")},
		{Ref: "Kustomization/flux-system/infrastructure", Objects: inv("HelmRepository/flux-system/bitnami",
			"OCIRepository/flux-system/nginx-ingress", "HelmRelease/nginx/nginx", "HelmRelease/redis/redis")},
		{Ref: "Kustomization/flux-system/apps", Objects: inv("HelmRepository/flux-system/podinfo", "HelmRelease/podinfo/podinfo")},
	}}
}

func newFixtureBuilder() *Builder {
	return NewBuilder(Run{ID: "nightly-42", Started: runStart, Fleet: "fleet", Revision: "1a2b3c4d5e6f", FluxVersion: "v2.9.5"})
}

func addDependencies(b *Builder, env string) {
	b.SetDependencies(env, fleetRecord(env))
	b.AddDependency(env, "Kustomization/flux-system/apps", "Kustomization/flux-system/infrastructure")
	b.AddDependency(env, "HelmRelease/podinfo/podinfo", "HelmRepository/flux-system/podinfo")
}

// greenReport is a run where both environments came up and every check
// passed.
func greenReport() *Report {
	b := newFixtureBuilder()
	bringUpSteps(b, 150, nil)
	for _, env := range []string{"staging", "production"} {
		b.SetReadiness(env, greenWait(env), nil)
		addDependencies(b, env)
		b.AddCheck(Check{Name: "TestFleet/" + env + "/podinfo-serves", Env: env, Result: Passed, Seconds: 1.2})
	}
	return b.Report(at(160))
}

// podinfoFailure is readiness's error when podinfo's install fails twice
// the same way.
var podinfoFailure = &readiness.FailureError{Env: "production", Object: "HelmRelease/podinfo/podinfo", Reason: "InstallFailed",
	Message: "Helm install failed for release podinfo/podinfo with chart podinfo@6.9.2: context deadline exceeded", Terminal: true}

// failedReport is a run where staging came up and production's podinfo
// failed to install.
func failedReport() *Report { return failedBuilder().Report(at(150)) }

func failedBuilder() *Builder {
	b := newFixtureBuilder()
	bringUpSteps(b, 140, fmt.Errorf("wait: %w", podinfoFailure))
	b.SetReadiness("staging", greenWait("staging"), nil)
	addDependencies(b, "staging")

	prod := greenWait("production")
	prod.Total = 78 * time.Second
	prod.Objects = prod.Objects[:7] // up to the infrastructure
	b.SetReadiness("production", prod, podinfoFailure)
	addDependencies(b, "production")
	b.SetDiagnosis("production", "production: HelmRelease/podinfo/podinfo InstallFailed\n"+
		"  Kustomization/flux-system/apps  NotReady  DependencyNotReady\n"+
		"  HelmRelease/podinfo/podinfo  InstallFailed  context deadline exceeded\n")
	b.AddCheck(Check{Name: "TestFleet/staging/podinfo-serves", Env: "staging", Result: Passed, Seconds: 1.2})
	b.AddCheck(Check{Name: "TestFleet/production/podinfo-serves", Env: "production", Result: Failed, Seconds: 30,
		Failure: "GET /: 503 Service Unavailable\nfull response follows"})
	b.AddCheck(Check{Name: "TestFleet/production/upgrade", Env: "production", Result: Skipped})
	return b
}

// stepFailedReport is a run whose clusters never came up.
func stepFailedReport() *Report {
	b := newFixtureBuilder()
	b.AddStep("", "offline checks", at(0), at(2), nil)
	b.AddStep("", "clusters", at(2), at(30), errors.New("creating kind cluster fleet-staging: node did not become Ready\nlogs follow"))
	for _, env := range []string{"staging", "production"} {
		b.SetDiagnosis(env, "")
	}
	return b.Report(at(31))
}
