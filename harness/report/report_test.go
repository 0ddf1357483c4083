package report

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

func TestVerdictLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		report *Report
		run    Verdict
		lines  []string
	}{
		{"green", greenReport(), Green, []string{"staging: green in 2m30s", "production: green in 2m30s"}},
		{"failed object", failedReport(), NotReady, []string{"staging: green in 2m30s",
			"production: not ready: HelmRelease/podinfo/podinfo failed: InstallFailed"}},
		{"failed step", stepFailedReport(), FailedStep, []string{
			`staging: failed step "clusters": creating kind cluster fleet-staging: node did not become Ready`,
			`production: failed step "clusters": creating kind cluster fleet-staging: node did not become Ready`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.report.Run.Verdict != tc.run {
				t.Errorf("run verdict = %q, want %q", tc.report.Run.Verdict, tc.run)
			}
			var got []string
			for i := range tc.report.Environments {
				got = append(got, tc.report.VerdictLine(&tc.report.Environments[i]))
			}
			if !slices.Equal(got, tc.lines) {
				t.Errorf("verdict lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.lines, "\n"))
			}
		})
	}
}

func TestFromReadinessPendingObjects(t *testing.T) {
	rep := greenWait("staging")
	rep.Objects = rep.Objects[:4]
	err := &readiness.NotReadyError{Env: "staging", Elapsed: 300 * time.Second, Err: errors.New("context deadline exceeded"),
		Pending: []readiness.Pending{
			{Object: "Kustomization/flux-system/apps", Reason: "DependencyNotReady", Message: "dependency 'flux-system/infrastructure' is not ready"},
			{Object: "Kustomization/flux-system/infrastructure", Reason: "HealthCheckFailed", Message: "timeout waiting for: [HelmRelease/redis/redis status: 'InProgress']"},
		}}
	e := FromReadiness("staging", rep, err)
	if e.Verdict != NotReady {
		t.Errorf("verdict = %q, want %q", e.Verdict, NotReady)
	}
	// The dependency's echo is passed over for the object that blocks it.
	want := &Failure{Object: "Kustomization/flux-system/infrastructure", Reason: "HealthCheckFailed",
		Message: "timeout waiting for: [HelmRelease/redis/redis status: 'InProgress']"}
	if !reflect.DeepEqual(e.Failure, want) {
		t.Errorf("failure = %+v, want %+v", e.Failure, want)
	}
	if len(e.Objects) != 6 {
		t.Fatalf("%d objects, want 4 Ready and 2 pending: %+v", len(e.Objects), e.Objects)
	}
	apps := e.Objects[slices.IndexFunc(e.Objects, func(o Object) bool { return o.Ref() == "Kustomization/flux-system/apps" })]
	if apps.Ready() || apps.Failed || apps.Reason != "DependencyNotReady" || !apps.FirstSeen.Equal(rep.Start) {
		t.Errorf("pending apps = %+v, want not Ready, DependencyNotReady, first seen at the wait's start", apps)
	}
	r := &Report{Run: Run{Started: runStart}, Environments: []Environment{e}}
	judge(r)
	if got := r.VerdictLine(&r.Environments[0]); got != "staging: not ready: Kustomization/flux-system/infrastructure not Ready: HealthCheckFailed" {
		t.Errorf("verdict line = %q", got)
	}
}

func TestFromReadinessPodFailure(t *testing.T) {
	err := &readiness.FailureError{Env: "staging", Object: "Pod/apps/web-1", Owner: "Deployment/apps/web", Container: "web",
		Image: "web:v0", Reason: "ImagePullBackOff", Message: "Back-off pulling image"}
	e := FromReadiness("staging", greenWait("staging"), err)
	want := &Failure{Object: "Pod/apps/web-1", Reason: "ImagePullBackOff", Message: "container web image web:v0: Back-off pulling image",
		Owner: "Deployment/apps/web"}
	if !reflect.DeepEqual(e.Failure, want) {
		t.Errorf("failure = %+v, want %+v", e.Failure, want)
	}
	i := slices.IndexFunc(e.Objects, func(o Object) bool { return o.Ref() == "Pod/apps/web-1" })
	if i < 0 || !e.Objects[i].Failed || e.Objects[i].Namespace != "apps" || e.Objects[i].Name != "web-1" {
		t.Errorf("objects hold no failed Pod apps/web-1: %+v", e.Objects)
	}
}

func TestCriticalPath(t *testing.T) {
	r := greenReport()
	got := slices.Sorted(maps.Keys(criticalPath(r.Env("staging"))))
	want := []string{"HelmRelease/podinfo/podinfo", "HelmRepository/flux-system/podinfo",
		"Kustomization/flux-system/apps", "Kustomization/flux-system/flux-system"}
	if !slices.Equal(got, want) {
		t.Errorf("critical path = %v, want %v", got, want)
	}
	// Without dependencies the path is the object Ready last, alone.
	e := FromReadiness("staging", greenWait("staging"), nil)
	if got := slices.Collect(maps.Keys(criticalPath(&e))); !slices.Equal(got, []string{"Kustomization/flux-system/flux-system"}) {
		t.Errorf("critical path without dependencies = %v", got)
	}
	// A failed environment's path ends at the failed object.
	failed := failedReport()
	if got := slices.Sorted(maps.Keys(criticalPath(failed.Env("production")))); !slices.Equal(got,
		[]string{"HelmRelease/podinfo/podinfo", "HelmRepository/flux-system/podinfo"}) {
		t.Errorf("critical path of the failed environment = %v", got)
	}
}

func TestWriteRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "artifacts")
	path := filepath.Join(dir, FileName)
	want := failedReport()
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != mode {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, mode)
		}
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back differs:\n got %+v\nwant %+v", got, want)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"version": 1`) {
		t.Errorf("report.json carries no version 1:\n%s", data)
	}
	if err := os.WriteFile(path, []byte(`{"version": 2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), "version 2, this harness reads version 1") {
		t.Errorf("reading a version 2 report: %v, want a version error", err)
	}
}

// TestReadRefusesWhatNoRunWrites: every report the harness writes has the
// run's id and start and known verdicts; another version-1 file rendered as
// "flux-fleet run 0001-01-01 00:00:00:".
func TestReadRefusesWhatNoRunWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	known := `"green", "not ready", "failed step", "failed checks", "unknown"`
	for _, tc := range []struct {
		name string
		edit func(*Report)
		want string
	}{
		{"empty", func(r *Report) { *r = Report{Version: Version} }, "no run.id; no run.started; no run.verdict"},
		{"bogus run verdict", func(r *Report) { r.Run.Verdict = "??" }, `run.verdict "??" is none of ` + known},
		{"bad environment", func(r *Report) { r.Environments[1].Name, r.Environments[1].Verdict = "", "" },
			"no environments[1].name; no environments[1].verdict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := greenReport()
			tc.edit(r)
			if err := Write(path, r); err != nil {
				t.Fatal(err)
			}
			_, err := Read(path)
			if want := "run report " + path + ": " + tc.want; err == nil || err.Error() != want {
				t.Errorf("Read: %v\nwant %s", err, want)
			}
		})
	}
}

func TestBuilderReportIsASnapshot(t *testing.T) {
	b := newFixtureBuilder()
	b.SetReadiness("staging", greenWait("staging"), nil)
	first := b.Report(at(100))
	b.AddStep("staging", "upgrade", at(150), at(160), errors.New("publishing the head revision: refused"))
	b.SetReadiness("staging", greenWait("staging"), podinfoFailure)
	if first.Env("staging").Verdict != Green || len(first.Env("staging").Steps) != 0 || first.Env("staging").Failure != nil {
		t.Errorf("a later change reached an earlier report: %+v", first.Env("staging"))
	}
	second := b.Report(at(170))
	if v := second.Env("staging").Verdict; v != NotReady {
		t.Errorf("after a failed upgrade wait: verdict %q, want %q", v, NotReady)
	}
}

func TestEnvironmentStepFailureTurnsGreenRed(t *testing.T) {
	b := newFixtureBuilder()
	b.SetReadiness("staging", greenWait("staging"), nil)
	b.AddStep("staging", "upgrade", at(150), at(160), errors.New("publishing the head revision: refused"))
	r := b.Report(at(170))
	if got, want := r.VerdictLine(r.Env("staging")), `staging: failed step "upgrade": publishing the head revision: refused`; got != want {
		t.Errorf("verdict line = %q, want %q", got, want)
	}
	if r.Run.Verdict != FailedStep {
		t.Errorf("run verdict = %q, want %q", r.Run.Verdict, FailedStep)
	}
}

func TestFailedChecksOnGreenRun(t *testing.T) {
	b := newFixtureBuilder()
	b.SetReadiness("staging", greenWait("staging"), nil)
	b.AddCheck(Check{Name: "TestFleet/staging/x", Env: "staging", Result: Failed, Failure: "boom\nstack"})
	r := b.Report(at(170))
	if r.Run.Verdict != FailedChecks || r.Checks[0].Failure != "boom" {
		t.Errorf("run verdict %q, check failure %q; want %q and the first line only", r.Run.Verdict, r.Checks[0].Failure, FailedChecks)
	}
}

// secretChanges is a diff of two records made with raw values: the values
// themselves are in it.
func secretChanges() record.Changes {
	from, to := fleetRecord("production"), fleetRecord("production")
	from.RawValues, to.RawValues = true, true
	from.Fleet, to.Fleet = record.Fleet{Commit: "0123456789abcdef", Ref: "HEAD~1"}, record.Fleet{Commit: "fedcba9876543210"}
	from.HelmReleases = []record.HelmRelease{{Ref: "HelmRelease/redis/redis", Chart: "redis", Version: "23.1.0",
		Values: map[string]string{"auth.password": `"planted-old-secret"`}}}
	to.HelmReleases = []record.HelmRelease{{Ref: "HelmRelease/redis/redis", Chart: "redis", Version: "23.1.1",
		Values: map[string]string{"auth.password": `"planted-new-secret"`, "replica.count": "2"}}}
	from.Kustomizations[1].Substitute = map[string]string{"redis_password": `"planted-sub-secret"`}
	to.Kustomizations[1].Substitute = map[string]string{"redis_password": `"planted-sub-secret2"`}
	to.Kustomizations[2].Objects = append(to.Kustomizations[2].Objects, record.Object{Ref: "Service/podinfo/extra"})
	return record.Diff(from, to)
}

func TestChangeLinesWithholdValues(t *testing.T) {
	got := ChangeLines(secretChanges())
	want := []string{
		"fleet: HEAD~1 (0123456789ab) → fedcba987654",
		"Kustomization/flux-system/apps: 1 added",
		"  + Service/podinfo/extra",
		"Kustomization/flux-system/infrastructure: 1 substitutions changed",
		"  ~ substitute redis_password changed",
		"HelmRelease/redis/redis: chart redis 23.1.0 → 23.1.1, values changed",
		"  ~ values auth.password changed",
		"  + values replica.count added",
		"1 more Kustomizations and HelmReleases unchanged",
	}
	if !slices.Equal(got, want) {
		t.Errorf("change lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
