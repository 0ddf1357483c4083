// Package reportview looks at a rendered run report (report.html) the way a
// person does: in headless Chromium at a given screen size. It answers what
// a test asks of the page — is this text on the first screen, how many
// timelines are there, which links are broken — and takes a screenshot.
//
// Whether a missing Chromium skips or fails a test is the test's decision:
// FindChromium reports it, Open fails without it.
package reportview

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/chromedp/chromedp"

	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
)

// browserNames are the executables tried, in order: Debian's package first.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome"}

// FindChromium returns the path of a Chromium build on PATH (Debian's
// chromium package, or chromium-browser, or google-chrome).
func FindChromium() (string, error) {
	for _, name := range browserNames {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("none of %q on PATH: install Debian's chromium package (apt-get install chromium) to look at the report in a browser", browserNames)
}

// Page is one report opened in a headless browser. Its methods look at the
// page as it was loaded, without scrolling.
type Page struct {
	path string
	// width and height are the emulated screen's: a page that overflows it
	// widens the browser's layout viewport, so answers are measured
	// against the screen, not against window.innerWidth.
	width, height float64
	browser       context.Context
	closeBrowser  context.CancelFunc
	stopAllocator context.CancelFunc
}

// Open starts Chromium (see FindChromium), emulates a portrait mobile screen
// of width×height CSS pixels and loads the page at htmlPath. ctx bounds the
// page's whole life: cancelling it ends the browser. Close the page when
// done.
func Open(ctx context.Context, htmlPath string, width, height int) (*Page, error) {
	exe, err := FindChromium()
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", htmlPath, err)
	}
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", htmlPath, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("opening the report page: %w", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.WindowSize(width, height),
		// A container's root user has no sandbox to drop into; the page is
		// a local file the harness wrote.
		chromedp.NoSandbox)
	allocCtx, stopAllocator := chromedp.NewExecAllocator(ctx, opts...)
	browser, closeBrowser := chromedp.NewContext(allocCtx)
	p := &Page{path: abs, width: float64(width), height: float64(height), browser: browser, closeBrowser: closeBrowser, stopAllocator: stopAllocator}
	u := url.URL{Scheme: "file", Path: abs}
	if err := chromedp.Do(browser, chromedp.EmulateViewport(int64(width), int64(height), chromedp.EmulateMobile, chromedp.EmulatePortrait),
		chromedp.Navigate(u.String())); err != nil {
		p.Close()
		return nil, fmt.Errorf("opening %s in chromium %s: %w", abs, exe, err)
	}
	// The emulated screen is what every answer is measured against.
	got, err := eval[[2]float64](p, "[screen.width, screen.height]")
	if err != nil {
		p.Close()
		return nil, err
	}
	if got != [2]float64{p.width, p.height} {
		p.Close()
		return nil, fmt.Errorf("opening %s: the screen is %vx%v px, want the emulated %dx%d", abs, got[0], got[1], width, height)
	}
	return p, nil
}

// Close ends the browser. It is safe to call more than once.
func (p *Page) Close() {
	p.closeBrowser()
	p.stopAllocator()
}

// eval runs a script expression on the page and decodes its value.
func eval[T any](p *Page, script string) (T, error) {
	v, err := chromedp.Run(p.browser, chromedp.Evaluate[T](script))
	if err != nil {
		return v, fmt.Errorf("measuring %s in chromium: %w", p.path, err)
	}
	return v, nil
}

// call runs the script function fn on the page with arg (JSON-encoded) and
// decodes its value.
func call[T any](p *Page, fn string, arg any) (T, error) {
	js, err := json.Marshal(arg)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("measuring %s: encoding %v: %w", p.path, arg, err)
	}
	return eval[T](p, "("+fn+")("+string(js)+")")
}

// Screenshot writes a PNG of the whole page to path (0600, its directory
// created 0700 like the other artifacts).
func (p *Page) Screenshot(path string) error {
	shot, err := chromedp.Run(p.browser, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("taking a screenshot of %s: %w", p.path, err)
	}
	if err := privatefile.Write(path, shot); err != nil {
		return fmt.Errorf("saving the screenshot of %s: %w", p.path, err)
	}
	return nil
}
