// Package fleetenv brings a fleet's environments up on kind and tears them
// down: the harness's steps (offline checks → chart server → pre-flight →
// clusters → git server → Flux install → sync → wait) in order, each a
// named step with its own timing line, composed as e2e-framework env.Funcs;
// diagnostics on failure; cleanup by the keep policy.
package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/diagnose"
	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
)

// Environment is one brought-up environment as the checks see it.
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

// Run is one bring-up: its steps fill it, the checks read it, Down tears
// down what it created.
type Run struct {
	opts    Options
	out     io.Writer
	guard   *cluster.Guard
	started time.Time

	mu     sync.Mutex
	envs   map[string]*Environment
	git    *gitserver.Server
	charts *chartserver.Server
	// gateway is the host address the clusters reach the servers at;
	// chartsPort the chart server's port there.
	gateway    string
	chartsPort int

	timings []StepTiming

	failed    atomic.Bool
	diagnosed sync.Map // env name → struct{}
	// cleared: Clear suspended the sync; the next Republish resumes it.
	cleared atomic.Bool

	// scratch is the run's private temporary directory, made on first use;
	// trees the fleet trees it serves (treesToServe).
	scratch *scratch
	trees   []fleetTree
}

// New prepares a run; nothing is created until its steps run.
func New(opts Options, out io.Writer) *Run {
	if out == nil {
		out = os.Stdout
	}
	return &Run{opts: opts, out: out, started: time.Now(), envs: map[string]*Environment{}, guard: cluster.NewGuard(opts.Keep, out)}
}

type runKey struct{}

// WithRun returns ctx carrying r, for the checks that receive only a context.
func WithRun(ctx context.Context, r *Run) context.Context { return context.WithValue(ctx, runKey{}, r) }

// From returns the Run a context carries (set by the first setup step), or nil.
func From(ctx context.Context) *Run {
	r, _ := ctx.Value(runKey{}).(*Run)
	return r
}

// Options returns the run's options.
func (r *Run) Options() Options { return r.opts }

// Env returns a brought-up environment, or nil.
func (r *Run) Env(name string) *Environment {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.envs[name]
}

// Git returns the git server serving the fleet.
func (r *Run) Git() *gitserver.Server { return r.git }

// Charts returns the chart server, or nil when there are no charts to serve.
func (r *Run) Charts() *chartserver.Server { return r.charts }

// MarkFailed records that a check failed, for the keep-on-failure policy.
func (r *Run) MarkFailed() { r.failed.Store(true) }

func (r *Run) logf(format string, args ...any) {
	fmt.Fprintf(r.out, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Diagnose prints the one-screen summary of an environment and writes its
// artifacts, once per environment. After an interrupt it does nothing (the
// clusters go first), and near the test deadline it gets only the time
// that leaves the teardown its share.
func (r *Run) Diagnose(ctx context.Context, env string) {
	if Interrupted(ctx) {
		r.logf("%-11s diagnostics skipped: %v; deleting the clusters first", env, context.Cause(ctx))
		return
	}
	if _, done := r.diagnosed.LoadOrStore(env, struct{}{}); done {
		return
	}
	e := r.Env(env)
	if e == nil || e.Clients == nil {
		return
	}
	ctx, cancel, ok := r.diagnosticsContext(ctx)
	defer cancel()
	if !ok {
		r.logf("%-11s diagnostics skipped: the test deadline is near and the teardown needs the time left", env)
		return
	}
	summary, err := diagnose.Summarize(ctx, env, e.Config())
	if err != nil {
		summary += fmt.Sprintf("\n(summary incomplete: %v)", err)
	}
	dir := filepath.Join(r.opts.ArtifactsDir, time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(r.opts.ArtifactsDir, 0o700); err != nil {
		summary += fmt.Sprintf("\n(artifacts not written: %v)", err)
	}
	if err := diagnose.CollectArtifactsWith(ctx, env, e.Config(), dir, diagnose.Options{RawValues: r.opts.RawValues}); err != nil {
		summary += fmt.Sprintf("\n(artifacts incomplete: %v)", err)
	}
	kindLogs := filepath.Join(dir, env, "kind-logs")
	if err := e.Cluster.ExportLogs(ctx, kindLogs); err != nil {
		summary += fmt.Sprintf("\n(kind node logs not exported: %v)", err)
	}
	// Even after a failed export: whatever kind wrote may carry the nodes'
	// environment (proxy credentials).
	if err := diagnose.RedactKindLogs(ctx, kindLogs); err != nil {
		summary += fmt.Sprintf("\n(kind node logs withheld in part: %v)", err)
	}
	summary += fmt.Sprintf("\nartifacts: %s\nkubeconfig: %s", filepath.Join(dir, env), e.Cluster.KubeconfigPath)
	r.mu.Lock()
	e.Summary = summary
	r.mu.Unlock()
	fmt.Fprintf(r.out, "\n==================== %s: diagnostics ====================\n%s\n\n", env, summary)
}

func (r *Run) diagnoseAll(ctx context.Context) {
	for _, env := range r.opts.Envs {
		r.Diagnose(ctx, env)
	}
}

// Down stops the servers and deletes the clusters this run created, unless
// the keep policy keeps them. It is safe to call more than once.
func (r *Run) Down(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	r.mu.Lock()
	git, charts := r.git, r.charts
	r.git, r.charts = nil, nil
	r.mu.Unlock()
	if git != nil {
		errs = append(errs, git.Close())
	}
	if charts != nil {
		errs = append(errs, charts.Close())
	}
	errs = append(errs, r.guard.Cleanup(ctx, r.failed.Load()))
	r.mu.Lock()
	s := r.scratch
	r.scratch, r.trees = nil, nil
	r.mu.Unlock()
	errs = append(errs, s.Close())
	if r.opts.Keep.Keep(r.failed.Load()) {
		for _, env := range r.opts.Envs {
			if e := r.Env(env); e != nil && e.Cluster != nil {
				r.logf("kept cluster %s: export KUBECONFIG=%s", e.Cluster.Name, e.Cluster.KubeconfigPath)
			}
		}
	}
	return errors.Join(errs...)
}

// AfterEachTest is an e2e-framework TestEnvFunc: a failed test marks the run
// failed (for the keep policy) and gets the diagnostics of every environment
// that was not diagnosed yet.
func (r *Run) AfterEachTest(ctx context.Context, _ *envconf.Config, t *testing.T) (context.Context, error) {
	if t.Failed() {
		r.MarkFailed()
		r.diagnoseAll(ctx)
	}
	return ctx, nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
