package report

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
)

//go:embed report.html.tmpl
var templates embed.FS

// page is what the HTML template shows, computed here so the template only
// lays it out.
type page struct {
	Headline  string
	Verdict   Verdict
	Run       Run
	Failures  []failureView
	Failed    []Check // failed checks
	Envs      []envView
	Checks    []Check
	Artifacts []string
}

type failureView struct {
	Verdict   string
	Failure   *Failure
	Diagnosis string
}

type envView struct {
	Name     string
	Verdict  string
	Class    string
	Timeline timeline
	Base     string
	Changes  []string
}

// RenderHTML writes the report as one self-contained page: failures first
// with their diagnosis, a timeline per environment, the checks, what
// changed, and links to the artifacts — paths relative to the page, each
// a file next to it (see Artifacts).
func RenderHTML(w io.Writer, r *Report, artifacts []string) error {
	tmpl, err := template.New("report.html.tmpl").Funcs(template.FuncMap{
		"f1":   func(v float64) string { return fmt.Sprintf("%.1f", v) },
		"secs": func(s float64) string { return formatDuration(time.Duration(s * float64(time.Second))) },
		"when": func(t time.Time) string { return t.Format(time.RFC3339) },
	}).ParseFS(templates, "report.html.tmpl")
	if err != nil {
		return fmt.Errorf("parsing the report template: %w", err)
	}
	if err := tmpl.Execute(w, newPage(r, artifacts)); err != nil {
		return fmt.Errorf("rendering the HTML report of %s: %w", r.Headline(), err)
	}
	return nil
}

func newPage(r *Report, artifacts []string) page {
	p := page{Headline: r.Headline(), Verdict: r.Run.Verdict, Run: r.Run, Checks: r.Checks, Artifacts: artifacts}
	for i := range r.Environments {
		e := &r.Environments[i]
		line := r.VerdictLine(e)
		if e.Verdict != Green {
			p.Failures = append(p.Failures, failureView{Verdict: line, Failure: e.Failure, Diagnosis: e.Diagnosis})
		}
		steps := append(slices.Clone(r.Steps), e.Steps...)
		p.Envs = append(p.Envs, envView{Name: e.Name, Verdict: line, Class: strings.ReplaceAll(string(e.Verdict), " ", "-"),
			Timeline: newTimeline(steps, e), Base: e.Base, Changes: e.Changes})
	}
	for _, c := range r.Checks {
		if c.Result == Failed {
			p.Failed = append(p.Failed, c)
		}
	}
	return p
}

// Artifacts lists the files under dir for the page's links, as slash paths
// relative to dir, skipping the report's own files and hidden ones.
func Artifacts(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || name == FileName || name == HTMLFileName || name == MarkdownFileName {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the artifacts in %s: %w", dir, err)
	}
	return out, nil
}

// The rendered report's file names, next to report.json.
const (
	HTMLFileName     = "report.html"
	MarkdownFileName = "report.md"
)

// WriteAll writes report.json, report.html (linking every other file in
// dir) and report.md into dir, each 0600.
func WriteAll(dir string, r *Report) error {
	if err := Write(filepath.Join(dir, FileName), r); err != nil {
		return err
	}
	if err := WriteHTML(filepath.Join(dir, HTMLFileName), r, dir); err != nil {
		return err
	}
	var md strings.Builder
	if err := RenderMarkdown(&md, r); err != nil {
		return err
	}
	return privatefile.Write(filepath.Join(dir, MarkdownFileName), []byte(md.String()))
}

// WriteHTML renders r to path (0600) with a link to every file in
// artifactsDir, relative to path's directory so the links survive copying
// both together (an uploaded artifact).
func WriteHTML(path string, r *Report, artifactsDir string) error {
	files, err := Artifacts(artifactsDir)
	if err != nil {
		return err
	}
	absPage, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	absArtifacts, err := filepath.Abs(artifactsDir)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	self := filepath.Join(absPage, filepath.Base(path))
	var links []string
	for _, f := range files {
		file := filepath.Join(absArtifacts, filepath.FromSlash(f))
		if file == self {
			continue // the page itself, under another name than report.html
		}
		rel, err := filepath.Rel(absPage, file)
		if err != nil {
			return fmt.Errorf("writing %s: linking %s: %w", path, f, err)
		}
		links = append(links, filepath.ToSlash(rel))
	}
	var html strings.Builder
	if err := RenderHTML(&html, r, links); err != nil {
		return err
	}
	return privatefile.Write(path, []byte(html.String()))
}
