package scenarios

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/record"
	"github.com/flux-fleet/flux-fleet/harness/report"
	"github.com/flux-fleet/flux-fleet/harness/report/reportview"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// The phone a failed fleet's report is looked at on: a common Android
// size, in CSS pixels.
const (
	phoneWidth  = 412
	phoneHeight = 915
)

// browserGuard bounds looking at one report: a browser that hangs must not
// hold the scenario until go test's own timeout. Loading a local file and a
// few queries need a small fraction of it; the test logs what they took.
const browserGuard = 2 * time.Minute

// sharedArtifactsDir is where a shared cluster's run writes its records,
// diagnostics and reports: a directory of its own under the artifacts
// directory (kept, and uploaded by CI), since the other scenarios also
// bring up staging and would overwrite record-staging.json; the group's
// temporary directory when no artifacts directory is set.
func sharedArtifactsDir(owner *testing.T, artifacts string) string {
	if artifacts == "" {
		return owner.TempDir()
	}
	return filepath.Join(artifacts, owner.Name())
}

// fleetReport writes the run report as it stands after fleet name's wait
// into <artifacts>/reports/<name>, next to a copy of the record of what
// ran (the next fleet's record replaces the run's), and returns the
// directory and the report as read back from its report.json.
func fleetReport(t *testing.T, run *fleetenv.Run, name string) (string, *report.Report) {
	t.Helper()
	dir, rep := writeFleetReport(t, run.Options().ArtifactsDir, name, run.Report())
	// The git server's password is a secret this run holds and hands to
	// the cluster: it must reach none of the report's files.
	_, password := run.Git().Credentials()
	assertNowhere(t, dir, password, report.FileName, report.HTMLFileName, report.MarkdownFileName)
	return dir, rep
}

// assertNowhere fails when secret appears in any of dir's named files.
func assertNowhere(t *testing.T, dir, secret string, names ...string) {
	t.Helper()
	if secret == "" {
		t.Fatal("no secret to look for: the git server has no password")
	}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), secret) {
			t.Errorf("%s holds the git server's password", filepath.Join(dir, name))
		}
	}
}

// writeFleetReport is fleetReport for a report rep of a run whose
// artifacts directory is artifacts.
func writeFleetReport(t *testing.T, artifacts, name string, rep *report.Report) (string, *report.Report) {
	t.Helper()
	dir := filepath.Join(artifacts, "reports", name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatalf("clearing an earlier report of %s: %v", name, err)
	}
	rec := record.FileName("staging", "")
	data, err := os.ReadFile(filepath.Join(artifacts, rec))
	if err != nil {
		t.Fatalf("the run wrote no record of what %s runs: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("creating the report directory of %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, rec), data, 0o600); err != nil {
		t.Fatalf("copying the record of %s: %v", name, err)
	}
	if err := report.WriteAll(dir, rep); err != nil {
		t.Fatalf("writing the report of %s: %v", name, err)
	}
	written, err := report.Read(filepath.Join(dir, report.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report of %s: %s", name, filepath.Join(dir, report.HTMLFileName))
	return dir, written
}

// stagingOf returns the report's staging environment, the only one the
// scenarios bring up.
func stagingOf(t *testing.T, rep *report.Report) *report.Environment {
	t.Helper()
	e := rep.Env("staging")
	if e == nil {
		t.Fatalf("the report has no environment staging: %+v", rep.Environments)
	}
	return e
}

// assertFailureReported: report.json judges staging not green, for the
// object, reason and message the fleet must fail with, and report.md's
// failure line names the environment, the object and the reason.
func assertFailureReported(t *testing.T, dir string, rep *report.Report, want failure) {
	t.Helper()
	e := stagingOf(t, rep)
	f := e.Failure
	if e.Verdict == report.Green || f == nil {
		t.Fatalf("report.json: staging is %q with failure %+v; want it not green, failed by %s %s", e.Verdict, f, want.object, want.reason)
	}
	if !want.object.MatchString(f.Object) || f.Reason != want.reason || !want.message.MatchString(f.Message) {
		t.Errorf("report.json: staging failed by %q %q (%q); want %s %s saying %s", f.Object, f.Reason, f.Message, want.object, want.reason, want.message)
	}
	lines := markdownFailures(t, dir)
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "staging: ") })
	if i < 0 {
		t.Fatalf("report.md: no failure line for staging among %q", lines)
	}
	object, rest, _ := strings.Cut(strings.TrimPrefix(lines[i], "staging: "), " ")
	if object != f.Object || !want.object.MatchString(object) || (rest != want.reason && !strings.HasPrefix(rest, want.reason+": ")) {
		t.Errorf("report.md: failure line %q; want staging: %s %s", lines[i], f.Object, want.reason)
	}
}

