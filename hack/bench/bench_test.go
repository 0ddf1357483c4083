package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
)

const s = time.Second

func TestStatsOf(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want stats
	}{
		{"none", nil, stats{}},
		{"one", []time.Duration{3 * s}, stats{1, 3 * s, 3 * s, 3 * s}},
		{"odd, unsorted", []time.Duration{5 * s, 1 * s, 3 * s}, stats{3, 1 * s, 3 * s, 5 * s}},
		{"even: mean of the middle two", []time.Duration{4 * s, 1 * s, 2 * s, 9 * s}, stats{4, 1 * s, 3 * s, 9 * s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statsOf(tt.in); got != tt.want {
				t.Errorf("statsOf(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b time.Duration
		want string
	}{
		{30 * s, 10 * s, "3.0×"},
		{10 * s, 40 * s, "0.2×"},
		{10 * s, 0, "—"},
		{0, 10 * s, "—"},
	}
	for _, tt := range tests {
		if got := ratio(tt.a, tt.b); got != tt.want {
			t.Errorf("ratio(%s, %s) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestFromSteps(t *testing.T) {
	steps := []fleetenv.StepTiming{
		{Name: "offline checks", Took: 1 * s},
		{Name: "chart server", Took: 0},
		{Name: "pre-flight", Took: 2 * s},
		{Name: "clusters", Took: 20 * s},
		{Name: "servers", Took: 1 * s},
		{Name: "flux install", Took: 12 * s},
		{Name: "sync", Took: 1 * s},
		{Name: "wait", Took: 9 * s},
	}
	var smp sample
	smp.phases = map[string]time.Duration{}
	err := smp.fromSteps(steps, []clusterTiming{
		{"staging", 8 * s, 3 * s, []string{"app"}},
		{"production", 10 * s, 1 * s, nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{
		phasePrepare: 4 * s, // offline checks + chart server + pre-flight + servers
		phaseCreate:  20 * s,
		phaseFlux:    12 * s,
		phaseNetwork: 10 * s, // the slowest environment's, inside flux install
		phaseImages:  3 * s,
		phaseSync:    1 * s,
		phaseReady:   9 * s,
	}
	for p, d := range want {
		if smp.phases[p] != d {
			t.Errorf("phase %s = %s, want %s", p, smp.phases[p], d)
		}
	}
	if len(smp.loaded["staging"]) != 1 || len(smp.loaded["production"]) != 0 {
		t.Errorf("loaded = %v, want staging [app], production none", smp.loaded)
	}
}

func TestFromStepsRejectsUnknownStep(t *testing.T) {
	smp := sample{phases: map[string]time.Duration{}}
	err := smp.fromSteps([]fleetenv.StepTiming{{Name: "warp drive", Took: s}}, nil)
	if err == nil || !strings.Contains(err.Error(), `"warp drive"`) {
		t.Fatalf("want an error naming the unknown step, got %v", err)
	}
}

// Every step the harness runs has a phase: a renamed or added step must
// fail here, not vanish from the table.
func TestEveryBringUpStepHasAPhase(t *testing.T) {
	for _, st := range fleetenv.BringUp(fleetenv.Options{}) {
		if _, ok := stepPhase[st.Name]; !ok {
			t.Errorf("step %q has no phase in stepPhase", st.Name)
		}
	}
}

func TestTouchFleet(t *testing.T) {
	fleet := t.TempDir()
	for path, body := range map[string]string{
		"clusters/staging/apps.yaml":          "kind: Kustomization\n",
		"apps/base/podinfo/release.yaml":      "kind: HelmRelease\n",
		"apps/base/podinfo/kustomization.yml": "resources: []\n",
		"apps/README.md":                      "not yaml\n",
	} {
		p := filepath.Join(fleet, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := touchFleet(fleet, 3)
	if err != nil {
		t.Fatal(err)
	}
	// WalkDir is lexical: kustomization.yml comes before release.yaml.
	if want := filepath.Join("apps", "base", "podinfo", "kustomization.yml"); got != want {
		t.Fatalf("edited %s, want %s", got, want)
	}
	data, err := os.ReadFile(filepath.Join(fleet, got))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "resources: []\n") || !strings.Contains(string(data), "\n# bench re-sync 3 at ") {
		t.Errorf("edited file = %q, want the original content and a re-sync comment", data)
	}
	if _, err := touchFleet(t.TempDir(), 1); err == nil || !strings.Contains(err.Error(), "no YAML file") {
		t.Errorf("empty fleet: want a no-YAML-file error, got %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		check   func(config) bool
	}{
		{nil, "", func(c config) bool {
			return c.runs == 5 && c.fleet == "fixtures/fleets/basic" && strings.Join(c.envs, ",") == "staging,production" && c.bare
		}},
		{[]string{"-n", "2", "-envs", "staging", "-bare=false"}, "", func(c config) bool {
			return c.runs == 2 && strings.Join(c.envs, ",") == "staging" && !c.bare
		}},
		{[]string{"-n", "0"}, "want at least 1 run", nil},
		{[]string{"-envs", " , "}, "-envs is empty", nil},
		{[]string{"extra"}, "unexpected arguments", nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("parseFlags(%q) = %+v, %v", tt.args, c, err)
			}
		})
	}
}

func TestReport(t *testing.T) {
	mk := func(w string, green time.Duration) sample {
		return sample{way: w, phases: map[string]time.Duration{phaseGreen: green}}
	}
	failed := mk("kind load", time.Hour)
	failed.err = io.ErrUnexpectedEOF
	samples := []sample{mk("preloaded", 30*s), mk("kind load", 90*s), mk("preloaded", 40*s), mk("kind load", 110*s), failed}
	samples[0].resyncs = []time.Duration{2 * s, 3 * s}
	got := report(samples, []way{{name: "preloaded"}, {name: "kind load"}})
	for _, want := range []string{
		"preloaded (n=2)", "kind load (n=2)", // the failed run is left out
		"green          30.0s  35.0s  40.0s     90.0s 100.0s 110.0s    2.9×",
		"re-sync         2.0s   2.5s   3.0s    (n=2",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestRunArtifactsDir(t *testing.T) {
	reports := filepath.Join("work", "bench-20260301-020000")
	tests := []struct {
		way  string
		n    int
		want string
	}{
		{"preloaded", 1, "preloaded-1"},
		{"kind load", 3, "kind-load-3"}, // no space in a path people paste
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got := runArtifactsDir(reports, way{name: tt.way}, tt.n)
		if want := filepath.Join(reports, tt.want); got != want {
			t.Errorf("runArtifactsDir(%s, %d) = %s, want %s", tt.way, tt.n, got, want)
		}
		if seen[got] {
			t.Errorf("two bring-ups share %s", got)
		}
		seen[got] = true
	}
}

func TestPrintReports(t *testing.T) {
	reports := t.TempDir()
	for _, d := range []string{"preloaded-1", "kind-load-1"} {
		if err := os.MkdirAll(filepath.Join(reports, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	printReports(&out, reports)
	want := "run reports, one per bring-up: " + reports + "\n" +
		"  " + filepath.Join(reports, "kind-load-1", "report.html") + "\n" +
		"  " + filepath.Join(reports, "preloaded-1", "report.html") + "\n"
	if out.String() != want {
		t.Errorf("printReports wrote\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	printReports(&out, filepath.Join(reports, "missing"))
	if !strings.HasPrefix(out.String(), "no run reports: ") {
		t.Errorf("a bench with no reports: %q", out.String())
	}
}
