package report

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/readiness"
)

func renderBoth(t *testing.T, r *Report, artifacts []string) (html, md string) {
	t.Helper()
	var h, m strings.Builder
	if err := RenderHTML(&h, r, artifacts); err != nil {
		t.Fatal(err)
	}
	if err := RenderMarkdown(&m, r); err != nil {
		t.Fatal(err)
	}
	return h.String(), m.String()
}

func TestMarkdownGreen(t *testing.T) {
	_, md := renderBoth(t, greenReport(), nil)
	want := `### flux-fleet run nightly-42: green

- staging: green in 2m30s
- production: green in 2m30s

**Slowest objects**

| Environment | Object | Ready after |
|---|---|---|
| staging | Kustomization/flux-system/flux-system | 1m28s |
| staging | Kustomization/flux-system/apps | 1m25s |
| staging | HelmRelease/podinfo/podinfo | 1m20s |
| staging | Kustomization/flux-system/infrastructure | 57.0s |
| staging | HelmRelease/redis/redis | 55.0s |
| production | Kustomization/flux-system/flux-system | 1m28s |
| production | Kustomization/flux-system/apps | 1m25s |
| production | HelmRelease/podinfo/podinfo | 1m20s |
| production | Kustomization/flux-system/infrastructure | 57.0s |
| production | HelmRelease/redis/redis | 55.0s |
`
	if md != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", md, want)
	}
}

func TestMarkdownFailed(t *testing.T) {
	b := failedBuilder()
	b.SetChanges("production", secretChanges())
	_, md := renderBoth(t, b.Report(at(150)), nil)
	for _, want := range []string{
		"### flux-fleet run nightly-42: not ready\n",
		"\n- production: not ready: HelmRelease/podinfo/podinfo failed: InstallFailed\n",
		"\n**Failures**\n\n- production: HelmRelease/podinfo/podinfo InstallFailed: Helm install failed for release podinfo/podinfo with chart podinfo@6.9.2: context deadline exceeded\n" +
			"- check TestFleet/production/podinfo-serves (production): GET /: 503 Service Unavailable\n",
		"\n**Changes in production** since HEAD~1 (0123456789ab)\n\n```text\nfleet: HEAD~1 (0123456789ab) → fedcba987654\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestHTMLFailuresFirst(t *testing.T) {
	html, _ := renderBoth(t, failedReport(), []string{"record-production.json", "diagnostics/production/summary.txt"})
	failure := strings.Index(html, `<span class="object">HelmRelease/podinfo/podinfo</span>: <span class="reason">InstallFailed</span>`)
	firstTimeline := strings.Index(html, "<svg")
	if failure < 0 || firstTimeline < 0 || failure > firstTimeline {
		t.Errorf("the failing object and reason (at %d) do not come before the first timeline (at %d)", failure, firstTimeline)
	}
	if !strings.Contains(html, `<pre class="diagnosis">production: HelmRelease/podinfo/podinfo InstallFailed`) {
		t.Error("the diagnosis is not shown with the failure")
	}
	if n := strings.Count(html, `<svg class="timeline"`); n != 2 {
		t.Errorf("%d timelines, want one per environment (2)", n)
	}
	for _, want := range []string{`<a href="record-production.json">`, `<a href="diagnostics/production/summary.txt">`,
		`<g class="failed critical"><title>HelmRelease/podinfo/podinfo  failed: InstallFailed  (critical path)</title>`,
		`<g class="step-failed"><title>wait  1m18s  FAILED: wait: production: HelmRelease/podinfo/podinfo failed: InstallFailed`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// The SVG namespace is a name, not a fetch; anything else that names a
	// scheme or loads a file would need the network or another file.
	page := strings.ReplaceAll(html, `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, banned := range []string{"<script", "http:", "https:", "<link", "@import", "src=", "url("} {
		if strings.Contains(page, banned) {
			t.Errorf("the page is not self-contained: it holds %q", banned)
		}
	}
}

func TestHTMLGreen(t *testing.T) {
	html, _ := renderBoth(t, greenReport(), nil)
	for _, want := range []string{"<title>flux-fleet run nightly-42: green</title>", "<p>Every environment is green and every check passed.</p>",
		`<span class="verdict green">staging: green in 2m30s</span>`} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(html, `class="failure"`) {
		t.Error("a green report shows a failure")
	}
}

func TestRenderersEscapeNames(t *testing.T) {
	planted := "<script>alert(1)</script>"
	rep := greenWait("staging")
	rep.Objects = append(rep.Objects, readyAfter("Deployment/apps/"+planted, 3))
	err := &readiness.FailureError{Object: "Deployment/apps/" + planted, Reason: "ProgressDeadlineExceeded", Message: planted, Terminal: true}
	b := newFixtureBuilder()
	b.SetReadiness(planted, rep, err)
	b.SetDiagnosis(planted, planted)
	b.AddCheck(Check{Name: planted, Env: planted, Result: Failed, Failure: planted})
	html, md := renderBoth(t, b.Report(at(200)), []string{planted})
	if strings.Contains(html, "<script") || strings.Contains(md, "<script") {
		t.Errorf("a planted tag reached a rendering unescaped:\n%s\n%s", html, md)
	}
	if !strings.Contains(html, `<span class="object">Deployment/apps/&lt;script&gt;alert(1)&lt;/script&gt;</span>`) {
		t.Error("the HTML does not show the escaped object name")
	}
	if !strings.Contains(md, "Deployment/apps/&lt;script&gt;alert(1)&lt;/script&gt; failed: ProgressDeadlineExceeded") {
		t.Errorf("the markdown does not show the escaped object name:\n%s", md)
	}
}

// TestNoValueReachesTheFiles plants secrets where a HelmRelease's values
// and a Kustomization's substitutions would carry them (a record with raw
// values) and in nothing else the builder takes: none may reach a file.
func TestNoValueReachesTheFiles(t *testing.T) {
	b := newFixtureBuilder()
	b.SetReadiness("production", greenWait("production"), nil)
	b.SetChanges("production", secretChanges())
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "record-production.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteAll(dir, b.Report(at(200))); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, name := range []string{FileName, HTMLFileName, MarkdownFileName} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "planted") {
			t.Errorf("%s holds a planted secret value", name)
		}
		if !strings.Contains(string(data), "auth.password") {
			t.Errorf("%s does not name the changed value's key", name)
		}
		names = append(names, name)
	}
	artifacts, err := Artifacts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(artifacts, []string{"record-production.json"}) {
		t.Errorf("artifacts = %v, want only the record (not the report's own files %v)", artifacts, names)
	}
}