// markdownFailures returns the lines of report.md's failures section, each
// without its list marker and the markdown escapes.
func markdownFailures(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, report.MarkdownFileName))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "**Failures**\n\n")
	if !ok {
		t.Fatalf("report.md has no failures section:\n%s", data)
	}
	unescape := strings.NewReplacer(`\_`, "_", `\*`, "*", `\|`, "|", `\[`, "[", "&lt;", "<", "&gt;", ">", "&amp;", "&")
	var lines []string
	for _, l := range strings.Split(section, "\n") {
		item, ok := strings.CutPrefix(l, "- ")
		if !ok {
			break
		}
		lines = append(lines, unescape.Replace(item))
	}
	return lines
}

// greenLine is report.md's verdict line of a green staging: with its time
// to green, as the report formats durations (12.3s, 4m5s).
var greenLine = regexp.MustCompile(`(?m)^- staging: green in ([0-9]+\.[0-9]s|([0-9]+h)?([0-9]+m)?[0-9]+s)$`)

// assertGreenReported: report.json judges staging green with every object
// Ready and a time to green, and report.md's verdict line says so.
func assertGreenReported(t *testing.T, dir string, rep *report.Report) {
	t.Helper()
	e := stagingOf(t, rep)
	if e.Verdict != report.Green || e.Failure != nil {
		t.Errorf("report.json: staging is %q with failure %+v, want green", e.Verdict, e.Failure)
	}
	if len(e.Objects) == 0 {
		t.Error("report.json: a green staging with no objects")
	}
	for _, o := range e.Objects {
		if !o.Ready() {
			t.Errorf("report.json: %s not Ready in a green staging: %s %s", o.Ref(), o.Reason, o.Message)
		}
	}
	if d, ok := rep.TimeToGreen(e); !ok || d <= 0 {
		t.Errorf("report.json: staging has no time to green (%s, %v)", d, ok)
	}
	md, err := os.ReadFile(filepath.Join(dir, report.MarkdownFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !greenLine.Match(md) {
		t.Errorf("report.md has no line matching %s:\n%s", greenLine, md)
	}
}

// requireChromium skips where no Chromium is installed; under CI=true,
// where the test setup installs it, a missing browser fails the test.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := reportview.FindChromium(); err != nil {
		testsupport.SkipOrFail(t, err.Error())
	}
}

