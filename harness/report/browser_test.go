package report

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The phone the page is looked at on: a common Android size, in CSS pixels.
const (
	phoneWidth  = 412
	phoneHeight = 915
)

// browserGuard bounds one page's checks: a browser that hangs must not hold
// the test until go test's own timeout. Loading a local file and three
// queries need a small fraction of it; the test logs what they took.
const browserGuard = 2 * time.Minute

// chromium finds Debian's chromium (or another Chromium build on PATH).
// Under CI=true a missing browser fails the test; elsewhere it skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	msg := "no chromium on PATH: install Debian's chromium package (apt-get install chromium) to look at the report in a browser"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifactsDir is where the screenshots go: $E2E_ARTIFACTS when set, so CI
// uploads them, else the test's temporary directory.
func artifactsDir(t *testing.T) string {
	if dir := os.Getenv("E2E_ARTIFACTS"); dir != "" {
		return dir
	}
	return t.TempDir()
}

// pageFacts is what the browser saw on the page.
type pageFacts struct {
	Viewport        float64   `json:"viewport"`
	ObjectText      string    `json:"objectText"`
	ObjectBottom    float64   `json:"objectBottom"`
	ReasonText      string    `json:"reasonText"`
	ReasonBottom    float64   `json:"reasonBottom"`
	Timelines       []string  `json:"timelines"`
	TimelineWidths  []float64 `json:"timelineWidths"`
	Links           []string  `json:"links"`
	DocumentOverrun float64   `json:"documentOverrun"`
}

// factsScript measures the page as a person sees it: where the failure
// sits against the first screen, the timelines, the links and whether the
// page is wider than the phone.
const factsScript = `(() => {
	const rect = (sel) => { const e = document.querySelector(sel); return e ? [e.textContent, e.getBoundingClientRect().bottom] : ["", 0]; };
	const [objectText, objectBottom] = rect(".failure .object");
	const [reasonText, reasonBottom] = rect(".failure .reason");
	const svgs = Array.from(document.querySelectorAll("svg.timeline"));
	return {
		viewport: window.innerHeight,
		objectText, objectBottom, reasonText, reasonBottom,
		timelines: svgs.map(s => s.getAttribute("aria-label")),
		timelineWidths: svgs.map(s => s.getBoundingClientRect().width),
		links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
		documentOverrun: document.documentElement.scrollWidth - window.innerWidth,
	};
})()`

func TestReportInBrowser(t *testing.T) {
	exe := chromium(t)
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
			facts, shot := lookAt(t, exe, filepath.Join(dir, HTMLFileName))
			t.Logf("chromium opened, measured and photographed the %s report in %s", tc.name, time.Since(start).Round(time.Millisecond))
			png := filepath.Join(artifacts, "report-"+tc.name+".png")
			if err := os.WriteFile(png, shot, 0o600); err != nil {
				t.Fatalf("saving the screenshot: %v", err)
			}
			t.Logf("screenshot: %s", png)
			checkFacts(t, tc.report, facts)
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

// lookAt opens page headless at a phone's size and returns what it shows
// and a full-page screenshot.
func lookAt(t *testing.T, exe, page string) (pageFacts, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), browserGuard)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.WindowSize(phoneWidth, phoneHeight),
		// A container's root user has no sandbox to drop into; the page is
		// the test's own file.
		chromedp.NoSandbox)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	u := url.URL{Scheme: "file", Path: page}
	if err := chromedp.Do(browser, chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile, chromedp.EmulatePortrait), chromedp.Navigate(u.String())); err != nil {
		t.Fatalf("opening %s in chromium: %v", page, err)
	}
	facts, err := chromedp.Run(browser, chromedp.Evaluate[pageFacts](factsScript))
	if err != nil {
		t.Fatalf("measuring %s: %v", page, err)
	}
	shot, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("taking a screenshot of %s: %v", page, err)
	}
	return facts, shot
}

func checkFacts(t *testing.T, r *Report, f pageFacts) {
	t.Helper()
	if f.Viewport != phoneHeight {
		t.Errorf("viewport is %v px high, want the phone's %d", f.Viewport, phoneHeight)
	}
	if i := slices.IndexFunc(r.Environments, func(e Environment) bool { return e.Failure != nil }); i >= 0 {
		want := r.Environments[i].Failure
		if f.ObjectText != want.Object || f.ReasonText != want.Reason {
			t.Errorf("first failure shows %q %q, want %q %q", f.ObjectText, f.ReasonText, want.Object, want.Reason)
		}
		if f.ObjectBottom <= 0 || f.ObjectBottom >= f.Viewport || f.ReasonBottom <= 0 || f.ReasonBottom >= f.Viewport {
			t.Errorf("failing object (bottom %v px) or reason (bottom %v px) not within the first screen of %v px", f.ObjectBottom, f.ReasonBottom, f.Viewport)
		}
	} else if f.ObjectText != "" {
		t.Errorf("a green report shows a failing object %q", f.ObjectText)
	}
	var wantTimelines []string
	for _, e := range r.Environments {
		wantTimelines = append(wantTimelines, "timeline of "+e.Name)
	}
	if !slices.Equal(f.Timelines, wantTimelines) {
		t.Errorf("timelines %q, want exactly one per environment %q", f.Timelines, wantTimelines)
	}
	for i, w := range f.TimelineWidths {
		if w <= 0 || w > phoneWidth {
			t.Errorf("timeline %d is %v px wide on a %d px screen", i, w, phoneWidth)
		}
	}
	if f.DocumentOverrun > 0 {
		t.Errorf("the page is %v px wider than the phone", f.DocumentOverrun)
	}
	checkLinks(t, f.Links)
}

func checkLinks(t *testing.T, links []string) {
	t.Helper()
	if len(links) != 3 {
		t.Errorf("%d links, want one per artifact (3): %q", len(links), links)
	}
	for _, l := range links {
		u, err := url.Parse(l)
		if err != nil || u.Scheme != "file" {
			t.Errorf("link %q is not a local file (%v)", l, err)
			continue
		}
		if _, err := os.Stat(u.Path); err != nil {
			t.Errorf("link %q is broken: %v", l, err)
		}
	}
}
