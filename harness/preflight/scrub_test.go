package preflight

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// TestRunFindingsHideValues plants a password that the chart's schema
// rejects by pattern and a host (through a post-build substitution) that a
// template's fail quotes: no finding may hold either, while each still
// names the path and the rule, and the value's digest stands in its place.
func TestRunFindingsHideValues(t *testing.T) {
	const password, host = "PLANTED-hunter2", "PLANTED-db.internal"
	w := startWorld(t)
	files := edit(t, baseFleet(w), "releases/http.yaml", "    env:\n",
		"    dbPassword: "+password+"\n    dbHost: ${DB_HOST}\n    env:\n")
	files = edit(t, files, "clusters/staging/releases.yaml", "      replicas: \"2\"\n",
		"      replicas: \"2\"\n      DB_HOST: "+host+"\n")
	opts := w.options(writeFleet(t, files))
	opts.Envs = []string{"staging"}
	var out strings.Builder
	opts.Out = &out
	report, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	findings := report.Findings()
	var reasons []string
	for _, f := range findings {
		reasons = append(reasons, f.Reason)
		if strings.Contains(f.Reason, "PLANTED") {
			t.Errorf("finding quotes a planted value: %s", f)
		}
	}
	if strings.Contains(out.String(), "PLANTED") {
		t.Errorf("the report quotes a planted value:\n%s", out.String())
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{
		"values rejected by values.schema.json of chart app 1.2.0: app: at '/dbPassword': '<" + sha12(`"`+password+`"`) + ">' does not match pattern '^x'",
		`dbHost "<` + sha12(`"`+host+`"`) + `>" is not allowed`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("findings lack %q:\n%s", want, all)
		}
	}
}

// TestRunFindingsRawValues: with RawValues the finding is Helm's text.
func TestRunFindingsRawValues(t *testing.T) {
	w := startWorld(t)
	files := edit(t, baseFleet(w), "releases/http.yaml", "    env:\n", "    dbPassword: PLANTED-hunter2\n    env:\n")
	opts := w.options(writeFleet(t, files))
	opts.Envs, opts.Out, opts.RawValues = []string{"staging"}, nil, true
	report, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := "app: at '/dbPassword': 'PLANTED-hunter2' does not match pattern '^x'"
	if f := report.Findings(); len(f) != 1 || !strings.HasSuffix(f[0].Reason, want) {
		t.Errorf("findings %v, want one ending %q", f, want)
	}
}

// sha12 is the promised digest of a value, "sha256:" and 12 hex digits of
// the sha256 of its canonical JSON, computed here rather than by record.
func sha12(canonicalJSON string) string {
	sum := sha256.Sum256([]byte(canonicalJSON))
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}
