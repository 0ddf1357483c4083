package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// NightVersion is the format version of a merged night (night.json).
const NightVersion = 1

// ShardPrefix starts the name of every artifact a CI job uploads for the
// merge; the rest of the name is the shard's name ("e2e-staging").
const ShardPrefix = "shard-"

// Night is one CI run spread over jobs (shards), merged: per shard the run
// verdict, per environment the verdict and time to green, the JUnit counts
// and the run records. It is what the merge job keeps of a green night to
// compare the next one against, so it holds no value a record may carry in
// the clear (see ReadShard).
type Night struct {
	Version int    `json:"version"`
	RunID   string `json:"runID,omitempty"`
	Commit  string `json:"commit,omitempty"`
	// Green: every job that ran succeeded and every shard is green with no
	// failed test.
	Green bool `json:"green"`
	// Jobs are the CI jobs' results by job id (success, failure, skipped,
	// cancelled), as the workflow's needs context reports them.
	Jobs   map[string]string `json:"jobs,omitempty"`
	Shards []Shard           `json:"shards"`
}

// Shard is one job's part of a night.
type Shard struct {
	Name string `json:"name"`
	// Error says why the shard's files could not be read; the shard then
	// counts as failed.
	Error        string      `json:"error,omitempty"`
	Run          *Run        `json:"run,omitempty"`
	Environments []ShardEnv  `json:"environments,omitempty"`
	Tests        TestResults `json:"tests"`
	// Records are the shard's run records by file name (record-<env>.json).
	Records map[string]*record.Record `json:"records,omitempty"`
}

// ShardEnv is one environment's outcome in a shard.
type ShardEnv struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	// Line is the report's verdict line (VerdictLine).
	Line string `json:"line"`
	// TimeToGreen is in seconds; zero when the environment never was green.
	TimeToGreen float64 `json:"timeToGreen,omitempty"`
}

// Green reports whether the shard was read, its run is green and no test
// failed.
func (s *Shard) Green() bool {
	return s.Error == "" && s.Run != nil && s.Run.Verdict == Green && s.Tests.Failed == 0
}

// ReadShards reads every shard under dirs: each directory's subdirectories
// named ShardPrefix+name (a downloaded artifact each), in name order. A
// shard whose files do not read is kept with its Error; a directory that
// does not list is an error.
func ReadShards(dirs ...string) ([]Shard, error) {
	var shards []Shard
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("listing the shards in %s: %w", dir, err)
		}
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), ShardPrefix) {
				continue
			}
			s, err := ReadShard(filepath.Join(dir, e.Name()))
			if err != nil {
				s.Error = err.Error()
			}
			shards = append(shards, s)
		}
	}
	slices.SortStableFunc(shards, func(a, b Shard) int { return strings.Compare(a.Name, b.Name) })
	return shards, nil
}

// ReadShard reads one shard directory: report.json, record-*.json and the
// JUnit files (*.xml). It returns what it read with the first error. Raw
// values in a record are replaced by their digests, so that a kept night
// carries none.
func ReadShard(dir string) (Shard, error) {
	s := Shard{Name: strings.TrimPrefix(filepath.Base(dir), ShardPrefix)}
	var errs []error
	r, err := Read(filepath.Join(dir, FileName))
	switch {
	case err == nil:
		s.Run = &r.Run
		s.Environments = shardEnvs(r)
	case errors.Is(err, fs.ErrNotExist):
		errs = append(errs, fmt.Errorf("shard %s: no %s: the job ended before its run wrote one", s.Name, FileName))
	default:
		errs = append(errs, fmt.Errorf("shard %s: %w", s.Name, err))
	}
	records, err := readRecords(dir)
	if err != nil {
		errs = append(errs, fmt.Errorf("shard %s: %w", s.Name, err))
	}
	s.Records = records
	s.Tests, err = readJUnitDir(dir)
	if err != nil {
		errs = append(errs, fmt.Errorf("shard %s: %w", s.Name, err))
	}
	return s, errors.Join(errs...)
}

func shardEnvs(r *Report) []ShardEnv {
	var envs []ShardEnv
	for i := range r.Environments {
		e := &r.Environments[i]
		se := ShardEnv{Name: e.Name, Verdict: e.Verdict, Line: r.VerdictLine(e)}
		if d, ok := r.TimeToGreen(e); ok {
			se.TimeToGreen = d.Seconds()
		}
		envs = append(envs, se)
	}
	return envs
}

func readRecords(dir string) (map[string]*record.Record, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "record-*.json"))
	if err != nil {
		return nil, fmt.Errorf("listing the records in %s: %w", dir, err)
	}
	records := map[string]*record.Record{}
	for _, p := range paths {
		rec, err := record.Read(p)
		if err != nil {
			return records, err
		}
		withoutRawValues(rec)
		records[filepath.Base(p)] = rec
	}
	return records, nil
}

