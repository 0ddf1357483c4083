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
	summary, err := diagnose.Summarize(ctx, e.Name, e.Config())
	if err != nil {
		summary += fmt.Sprintf("\n(summary incomplete: %v)", err)
	}
	dir := filepath.Join(d.opts.ArtifactsDir, time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(d.opts.ArtifactsDir, 0o700); err != nil {
		summary += fmt.Sprintf("\n(artifacts not written: %v)", err)
	}
	if err := diagnose.CollectArtifactsWith(ctx, e.Name, e.Config(), dir, diagnose.Options{RawValues: d.opts.RawValues}); err != nil {
		summary += fmt.Sprintf("\n(artifacts incomplete: %v)", err)
	}
	kindLogs := filepath.Join(dir, e.Name, "kind-logs")
	if err := e.Cluster.ExportLogs(ctx, kindLogs); err != nil {
		summary += fmt.Sprintf("\n(kind node logs not exported: %v)", err)
	}
	// Even after a failed export: whatever kind wrote may carry the nodes'
	// environment (proxy credentials).
	if err := diagnose.RedactKindLogs(ctx, kindLogs); err != nil {
		summary += fmt.Sprintf("\n(kind node logs withheld in part: %v)", err)
	}
	return summary + fmt.Sprintf("\nartifacts: %s\nkubeconfig: %s", filepath.Join(dir, e.Name), e.Cluster.KubeconfigPath)
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
