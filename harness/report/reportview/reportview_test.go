package reportview

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// browserGuard bounds one page's checks: a browser that hangs must not hold
// the test until go test's own timeout. Loading a local file and a few
// queries need a small fraction of it; the tests log what they took.
const browserGuard = 2 * time.Minute

// A small phone's screen, in CSS pixels.
const (
	screenWidth  = 360
	screenHeight = 640
)

// requireChromium skips where no Chromium is installed, and fails under
// CI=true, where the test setup installs it.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := FindChromium(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// testPage is a page with one thing of each kind the checks tell apart:
// text on the first screen, text below it, hidden text, two timelines,
// a link to a file, one to a missing file and one off the machine.
const testPage = `<!doctype html>
<html><head><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="margin:0">
<p class="failure"><span class="object">Pod/apps/app-1</span>: <span class="reason">ImagePullBackOff</span></p>
<p style="display:none">hidden words</p>
<svg class="timeline" aria-label="timeline of staging" viewBox="0 0 100 10" style="width:100%"></svg>
<svg class="timeline" aria-label="timeline of production" viewBox="0 0 100 10" style="width:100%"></svg>
<div style="height:2000px"></div>
<p>far down</p>
<a href="present.json">present</a> <a href="missing.json">missing</a> <a href="https://example.org/">away</a>
WIDE
</body></html>`

// openTestPage writes testPage (with wide, if any, in place of WIDE) and
// a file it links to into a directory, and opens it.
func openTestPage(t *testing.T, wide string) (*Page, string) {
	t.Helper()
	requireChromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "page.html")
	if err := os.WriteFile(page, []byte(strings.Replace(testPage, "WIDE", wide, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "present.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), browserGuard)
	t.Cleanup(cancel)
	start := time.Now()
	p, err := Open(ctx, page, screenWidth, screenHeight)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	t.Logf("chromium opened the page in %s", time.Since(start).Round(time.Millisecond))
	return p, dir
}

func TestPage(t *testing.T) {
	p, dir := openTestPage(t, "")
	t.Run("above the fold", func(t *testing.T) {
		if err := p.AboveFold("Pod/apps/app-1", "ImagePullBackOff"); err != nil {
			t.Errorf("text on the first screen: %v", err)
		}
		for text, want := range map[string]string{
			"far down":     `"far down" is below the first screen: it spans`,
			"hidden words": `"hidden words" is not displayed on the page`,
			"nowhere":      `"nowhere" is not displayed on the page`,
		} {
			err := p.AboveFold("ImagePullBackOff", text)
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), `"ImagePullBackOff"`) {
				t.Errorf("AboveFold(%q) = %v, want an error saying only %s", text, err, want)
			}
		}
	})
	t.Run("texts", func(t *testing.T) {
		got, err := p.Texts(".failure .object")
		if err != nil || !slices.Equal(got, []string{"Pod/apps/app-1"}) {
			t.Errorf("Texts = %q, %v; want the one failing object", got, err)
		}
	})
	t.Run("timelines", func(t *testing.T) {
		n, err := p.Timelines()
		if err != nil || n != 2 {
			t.Errorf("Timelines = %d, %v; want 2", n, err)
		}
		labels, err := p.TimelineLabels()
		if want := []string{"timeline of staging", "timeline of production"}; err != nil || !slices.Equal(labels, want) {
			t.Errorf("TimelineLabels = %q, %v; want %q", labels, err, want)
		}
	})
	t.Run("links", func(t *testing.T) {
		links, err := p.Links()
		if err != nil || len(links) != 3 {
			t.Fatalf("Links = %q, %v; want 3", links, err)
		}
		broken, err := p.BrokenLinks()
		if err != nil {
			t.Fatal(err)
		}
		if len(broken) != 2 || !strings.HasPrefix(broken[0], "file://"+filepath.Join(dir, "missing.json")+": ") ||
			broken[1] != "https://example.org/: not a local file" {
			t.Errorf("BrokenLinks = %q, want missing.json and the link off the machine", broken)
		}
	})
	t.Run("fits the width", func(t *testing.T) {
		if err := p.FitsWidth(); err != nil {
			t.Error(err)
		}
	})
	t.Run("screenshot", func(t *testing.T) {
		path := filepath.Join(dir, "shots", "page.png")
		if err := p.Screenshot(path); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot %s is not a PNG (%v)", path, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("screenshot %s: mode %v (%v), want 0600 like the other artifacts", path, fi.Mode().Perm(), err)
		}
	})
}

func TestPageWiderThanTheScreen(t *testing.T) {
	p, _ := openTestPage(t, `<div style="width:1000px">wide</div>`)
	err := p.FitsWidth()
	if err == nil || !strings.Contains(err.Error(), "the page is 1000 px wide on a 360 px screen") {
		t.Errorf("FitsWidth = %v, want the page's overrun named", err)
	}
}

func TestOpenMissingPage(t *testing.T) {
	requireChromium(t)
	missing := filepath.Join(t.TempDir(), "report.html")
	p, err := Open(t.Context(), missing, screenWidth, screenHeight)
	if err == nil {
		p.Close()
		t.Fatal("opened a page that does not exist")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the page %s", err, missing)
	}
}
