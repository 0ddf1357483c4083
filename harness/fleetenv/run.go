package fleetenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/report"
)

// Environment is one brought-up environment as the checks see it. The run
// fills it from what its steps return (runState), never the steps.
type Environment struct {
	Name    string
	Cluster *cluster.Cluster
	Clients *fluxobj.Clients
	// FluxInstall is how the Flux install went (its phases' timings).
	FluxInstall *fluxinstall.Result
	// Ready is the outcome of the readiness wait: nil when everything the
	// fleet defines became Ready, else why not (often a *readiness.FailureError).
	Ready  error
	Report *readiness.Report
	// Summary is the diagnostics screen, filled when the environment failed.
	Summary string
}

// Config is the environment's REST config.
func (e *Environment) Config() *rest.Config { return e.Clients.Config }

// Run is one bring-up: its steps return results that it records, the checks
// read them, Down tears down what it created.
type Run struct {
	opts    Options
	out     io.Writer
	log     logger
	guard   *cluster.Guard
	started time.Time

	state   *runState
	work    *workspace
	diag    *diagnostics
	records *recorder
	failed  atomic.Bool
	// checkStarts: test name → when it started, for the run report.
	checkStarts sync.Map
	// publisher republishes and clears the fleet on the run's clusters.
	publisher *Publisher
}

// New prepares a run; nothing is created until its steps run.
func New(opts Options, out io.Writer) *Run {
	if out == nil {
		out = os.Stdout
	}
	log := logger{out: out}
	started := time.Now()
	state := newRunState(reportRun(opts, started))
	r := &Run{
		opts: opts, out: out, log: log, started: started, state: state,
		guard: cluster.NewGuard(opts.Keep, out),
		work:  &workspace{opts: opts, log: log},
	}
	r.records = &recorder{opts: opts, log: log, state: state}
	r.diag = &diagnostics{opts: opts, log: log, out: out, state: state, started: r.started}
	r.publisher = &Publisher{run: r}
	return r
}

type runKey struct{}

// WithRun returns ctx carrying r, for the checks that receive only a context.
func WithRun(ctx context.Context, r *Run) context.Context { return context.WithValue(ctx, runKey{}, r) }

// From returns the Run a context carries (set by Run.Step), or nil.
func From(ctx context.Context) *Run {
	r, _ := ctx.Value(runKey{}).(*Run)
	return r
}

// Options returns the run's options.
func (r *Run) Options() Options { return r.opts }

// Env returns a brought-up environment, or nil.
func (r *Run) Env(name string) *Environment { return r.state.env(name) }

// Git returns the git server serving the fleet.
func (r *Run) Git() *gitserver.Server { return r.state.gitServer() }

// Publisher returns what republishes or clears the fleet on the run's
// clusters once they are up.
func (r *Run) Publisher() *Publisher { return r.publisher }

// Report returns the run report so far, as Down would write it now: a
// test can look at the report of one fleet on a kept cluster.
func (r *Run) Report() *report.Report { return r.state.report.Report(time.Now()) }

// MarkFailed records that a check failed, for the keep-on-failure policy.
func (r *Run) MarkFailed() { r.failed.Store(true) }

// logger writes the run's progress lines, each with the time in front.
type logger struct{ out io.Writer }

func (l logger) printf(format string, args ...any) {
	fmt.Fprintf(l.out, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

// reportRun is the run report's heading: what this run serves, and from when.
func reportRun(opts Options, started time.Time) report.Run {
	revision := opts.Revision
	if revision == "" {
		revision = "working tree"
	}
	return report.Run{
		ID:       fmt.Sprintf("%s-%d", started.UTC().Format("20060102-150405"), os.Getpid()),
		Started:  started,
		Fleet:    relativeTo(opts.Root, opts.FleetDir),
		Revision: revision,
		Base:     opts.Base,
	}
}

// relativeTo is p relative to root when p lies below it, else p.
func relativeTo(root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return p
}
