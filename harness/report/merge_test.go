package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/record"
)

// junitPassed and junitFailed are JUnit files as go-junit-report writes
// them from go test -v output.
const (
	junitPassed = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="0">
	<testsuite name="github.com/flux-fleet/flux-fleet/e2e" tests="3" failures="0" errors="0" skipped="1">
		<testcase name="TestFleet" classname="github.com/flux-fleet/flux-fleet/e2e" time="90.1"></testcase>
		<testcase name="TestFleet/staging" classname="github.com/flux-fleet/flux-fleet/e2e" time="90.0"></testcase>
		<testcase name="TestResync" classname="github.com/flux-fleet/flux-fleet/e2e" time="0.0"><skipped message="no kept cluster"></skipped></testcase>
	</testsuite>
</testsuites>
`
	junitFailed = `<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="github.com/flux-fleet/flux-fleet/e2e" tests="2" failures="1">
	<testcase name="TestFleet/production/podinfo-serves" classname="github.com/flux-fleet/flux-fleet/e2e" time="30.0"><failure message="Failed">GET /: 503 password=hunter2</failure></testcase>
	<testcase name="TestFleet/staging/podinfo-serves" classname="github.com/flux-fleet/flux-fleet/e2e" time="1.2"></testcase>
</testsuite>
`
)

// writeShard writes a shard directory as a nightly job's artifact holds
// it: the run report, the records and a JUnit file.
func writeShard(t *testing.T, parent, name string, r *Report, junit string, records ...*record.Record) {
	t.Helper()
	dir := filepath.Join(parent, ShardPrefix+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if r != nil {
		if err := Write(filepath.Join(dir, FileName), r); err != nil {
			t.Fatal(err)
		}
	}
	for _, rec := range records {
		if err := record.Write(filepath.Join(dir, record.FileName(rec.Env, "")), rec); err != nil {
			t.Fatal(err)
		}
	}
	if junit != "" {
		if err := os.WriteFile(filepath.Join(dir, "junit.xml"), []byte(junit), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// nightRecord is fleetRecord with the revision served and podinfo's chart.
func nightRecord(env, served, podinfoVersion string) *record.Record {
	rec := fleetRecord(env)
	rec.Fleet = record.Fleet{Served: served, Path: "fleet"}
	rec.HelmReleases = []record.HelmRelease{{Ref: "HelmRelease/podinfo/podinfo", Chart: "podinfo", Version: podinfoVersion,
		Release: 1, Status: "deployed", Values: map[string]string{"replicaCount": record.ValueDigest(2)}}}
	return rec
}

func renderNight(t *testing.T, n, last *Night) string {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderNightMarkdown(&buf, n, last); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestMergeSummarizesShards(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, dir, "e2e-staging", greenReport(), junitPassed, nightRecord("staging", "1a2b3c4d5e6f", "6.9.2"))
	writeShard(t, dir, "flux-upgrade-production", failedReport(), junitFailed)
	writeShard(t, dir, "upgrade-staging", nil, "") // the job died before its run wrote anything
	if err := os.Mkdir(filepath.Join(dir, "e2e-artifacts-staging"), 0o700); err != nil {
		t.Fatal(err) // diagnostics: not a shard, must be ignored
	}
	shards, err := ReadShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := Merge("4242", "1a2b3c4", map[string]string{"e2e": "success", "flux-upgrade": "failure", "existing-cluster": "skipped"}, shards)
	if n.Green {
		t.Error("night with a failed shard is green")
	}
	var names []string
	for _, s := range shards {
		names = append(names, s.Name)
	}
	if got := names; !slices.Equal(got, []string{"e2e-staging", "flux-upgrade-production", "upgrade-staging"}) {
		t.Errorf("shards %v", got)
	}
	md := renderNight(t, n, nil)
	for _, want := range []string{
		"### Nightly run 4242: not green\n",
		"| e2e-staging | staging | pass | 2m30s | 2 passed, 1 skipped |\n",
		"| e2e-staging | production | pass | 2m30s | 2 passed, 1 skipped |\n",
		"| flux-upgrade-production | staging | pass | 2m30s | 1 failed of 2 |\n",
		"| flux-upgrade-production | production | fail: not ready: HelmRelease/podinfo/podinfo failed: InstallFailed |  | 1 failed of 2 |\n",
		"| upgrade-staging | | failed: shard upgrade-staging: no report.json: the job ended before its run wrote one | | no JUnit |\n",
		"**Jobs not successful**: flux-upgrade: failure\n",
		"- flux-upgrade-production: github.com/flux-fleet/flux-fleet/e2e TestFleet/production/podinfo-serves\n",
		"No earlier green night is known: nothing to compare.\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "e2e-artifacts") {
		t.Errorf("a non-shard directory was merged:\n%s", md)
	}
}

func TestMergeGreenOnlyWhenEverythingIs(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, dir, "e2e-staging", greenReport(), junitPassed)
	shards, err := ReadShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		jobs   map[string]string
		shards []Shard
		want   bool
	}{
		{"all green", map[string]string{"e2e": "success", "existing-cluster": "skipped"}, shards, true},
		{"a job cancelled", map[string]string{"e2e": "success", "upgrade": "cancelled"}, shards, false},
		{"no shard", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Merge("1", "c", tc.jobs, tc.shards).Green; got != tc.want {
				t.Errorf("Green = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompareSinceLastGreenNight(t *testing.T) {
	lastDir, nowDir := t.TempDir(), t.TempDir()
	writeShard(t, lastDir, "e2e-staging", greenReport(), junitPassed, nightRecord("staging", "aaaaaaaaaaaa", "6.9.1"))
	writeShard(t, lastDir, "e2e-production", greenReport(), junitPassed, nightRecord("production", "aaaaaaaaaaaa", "6.9.2"))
	tonight := greenReport()
	tonight.Run.FluxVersion = "v2.10.0"
	writeShard(t, nowDir, "e2e-staging", tonight, junitPassed, nightRecord("staging", "bbbbbbbbbbbb", "6.9.2"))
	writeShard(t, nowDir, "e2e-production", greenReport(), junitPassed, nightRecord("production", "aaaaaaaaaaaa", "6.9.2"))
	writeShard(t, nowDir, "cluster-edge", greenReport(), junitPassed)

	night := func(dir, id string) *Night {
		shards, err := ReadShards(dir)
		if err != nil {
			t.Fatal(err)
		}
		return Merge(id, "c-"+id, nil, shards)
	}
	// The last green night goes through the cache as night.json.
	path := filepath.Join(t.TempDir(), "night.json")
	if err := WriteNight(path, night(lastDir, "41")); err != nil {
		t.Fatal(err)
	}
	last, err := ReadNight(path)
	if err != nil {
		t.Fatal(err)
	}
	got := Compare(last, night(nowDir, "42"))
	want := []ShardChanges{
		{Shard: "cluster-edge", Lines: []string{"not in the last green night"}},
		{Shard: "e2e-staging", Lines: []string{
			"Flux: v2.9.5 → v2.10.0",
			"record-staging.json: fleet: " + describeFleet(last.Shards[1].Records["record-staging.json"].Fleet) + " → " +
				describeFleet(record.Fleet{Served: "bbbbbbbbbbbb", Path: "fleet"}),
			"record-staging.json: HelmRelease/podinfo/podinfo: " + describeRelease(record.ReleaseChange{
				From: &record.HelmRelease{Chart: "podinfo", Version: "6.9.1", Release: 1, Status: "deployed"},
				To:   &record.HelmRelease{Chart: "podinfo", Version: "6.9.2", Release: 1, Status: "deployed"}}),
			"record-staging.json: 3 more Kustomizations and HelmReleases unchanged",
		}},
	}
	if !equalChanges(got, want) {
		t.Errorf("Compare:\n got %q\nwant %q", got, want)
	}
	md := renderNight(t, night(nowDir, "42"), last)
	if !strings.Contains(md, "**Since the last green night** (run 41, commit c-41)\n\n```text\ncluster-edge: not in the last green night\ne2e-staging: Flux: v2.9.5 → v2.10.0\n") {
		t.Errorf("summary lacks the changes:\n%s", md)
	}
}