// withoutRawValues turns a record made with raw values into one holding
// their digests, exactly as a record made without them would: the values
// may be secrets, and a merged night is kept in the CI cache.
func withoutRawValues(rec *record.Record) {
	if !rec.RawValues {
		return
	}
	digests := func(m map[string]string) {
		for k, v := range m {
			// A raw value is its canonical JSON, so its digest is the one
			// record.ValueDigest gives the decoded value.
			m[k] = record.ValueDigest(json.RawMessage(v))
		}
	}
	for i := range rec.Kustomizations {
		digests(rec.Kustomizations[i].Substitute)
	}
	for i := range rec.HelmReleases {
		digests(rec.HelmReleases[i].Values)
	}
	rec.RawValues = false
}

// Merge builds the night of the shards; jobs are the CI jobs' results (nil
// when unknown). A night without a shard is not green: nothing proved it.
func Merge(runID, commit string, jobs map[string]string, shards []Shard) *Night {
	n := &Night{Version: NightVersion, RunID: runID, Commit: commit, Jobs: jobs, Shards: shards, Green: len(shards) > 0}
	for i := range shards {
		n.Green = n.Green && shards[i].Green()
	}
	for _, result := range jobs {
		n.Green = n.Green && (result == "success" || result == "skipped")
	}
	return n
}

// WriteNight writes n as indented JSON to path, 0600 like the artifacts.
func WriteNight(path string, n *Night) error {
	data, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the night %s: %w", path, err)
	}
	return privatefile.Write(path, append(data, '\n'))
}

// ReadNight reads a night written by WriteNight.
func ReadNight(path string) (*Night, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the night: %w", err)
	}
	var n Night
	if err := json.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("night %s: not a merged night: %w", path, err)
	}
	if n.Version != NightVersion {
		return nil, fmt.Errorf("night %s: version %d, this harness reads version %d", path, n.Version, NightVersion)
	}
	if err := checkNightFields(data); err != nil {
		return nil, fmt.Errorf("night %s: %w", path, err)
	}
	return &n, nil
}

// nightFields are the fields WriteNight always writes: a run report, also
// version 1, has neither and would compare as a night of no shard.
var nightFields = []string{"green", "shards"}

// checkNightFields says which of nightFields data, a JSON object, lacks.
func checkNightFields(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("not a merged night: %w", err)
	}
	var missing []string
	for _, f := range nightFields {
		if _, ok := fields[f]; !ok {
			missing = append(missing, "no "+f)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	msg := strings.Join(missing, ", ")
	if _, ok := fields["run"]; ok {
		msg += " (it is a run report, not a merged night)"
	}
	return errors.New(msg)
}

// ShardChanges is what changed in one shard between two nights.
type ShardChanges struct {
	Shard string
	// Lines: the revision and Flux version when they changed, then per
	// record the diff (ChangeLines), every value withheld.
	Lines []string
}

// Compare lists, per shard of tonight also in last, what changed since
// last: the fleet revision served, the Flux version and the record diffs.
func Compare(last, tonight *Night) []ShardChanges {
	var out []ShardChanges
	for i := range tonight.Shards {
		s := &tonight.Shards[i]
		j := slices.IndexFunc(last.Shards, func(o Shard) bool { return o.Name == s.Name })
		if j < 0 {
			out = append(out, ShardChanges{Shard: s.Name, Lines: []string{"not in the last green night"}})
			continue
		}
		if lines := shardChangeLines(&last.Shards[j], s); len(lines) > 0 {
			out = append(out, ShardChanges{Shard: s.Name, Lines: lines})
		}
	}
	return out
}

func shardChangeLines(last, tonight *Shard) []string {
	var lines []string
	if last.Run != nil && tonight.Run != nil {
		if last.Run.Revision != tonight.Run.Revision {
			lines = append(lines, "revision: "+last.Run.Revision+" → "+tonight.Run.Revision)
		}
		if last.Run.FluxVersion != tonight.Run.FluxVersion {
			lines = append(lines, "Flux: "+last.Run.FluxVersion+" → "+tonight.Run.FluxVersion)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tonight.Records)) {
		before, ok := last.Records[name]
		if !ok {
			lines = append(lines, name+": not in the last green night")
			continue
		}
		c := record.Diff(before, tonight.Records[name])
		if c.Empty() && c.From == c.To {
			continue
		}
		for _, l := range ChangeLines(c) {
			lines = append(lines, name+": "+l)
		}
	}
	return lines
}
