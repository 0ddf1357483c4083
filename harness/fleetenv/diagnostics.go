package fleetenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/diagnose"
	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// diagnoseTimeout bounds the diagnostics of one environment.
const diagnoseTimeout = 2 * time.Minute

// diagnostics prints a failed environment's one-screen summary and writes
// its artifacts, once per environment until its fleet is cleared.
type diagnostics struct {
	opts    Options
	log     logger
	out     io.Writer
	state   *runState
	started time.Time
	done    sync.Map // env name → struct{}
}

// once diagnoses env unless that was done already. After an interrupt it
// does nothing (the clusters go first), and near the test deadline it gets
// only the time that leaves the teardown its share.
func (d *diagnostics) once(ctx context.Context, env string) {
	if Interrupted(ctx) {
		d.log.printf("%-11s diagnostics skipped: %v; deleting the clusters first", env, context.Cause(ctx))
		return
	}
	if _, done := d.done.LoadOrStore(env, struct{}{}); done {
		return
	}
	e := d.state.env(env)
	if e == nil || e.Clients == nil {
		return
	}
	ctx, cancel, ok := diagnosticsContext(ctx, teardownBy(d.opts.Deadline, d.started))
	defer cancel()
	if !ok {
		d.log.printf("%-11s diagnostics skipped: the test deadline is near and the teardown needs the time left", env)
		return
	}
	summary := d.summarize(ctx, e)
	d.state.recordSummary(env, summary)
	fmt.Fprintf(d.out, "\n==================== %s: diagnostics ====================\n%s\n\n", env, summary)
}

// summarize is e's summary screen, with where its artifacts went and what
// could not be collected.
func (d *diagnostics) summarize(ctx context.Context, e *Environment) string {
	summary, err := diagnose.SummarizeWith(ctx, e.Name, e.Config(), diagnose.Options{RawValues: d.opts.RawValues})
	if err != nil {
		summary += fmt.Sprintf("\n(summary incomplete: %v)", err)
	}
	dir := filepath.Join(d.opts.ArtifactsDir, time.Now().Format("20060102-150405"))
	if err := makePrivateDirs(dir, filepath.Join(dir, e.Name)); err != nil {
		summary += fmt.Sprintf("\n(artifacts not written: %v)", err)
	}
	if err := diagnose.CollectArtifactsWith(ctx, e.Name, e.Config(), dir, diagnose.Options{RawValues: d.opts.RawValues}); err != nil {
		summary += fmt.Sprintf("\n(artifacts incomplete: %v)", err)
	}
	// The nodes' environment (proxy credentials) and the fleet's values
	// (the controllers' logs in the nodes' /var/log quote them) are redacted
	// before the logs reach the artifacts; logs that cannot be redacted are
	// not kept.
	kindLogs := filepath.Join(dir, e.Name, "kind-logs")
	if values, err := d.valuesToScrub(ctx, e); err != nil {
		summary += fmt.Sprintf("\n(kind node logs not exported: %v; E2E_ARTIFACTS_RAW_VALUES=true keeps them unscrubbed)", err)
	} else if err := e.Cluster.ExportRedactedLogs(ctx, kindLogs, func(dir string) error { return diagnose.RedactKindLogs(dir, values) }); err != nil {
		summary += fmt.Sprintf("\n(kind node logs not exported, or withheld: %v)", err)
	}
	return summary + fmt.Sprintf("\nartifacts: %s\nkubeconfig: %s", filepath.Join(dir, e.Name), e.Cluster.KubeconfigPath)
}

// valuesToScrub are the Scrubbers of e's Flux objects, nil with raw values;
// values that cannot be read are an error, since the logs would then keep
// them.
func (d *diagnostics) valuesToScrub(ctx context.Context, e *Environment) (*record.Scrubbers, error) {
	if d.opts.RawValues {
		return nil, nil
	}
	return record.ReadScrubbers(ctx, e.Clients)
}

// makePrivateDirs creates each of dirs (and their parents) 0700, and makes
// each 0700 if it existed: artifacts are for their owner until uploaded.
func makePrivateDirs(dirs ...string) error {
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, privatefile.DirMode); err != nil {
			return fmt.Errorf("creating directory %s: %w", dir, err)
		}
		if err := os.Chmod(dir, privatefile.DirMode); err != nil {
			return fmt.Errorf("making directory %s private: %w", dir, err)
		}
	}
	return nil
}

// all diagnoses every environment not diagnosed yet.
func (d *diagnostics) all(ctx context.Context) {
	for _, env := range d.opts.Envs {
		d.once(ctx, env)
	}
}

// forget lets env be diagnosed again, for a fleet that replaced the one
// that failed.
func (d *diagnostics) forget(env string) { d.done.Delete(env) }