// lookAtFailedReport opens dir's report.html on a phone and checks what a
// person sees: the failing object and its reason on the first screen, one
// timeline (staging's), no broken link. The screenshot stays next to the
// report, taken first so that a failed check still leaves the picture.
func lookAtFailedReport(t *testing.T, dir string, f *report.Failure) {
	requireChromium(t)
	if f == nil {
		t.Fatal("the report names no failure to look for")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(contextBeforeTestTimeout(t), browserGuard)
	defer cancel()
	page, err := reportview.Open(ctx, filepath.Join(dir, report.HTMLFileName), phoneWidth, phoneHeight)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	shot := filepath.Join(dir, "report.png")
	if err := page.Screenshot(shot); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
	if err := page.AboveFold(f.Object, f.Reason); err != nil {
		t.Errorf("the failure is not on the first screen: %v", err)
	}
	if labels, err := page.TimelineLabels(); err != nil || !slices.Equal(labels, []string{"timeline of staging"}) {
		t.Errorf("timelines %q (%v), want exactly staging's", labels, err)
	}
	links, err := page.Links()
	if err != nil {
		t.Fatal(err)
	}
	broken, err := page.BrokenLinks()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || len(broken) > 0 {
		t.Errorf("links %q, broken %q; want the record's link only, unbroken", links, broken)
	}
	t.Logf("chromium opened, measured and photographed the report in %s", time.Since(start).Round(time.Millisecond))
}

// TestFleetReportChecks runs the report checks of the real-run scenarios on
// reports built as a kept cluster's run builds them — a pod failure, a
// cleared fleet, a HelmRelease failure, a fixed fleet — so that a change of
// the report's format fails here, without a cluster, not only under kind.
func TestFleetReportChecks(t *testing.T) {
	start := time.Now().Add(-10 * time.Minute)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	b := report.NewBuilder(report.Run{ID: "scenario", Started: start})
	for i, step := range []string{"clusters", "flux install", "sync", "wait"} {
		b.AddStep("", step, at(time.Duration(i)*time.Minute), at(time.Duration(i+1)*time.Minute), nil)
	}
	artifacts := t.TempDir()
	if err := os.WriteFile(filepath.Join(artifacts, record.FileName("staging", "")), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait := func(from time.Duration, objects ...string) *readiness.Report {
		rep := &readiness.Report{Env: "staging", Start: at(from), Total: time.Minute}
		for _, o := range objects {
			rep.Objects = append(rep.Objects, readiness.ObjectTiming{Object: o, Seen: at(from + 30*time.Second)})
		}
		return rep
	}
	podFailure := &readiness.FailureError{Env: "staging", Object: "Pod/apps/fleet-app-5d8c7b9f4-x2x9z", Reason: "ImagePullBackOff",
		Container: "app", Image: "fleet-kit/fleet-app:does-not-exist", Message: "Back-off pulling image", Owner: "Deployment/apps/fleet-app"}
	b.SetReadiness("staging", wait(3*time.Minute, "Kustomization/flux-system/flux-system"), podFailure)
	b.SetDiagnosis("staging", "staging: Pod/apps/fleet-app-5d8c7b9f4-x2x9z ImagePullBackOff")
	checkFailedFleet(t, artifacts, "broken-image", b.Report(time.Now()), failure{regexp.MustCompile(`^Pod/apps/fleet-app-[a-z0-9]+-[a-z0-9]+$`),
		"ImagePullBackOff", regexp.MustCompile(`fleet-kit/fleet-app:does-not-exist`), nil})

	b.ClearEnvironment("staging")
	helmFailure := &readiness.FailureError{Env: "staging", Object: "HelmRelease/nginx/nginx", Reason: "InstallFailed", Terminal: true,
		Message: "Helm install failed for release nginx/nginx with chart nginx@0.1.0: values don't meet the specifications of the schema(s)"}
	b.SetReadiness("staging", wait(5*time.Minute, "Kustomization/flux-system/flux-system"), helmFailure)
	checkFailedFleet(t, artifacts, "helm-bad-value", b.Report(time.Now()), failure{regexp.MustCompile(`^HelmRelease/nginx/nginx$`),
		"InstallFailed", regexp.MustCompile(`values don't meet the specifications of the schema`), nil})

	b.SetReadiness("staging", wait(7*time.Minute, "Kustomization/flux-system/flux-system", "HelmRelease/nginx/nginx"), nil)
	dir, rep := writeFleetReport(t, artifacts, "helm-bad-value-fixed", b.Report(time.Now()))
	assertGreenReported(t, dir, rep)
}

// checkFailedFleet is what TestBrokenFleetsFailFast checks of a failed
// fleet's report, the browser included.
func checkFailedFleet(t *testing.T, artifacts, fleet string, rep *report.Report, want failure) {
	t.Run(fleet, func(t *testing.T) {
		dir, written := writeFleetReport(t, artifacts, fleet, rep)
		assertFailureReported(t, dir, written, want)
		t.Run("report-in-a-browser", func(t *testing.T) { lookAtFailedReport(t, dir, stagingOf(t, written).Failure) })
	})
}
