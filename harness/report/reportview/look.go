package reportview

import (
	"errors"
	"fmt"
	"net/url"
	"os"
)

// box is where an element sits, in CSS pixels from the top left of the
// first screen.
type box struct {
	Top    float64 `json:"top"`
	Bottom float64 `json:"bottom"`
	Left   float64 `json:"left"`
	Right  float64 `json:"right"`
}

// placement is where a text is shown: the innermost displayed elements that
// hold it, in document order, and the screen they are measured against.
type placement struct {
	Width, Height float64
	Boxes         []box
}

// placeScript finds the innermost displayed elements whose visible text
// holds the argument: an element whose child holds it too is skipped, so
// the box is the text's own, not its section's.
const placeScript = `(text) => {
	const shown = (el) => (el instanceof HTMLElement ? el.innerText : el.textContent) || "";
	const boxes = [];
	for (const el of document.body.querySelectorAll("*")) {
		if (!shown(el).includes(text)) continue;
		if (Array.from(el.children).some(c => shown(c).includes(text))) continue;
		const r = el.getBoundingClientRect();
		if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === "hidden") continue;
		boxes.push({top: r.top, bottom: r.bottom, left: r.left, right: r.right});
	}
	return boxes;
}`

// AboveFold checks that each text is displayed entirely within the first
// screen, without scrolling. The error names every text that is not, and
// where it is instead.
func (p *Page) AboveFold(texts ...string) error {
	var errs []error
	for _, text := range texts {
		boxes, err := call[[]box](p, placeScript, text)
		if err != nil {
			return err
		}
		pl := placement{Width: p.width, Height: p.height, Boxes: boxes}
		if err := pl.check(text); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", p.path, err)
	}
	return nil
}

// check says whether one of the text's boxes lies on the first screen, or
// where the first one is.
func (pl placement) check(text string) error {
	if len(pl.Boxes) == 0 {
		return fmt.Errorf("%q is not displayed on the page", text)
	}
	for _, b := range pl.Boxes {
		if b.Top >= 0 && b.Bottom <= pl.Height && b.Left >= 0 && b.Right <= pl.Width {
			return nil
		}
	}
	b := pl.Boxes[0]
	if b.Bottom > pl.Height {
		return fmt.Errorf("%q is below the first screen: it spans %.0f–%.0f px from the top of a %.0f px high screen", text, b.Top, b.Bottom, pl.Height)
	}
	return fmt.Errorf("%q is outside the first screen: it spans x %.0f–%.0f px, y %.0f–%.0f px of a %.0fx%.0f px screen",
		text, b.Left, b.Right, b.Top, b.Bottom, pl.Width, pl.Height)
}

// Texts returns the text of every element matching the CSS selector, in
// document order.
func (p *Page) Texts(selector string) ([]string, error) {
	return call[[]string](p, `(sel) => Array.from(document.querySelectorAll(sel)).map(e => e.textContent)`, selector)
}

// timelineSelector matches the report's timelines, one SVG per environment.
const timelineSelector = "svg.timeline"

// Timelines returns how many timelines the page draws (one per
// environment in a run report).
func (p *Page) Timelines() (int, error) {
	labels, err := p.TimelineLabels()
	return len(labels), err
}

// TimelineLabels returns each timeline's accessible name ("timeline of
// staging"), in document order.
func (p *Page) TimelineLabels() ([]string, error) {
	return call[[]string](p, `(sel) => Array.from(document.querySelectorAll(sel)).map(s => s.getAttribute("aria-label") || "")`, timelineSelector)
}

// widths is how wide the page and its timelines are drawn.
type widths struct {
	Document  float64   `json:"document"`
	Timelines []float64 `json:"timelines"`
}

// FitsWidth checks that the page is no wider than the screen, so it reads
// without scrolling sideways, and that every timeline is drawn and fits.
func (p *Page) FitsWidth() error {
	w, err := call[widths](p, `(sel) => ({
		document: document.documentElement.scrollWidth,
		timelines: Array.from(document.querySelectorAll(sel)).map(s => s.getBoundingClientRect().width),
	})`, timelineSelector)
	if err != nil {
		return err
	}
	var errs []error
	if w.Document > p.width {
		errs = append(errs, fmt.Errorf("the page is %.0f px wide on a %.0f px screen", w.Document, p.width))
	}
	for i, tw := range w.Timelines {
		if tw <= 0 || tw > p.width {
			errs = append(errs, fmt.Errorf("timeline %d is %.0f px wide on a %.0f px screen", i+1, tw, p.width))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", p.path, err)
	}
	return nil
}

// Links returns every link's target as the browser resolved it (a file:
// URL for a link to an artifact), in document order.
func (p *Page) Links() ([]string, error) {
	return eval[[]string](p, `Array.from(document.querySelectorAll("a[href]")).map(a => a.href)`)
}

// BrokenLinks returns the links that do not lead to a file, each with why.
// A link that is not to a local file counts as broken: a report is looked
// at offline, and every link it has is to an artifact next to it.
func (p *Page) BrokenLinks() ([]string, error) {
	links, err := p.Links()
	if err != nil {
		return nil, err
	}
	var broken []string
	for _, l := range links {
		u, err := url.Parse(l)
		switch {
		case err != nil:
			broken = append(broken, fmt.Sprintf("%s: %v", l, err))
		case u.Scheme != "file":
			broken = append(broken, l+": not a local file")
		default:
			if _, err := os.Stat(u.Path); err != nil {
				broken = append(broken, fmt.Sprintf("%s: %v", l, err))
			}
		}
	}
	return broken, nil
}
