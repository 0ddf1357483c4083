package fleetenv

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// recordTimeout bounds reading what an environment runs.
const recordTimeout = 30 * time.Second

// recorder writes the records of what each environment runs into the
// artifacts directory, for the upgrade's "what changed" and for people.
type recorder struct {
	opts  Options
	log   logger
	state *runState
}

// fleetRecord says what git serves now.
func fleetRecord(git *gitserver.Server) record.Fleet {
	o := git.Origin()
	return record.Fleet{Served: git.Revision(), Commit: o.Commit, Ref: o.Ref, WorkingTree: o.WorkingTree, Path: o.Path}
}

// path is where env's latest record is written.
func (rc *recorder) path(env string) string {
	return filepath.Join(rc.opts.ArtifactsDir, record.FileName(env, ""))
}

// write records what e runs after a readiness wait (record-<env>.json). A
// record that cannot be written is reported, never a failure of the run.
func (rc *recorder) write(ctx context.Context, e *Environment) {
	git := rc.state.gitServer()
	if ctx.Err() != nil || git == nil {
		return
	}
	rec, scrub, err := rc.collectScrubbed(ctx, e, git)
	if err != nil {
		rc.log.printf("%-11s record incomplete: %v", e.Name, err)
	}
	rc.state.report.SetScrubbers(e.Name, scrub)
	rc.state.report.SetDependencies(e.Name, rec)
	if err := record.Write(rc.path(e.Name), rec); err != nil {
		rc.log.printf("%-11s %v", e.Name, err)
		return
	}
	rc.log.printf("%-11s record of what runs: %s", e.Name, rc.path(e.Name))
}

// current is the record of the revision served now: the one the last wait
// wrote, or a new one when that is missing or older.
func (rc *recorder) current(ctx context.Context, e *Environment) (*record.Record, error) {
	git := rc.state.gitServer()
	if rec, err := record.Read(rc.path(e.Name)); err == nil && rec.Fleet.Served == git.Revision() {
		return rec, nil
	}
	return rc.collect(ctx, e, git)
}

// collect is collectScrubbed without the scrubbers.
func (rc *recorder) collect(ctx context.Context, e *Environment, git *gitserver.Server) (*record.Record, error) {
	rec, _, err := rc.collectScrubbed(ctx, e, git)
	return rec, err
}

// collectScrubbed reads what e runs now, with the outcome of its last wait
// (its messages already scrubbed by the wait, readiness.Options.RawValues),
// and the scrubbers of its values for the run report (nil with raw values):
// Helm's errors quote values. On an error the record holds what could be
// read.
func (rc *recorder) collectScrubbed(ctx context.Context, e *Environment, git *gitserver.Server) (*record.Record, *record.Scrubbers, error) {
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	rec, err := record.CollectWith(ctx, e.Clients, e.Name, fleetRecord(git), record.Options{RawValues: rc.opts.RawValues})
	var scrub *record.Scrubbers
	if !rc.opts.RawValues {
		var serr error
		scrub, serr = record.ReadScrubbers(ctx, e.Clients)
		err = errors.Join(err, serr)
	}
	rec.Outcome = "Ready"
	if ready := rc.state.outcome(e.Name).err; ready != nil {
		rec.Outcome = ready.Error()
	}
	return rec, scrub, err
}
