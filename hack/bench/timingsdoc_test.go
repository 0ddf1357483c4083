package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMemTotal(t *testing.T) {
	got, err := memTotal("MemFree:  100 kB\nMemTotal:       24576000 kB\nSwapTotal: 0 kB\n")
	if err != nil || got != 24576000<<10 {
		t.Errorf("memTotal = %d, %v; want %d", got, err, uint64(24576000)<<10)
	}
	for _, bad := range []string{"", "MemTotal: 12 MB\n", "MemTotal: x kB\n"} {
		if got, err := memTotal(bad); err == nil {
			t.Errorf("memTotal(%q) = %d, want an error", bad, got)
		}
	}
}

func TestMachineString(t *testing.T) {
	if got, want := (machine{cores: 2, memBytes: 24 << 30}).String(), "2 cores, 24.0 GiB memory"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := (machine{cores: 8}).String(), "8 cores, memory unknown"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestBenchCommand(t *testing.T) {
	root := filepath.Join(string(filepath.Separator), "repo")
	cases := []struct {
		cfg  config
		want string
	}{
		{config{runs: 5, fleet: "fixtures/fleets/basic", envs: []string{"staging", "production"}, bare: true},
			"go run ./hack/bench -n 5 -fleet fixtures/fleets/basic -envs staging,production"},
		{config{runs: 3, fleet: filepath.Join(root, "fixtures", "fleets", "helm"), envs: []string{"staging"}},
			"go run ./hack/bench -n 3 -fleet fixtures/fleets/helm -envs staging -bare=false"},
	}
	for _, tc := range cases {
		if got := benchCommand(tc.cfg, root); got != tc.want {
			t.Errorf("benchCommand(%+v) = %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# Timings\n\nby hand\n" + benchSectionBegin + "\nold figures\nmore\n" + benchSectionEnd + "\n\nafter\n"
	want := "# Timings\n\nby hand\n" + benchSectionBegin + "\nnew figures\n" + benchSectionEnd + "\n\nafter\n"
	got, err := replaceSection(doc, "new figures\n")
	if err != nil || got != want {
		t.Fatalf("replaceSection = %q, %v; want %q", got, err, want)
	}
	if again, err := replaceSection(got, "new figures"); err != nil || again != want {
		t.Errorf("a second write changed the document: %q, %v", again, err)
	}
	for name, bad := range map[string]string{
		"no markers":     "# Timings\n",
		"no end":         benchSectionBegin + "\nx\n",
		"end first":      benchSectionEnd + "\nx\n" + benchSectionBegin + "\n",
		"begin twice":    benchSectionBegin + "\n" + benchSectionBegin + "\n" + benchSectionEnd + "\n",
		"marker in text": "see " + benchSectionBegin + " and " + benchSectionEnd + "\n",
	} {
		if got, err := replaceSection(bad, "x"); err == nil {
			t.Errorf("%s: replaceSection = %q, want an error", name, got)
		}
	}
}

// benchSamples are two runs per way, one failed run (left out) and three
// re-syncs.
func benchSamples() ([]sample, []way) {
	mk := func(w string, create, green time.Duration) sample {
		p := map[string]time.Duration{}
		for _, phase := range phaseOrder {
			p[phase] = time.Second
		}
		p[phaseCreate], p[phaseGreen] = create, green
		return sample{way: w, phases: p}
	}
	failed := mk("kind load", time.Hour, time.Hour)
	failed.err = errors.New("timed out")
	samples := []sample{
		mk("preloaded", 12*time.Second, 30*time.Second), mk("kind load", 12*time.Second, 45*time.Second),
		mk("preloaded", 14*time.Second, 40*time.Second), mk("kind load", 14*time.Second, 55*time.Second), failed,
	}
	samples[0].resyncs = []time.Duration{1700 * time.Millisecond, 1900 * time.Millisecond, 2 * time.Second}
	return samples, []way{{name: "preloaded"}, {name: "kind load"}}
}

func TestTimingsSection(t *testing.T) {
	samples, ways := benchSamples()
	got := timingsSection(benchRecord{
		date:    time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
		command: "go run ./hack/bench -n 2 -fleet fixtures/fleets/basic -envs staging,production",
		machine: machine{cores: 2, memBytes: 24 << 30},
		samples: samples,
		ways:    ways,
	})
	want := "Written by `make bench` on 2026-12-06: `go run ./hack/bench -n 2 -fleet fixtures/fleets/basic -envs staging,production`, 2 cores, 24.0 GiB memory." +
		" Successful runs only; ↳ marks a phase that runs inside the one above it and does not add to green.\n\n" +
		"| Phase | preloaded (n=2): median (min–max) | kind load (n=2): median (min–max) | kind load / preloaded (medians) |\n" +
		"|---|---:|---:|---:|\n" +
		"| prepare | 1.0 s (1.0–1.0) | 1.0 s (1.0–1.0) | 1.0× |\n" +
		"| create | 13.0 s (12.0–14.0) | 13.0 s (12.0–14.0) | 1.0× |\n" +
		"| flux install | 1.0 s (1.0–1.0) | 1.0 s (1.0–1.0) | 1.0× |\n" +
		"| ↳ Service net | 1.0 s (1.0–1.0) | 1.0 s (1.0–1.0) | 1.0× |\n" +
		"| ↳ images | 1.0 s (1.0–1.0) | 1.0 s (1.0–1.0) | 1.0× |\n" +
		"| sync | 1.0 s (1.0–1.0) | 1.0 s (1.0–1.0) | 1.0× |\n" +
		"| ready | 1.0 s (1.0–1.0) | 1.0 s (1.0–1.0) | 1.0× |\n" +
		"| green | 35.0 s (30.0–40.0) | 50.0 s (45.0–55.0) | 1.4× |\n" +
		"| checks | 1.0 s (1.0–1.0) | 1.0 s (1.0–1.0) | 1.0× |\n" +
		"| delete | 1.0 s (1.0–1.0) | 1.0 s (1.0–1.0) | 1.0× |\n" +
		"\nRe-sync of an edited fleet on kept clusters, every environment (n=3): 1.9 s (1.7–2.0).\n"
	if got != want {
		t.Errorf("timingsSection:\n%s\nwant:\n%s", got, want)
	}
}

func TestTimingsSectionOneWay(t *testing.T) {
	samples, _ := benchSamples()
	got := timingsSection(benchRecord{samples: samples[:1], ways: []way{{name: "preloaded"}}, machine: machine{cores: 1}})
	for _, want := range []string{"| Phase | preloaded (n=1): median (min–max) |\n|---|---:|\n", "| green | 30.0 s (30.0–30.0) |\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "(medians)") {
		t.Errorf("one way has no ratio column:\n%s", got)
	}
}

func TestUpdateTimingsDoc(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "docs", "timings.md")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	before, after := "# Timings\n\nfrom make test\n\n"+benchSectionBegin+"\n", benchSectionEnd+"\n\nfrom hack/kit\n"
	if err := os.WriteFile(path, []byte(before+"last figures\n"+after), 0o644); err != nil {
		t.Fatal(err)
	}
	samples, ways := benchSamples()
	cfg := config{runs: 2, fleet: filepath.Join(dir, "fixtures", "fleets", "basic"), envs: []string{"staging"}, bare: true}
	var out bytes.Buffer
	if err := updateTimingsDoc(&out, path, cfg, samples, ways); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	if !strings.HasPrefix(got, before) || !strings.HasSuffix(got, after) {
		t.Errorf("the text outside the markers changed:\n%s", got)
	}
	for _, want := range []string{"`go run ./hack/bench -n 2 -fleet fixtures/fleets/basic -envs staging`", "| green | 35.0 s (30.0–40.0) |"} {
		if !strings.Contains(got, want) {
			t.Errorf("document lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "last figures") {
		t.Errorf("the previous figures are still there:\n%s", got)
	}
	if want := "bench: figures written to " + path + "\n"; out.String() != want {
		t.Errorf("out = %q, want %q", out.String(), want)
	}
	if err := updateTimingsDoc(&out, filepath.Join(dir, "missing.md"), cfg, samples, ways); err == nil {
		t.Error("a missing document is not an error")
	}
}

// TestTheTimingsDocTakesTheSection: the document the bench writes has its
// markers, so a bench's figures are not lost at the end of an hour's run.
func TestTheTimingsDocTakesTheSection(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(timingsDocPath)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replaceSection(string(doc), "figures\n"); err != nil {
		t.Errorf("%s: %v", timingsDocPath, err)
	}
}
