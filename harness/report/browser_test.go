package report

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/report/reportview"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// The phone the page is looked at on: a common Android size, in CSS pixels.
const (
	phoneWidth  = 412
	phoneHeight = 915
)

// browserGuard bounds one page's checks: a browser that hangs must not hold
// the test until go test's own timeout. Loading a local file and a few
// queries need a small fraction of it; the test logs what they took.
const browserGuard = 2 * time.Minute

// requireChromium skips where no Chromium is installed; under CI=true, where
// the test setup installs it, a missing browser fails the test.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := reportview.FindChromium(); err != nil {
		testsupport.SkipOrFail(t, err.Error())
	}
}

// artifactsDir is where the screenshots go: $E2E_ARTIFACTS when set, so CI
// uploads them, else the test's temporary directory.
func artifactsDir(t *testing.T) string {
	if dir := os.Getenv("E2E_ARTIFACTS"); dir != "" {
		return dir
	}
	return t.TempDir()
}

func TestReportInBrowser(t *testing.T) {
	requireChromium(t)
	artifacts := artifactsDir(t)
	for _, tc := range []struct {
		name   string
		report *Report
	}{{"failed", failedReport()}, {"green", greenReport()}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tc.name)
			for _, f := range []string{"record-staging.json", "record-production.json", "diagnostics/production/summary.txt"} {
				writeArtifact(t, filepath.Join(dir, f))
			}
			if err := WriteAll(dir, tc.report); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			page := openOnPhone(t, filepath.Join(dir, HTMLFileName))
			png := filepath.Join(artifacts, "report-"+tc.name+".png")
			if err := page.Screenshot(png); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", png)
			checkFailureShown(t, tc.report, page)
			checkTimelines(t, tc.report, page)
			checkLinks(t, page)
			t.Logf("chromium opened, measured and photographed the %s report in %s", tc.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

func writeArtifact(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// openOnPhone opens the page headless at a phone's size, closed when t
// ends; Open fails unless the page sees exactly that screen.
func openOnPhone(t *testing.T, path string) *reportview.Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), browserGuard)
	t.Cleanup(cancel)
	page, err := reportview.Open(ctx, path, phoneWidth, phoneHeight)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(page.Close)
	return page
}

// checkFailureShown: the first failure's object and reason are the ones
// the page leads with, on the first screen; a green report shows none.
func checkFailureShown(t *testing.T, r *Report, page *reportview.Page) {
	t.Helper()
	objects, err := page.Texts(".failure .object")
	if err != nil {
		t.Fatal(err)
	}
	reasons, err := page.Texts(".failure .reason")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(r.Environments, func(e Environment) bool { return e.Failure != nil })
	if i < 0 {
		if len(objects) != 0 {
			t.Errorf("a green report shows failing objects %q", objects)
		}
		return
	}
	want := r.Environments[i].Failure
	if len(objects) == 0 || len(reasons) == 0 || objects[0] != want.Object || reasons[0] != want.Reason {
		t.Errorf("first failure shows objects %q reasons %q, want %q %q first", objects, reasons, want.Object, want.Reason)
	}
	if err := page.AboveFold(want.Object, want.Reason); err != nil {
		t.Errorf("the failure is not on the first screen: %v", err)
	}
}

// checkTimelines: exactly one timeline per environment, each within the
// phone's width, and the page no wider than the phone.
func checkTimelines(t *testing.T, r *Report, page *reportview.Page) {
	t.Helper()
	var want []string
	for _, e := range r.Environments {
		want = append(want, "timeline of "+e.Name)
	}
	got, err := page.TimelineLabels()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("timelines %q, want exactly one per environment %q", got, want)
	}
	if err := page.FitsWidth(); err != nil {
		t.Error(err)
	}
}

// checkLinks: one link per artifact (3), each to a file that exists.
func checkLinks(t *testing.T, page *reportview.Page) {
	t.Helper()
	links, err := page.Links()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 3 {
		t.Errorf("%d links, want one per artifact (3): %q", len(links), links)
	}
	for _, l := range links {
		if u, err := url.Parse(l); err != nil || u.Scheme != "file" {
			t.Errorf("link %q is not a local file (%v)", l, err)
		}
	}
	broken, err := page.BrokenLinks()
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) > 0 {
		t.Errorf("broken links: %q", broken)
	}
}