func equalChanges(a, b []ShardChanges) bool {
	return slices.EqualFunc(a, b, func(x, y ShardChanges) bool { return x.Shard == y.Shard && slices.Equal(x.Lines, y.Lines) })
}

// TestMergeKeepsNoSecret plants a secret in a record made with raw values
// and in a failed test's message: neither the summary nor the night kept in
// the CI cache may carry it, and the raw record compares with a digest one
// by key only.
func TestMergeKeepsNoSecret(t *testing.T) {
	const secret = "hunter2"
	raw := nightRecord("production", "aaaaaaaaaaaa", "6.9.2")
	raw.RawValues = true
	raw.HelmReleases[0].Values = map[string]string{"replicaCount": "2", "auth.password": `"` + secret + `"`}
	lastRec := nightRecord("production", "aaaaaaaaaaaa", "6.9.2")
	lastRec.HelmReleases[0].Values["auth.password"] = record.ValueDigest("older")

	dir, lastDir := t.TempDir(), t.TempDir()
	writeShard(t, dir, "e2e-production", failedReport(), junitFailed, raw)
	writeShard(t, lastDir, "e2e-production", greenReport(), junitPassed, lastRec)
	shards, err := ReadShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	lastShards, err := ReadShards(lastDir)
	if err != nil {
		t.Fatal(err)
	}
	n, last := Merge("2", "c", nil, shards), Merge("1", "c", nil, lastShards)
	path := filepath.Join(t.TempDir(), "night.json")
	if err := WriteNight(path, n); err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	md := renderNight(t, n, last)
	for name, text := range map[string]string{"night.json": string(kept), "summary": md} {
		if strings.Contains(text, secret) {
			t.Errorf("%s carries the planted secret:\n%s", name, text)
		}
	}
	if got := n.Shards[0].Records["record-production.json"].HelmReleases[0].Values["replicaCount"]; got != record.ValueDigest(2) {
		t.Errorf("raw value 2 kept as %q, want its digest %q", got, record.ValueDigest(2))
	}
	// replicaCount is 2 on both nights: raw tonight, a digest last night.
	if !strings.Contains(md, "e2e-production: record-production.json:   ~ values auth.password changed\n") || strings.Contains(md, "replicaCount") {
		t.Errorf("want exactly auth.password named as changed, by key:\n%s", md)
	}
	var decoded Night
	if err := json.Unmarshal(kept, &decoded); err != nil || decoded.Shards[0].Records["record-production.json"].RawValues {
		t.Errorf("kept night still marked raw (err %v)", err)
	}
}

func TestShardErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, dir, "e2e-staging", greenReport(), "<html>not junit</html>")
	writeShard(t, dir, "e2e-production", greenReport(), "<testsuites><testsuite")
	shards, err := ReadShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"shard e2e-production: JUnit report " + filepath.Join(dir, "shard-e2e-production", "junit.xml") + ": not JUnit XML",
		"shard e2e-staging: JUnit report " + filepath.Join(dir, "shard-e2e-staging", "junit.xml") + ": root element <html>, want <testsuites> or <testsuite>",
	} {
		if !strings.HasPrefix(shards[i].Error, want) {
			t.Errorf("shard %s error %q, want prefix %q", shards[i].Name, shards[i].Error, want)
		}
		if shards[i].Green() {
			t.Errorf("shard %s with an unreadable JUnit file counts as green", shards[i].Name)
		}
	}
	missing := filepath.Join(dir, "nope")
	if _, err := ReadShards(missing); err == nil || !strings.HasPrefix(err.Error(), "listing the shards in "+missing+": ") {
		t.Errorf("ReadShards of a missing directory: %v", err)
	}
}

func TestReadNightRefusesOtherVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "night.json")
	if err := os.WriteFile(path, []byte(`{"version": 7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadNight(path)
	if want := "night " + path + ": version 7, this harness reads version 1"; err == nil || err.Error() != want {
		t.Errorf("ReadNight: %v, want %s", err, want)
	}
}

// TestReadNightRefusesARunReport: a run report is version 1 too, and was
// compared as a night of no shard, "run , commit ".
func TestReadNightRefusesARunReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := Write(path, greenReport()); err != nil {
		t.Fatal(err)
	}
	_, err := ReadNight(path)
	if want := "night " + path + ": no green, no shards (it is a run report, not a merged night)"; err == nil || err.Error() != want {
		t.Errorf("ReadNight: %v, want %s", err, want)
	}
}
