// Package envfuncs composes the harness steps into e2e-framework environment
// functions: Setup brings up every environment (kind cluster → Flux install →
// git server → sync → wait) and Finish diagnoses and tears down per the keep
// policy. Each step lives in its own package; this one only orders them and
// keeps the per-run state the e2e features read.
package envfuncs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/diagnose"
	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxsync"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
)

// Environment is one brought-up environment as the features see it.
type Environment struct {
	Name    string
	Cluster *cluster.Cluster
	Config  *rest.Config
	// Ready is the outcome of the readiness wait: nil when everything the
	// fleet defines became Ready, else why not (often a *readiness.FailureError).
	Ready  error
	Report *readiness.Report
	// Summary is the diagnostics screen, filled when the environment failed.
	Summary string
}

// Run holds the state of one e2e run.
type Run struct {
	opts  Options
	out   io.Writer
	guard *cluster.Guard

	mu   sync.Mutex
	envs map[string]*Environment
	git  *gitserver.Server

	failed     atomic.Bool
	diagnosed  sync.Map // env name → struct{}
	stopSignal context.CancelFunc
}

// New prepares a run; nothing is created until Setup.
func New(opts Options, out io.Writer) *Run {
	if out == nil {
		out = os.Stdout
	}
	return &Run{opts: opts, out: out, envs: map[string]*Environment{}, guard: cluster.NewGuard(opts.Keep, out)}
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

// MarkFailed records that a test failed, for the keep-on-failure policy.
func (r *Run) MarkFailed() { r.failed.Store(true) }

func (r *Run) logf(format string, args ...any) {
	fmt.Fprintf(r.out, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Setup is an e2e-framework env.Func: it creates the clusters in parallel,
// installs Flux, serves the fleet, syncs clusters/<env> and waits for each
// environment. A readiness failure does not fail Setup: it is recorded on the
// Environment (with diagnostics) so that each feature reports it by name.
func (r *Run) Setup(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	start := time.Now()
	ctx, r.stopSignal = r.guard.WatchSignals(ctx)

	if err := os.MkdirAll(r.opts.WorkDir, 0o755); err != nil {
		return ctx, fmt.Errorf("creating work directory: %w", err)
	}
	specs := make([]cluster.Spec, 0, len(r.opts.Envs))
	for _, env := range r.opts.Envs {
		specs = append(specs, cluster.Spec{
			Name:          r.opts.ClusterName(env),
			NodeImage:     r.opts.NodeImage,
			KindConfig:    r.opts.KindConfig,
			WorkDir:       r.opts.WorkDir,
			Reuse:         r.opts.Reuse,
			PreloadImages: r.opts.PreloadImages,
			Log:           r.out,
		})
	}
	clusters, err := r.guard.CreateAll(ctx, specs)
	if err != nil {
		return ctx, fmt.Errorf("creating clusters: %w", err)
	}
	for i, c := range clusters {
		env := r.opts.Envs[i]
		r.mu.Lock()
		r.envs[env] = &Environment{Name: env, Cluster: c, Config: c.RESTConfig}
		r.mu.Unlock()
		r.logf("%-11s kubeconfig %s", env, c.KubeconfigPath)
	}
	r.logf("clusters ready in %s", since(start))

	host, err := cluster.HostAddress(ctx)
	if err != nil {
		return ctx, err
	}
	r.git, err = gitserver.Start(ctx, gitserver.Options{Addr: host, SourceDir: r.opts.FleetDir})
	if err != nil {
		return ctx, fmt.Errorf("serving fleet %s: %w", r.opts.FleetDir, err)
	}
	r.logf("serving %s at %s (revision %s)", r.opts.FleetDir, r.git.URL(), r.git.Revision())

	g, gctx := errgroup.WithContext(ctx)
	for _, env := range r.opts.Envs {
		e := r.Env(env)
		g.Go(func() error { return r.bringUp(gctx, e) })
	}
	if err := g.Wait(); err != nil {
		r.MarkFailed()
		r.diagnoseAll(context.WithoutCancel(ctx))
		return ctx, err
	}
	r.logf("all environments brought up in %s", since(start))
	return ctx, nil
}

// bringUp installs Flux, syncs the environment and waits for it.
func (r *Run) bringUp(ctx context.Context, e *Environment) error {
	start := time.Now()
	res, err := fluxinstall.Install(ctx, e.Config, fluxinstall.Options{
		Components:   r.opts.FluxComponents,
		ManifestsDir: r.opts.FluxManifestsDir,
		ExtraCRDsDir: extraCRDs(r.opts.FluxManifestsDir),
		// A fix published while a Kustomization waits on unhealthy workloads
		// must not queue behind that wait's timeout (minutes): the reproduce,
		// fix, re-run loop depends on it.
		ControllerArgs: kustomizeControllerArgs(r.opts.FluxComponents),
		ClusterName:    e.Cluster.Name,
		Out:            r.out,
	})
	if err != nil {
		return fmt.Errorf("%s: installing Flux: %w", e.Name, err)
	}
	r.logf("%-11s flux %s ready in %s", e.Name, res.Version, since(start))
	if err := r.sync(ctx, e); err != nil {
		return err
	}
	return r.wait(ctx, e, start)
}

func (r *Run) sync(ctx context.Context, e *Environment) error {
	user, pass := r.git.Credentials()
	err := fluxsync.Apply(ctx, e.Config, fluxsync.Options{
		URL:      r.git.URL(),
		Branch:   r.git.Branch(),
		Path:     "./clusters/" + e.Name,
		Username: user,
		Password: pass,
	})
	if err != nil {
		return fmt.Errorf("%s: syncing clusters/%s: %w", e.Name, e.Name, err)
	}
	// A reused cluster may hold an older revision: fetch the new one now
	// rather than after the interval.
	if err := fluxsync.RequestReconcile(ctx, e.Config, "flux-system", "flux-system"); err != nil {
		return fmt.Errorf("%s: requesting reconciliation: %w", e.Name, err)
	}
	if err := fluxsync.WaitForRevision(ctx, e.Config, "flux-system", "flux-system", r.git.FluxRevision(r.git.Revision())); err != nil {
		return fmt.Errorf("%s: waiting for revision %s: %w", e.Name, r.git.Revision(), err)
	}
	return nil
}

// wait records the readiness outcome on the environment; it fails only when
// the wait itself could not run.
func (r *Run) wait(ctx context.Context, e *Environment, start time.Time) error {
	wctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	nudged := make(chan struct{})
	go func() {
		defer close(nudged)
		_ = fluxsync.NudgeDependents(wctx, e.Config, prefixed(r.out, e.Name))
	}()
	defer func() { cancel(); <-nudged }()
	report, err := readiness.WaitForFlux(wctx, e.Config, readiness.Options{
		Env:             e.Name,
		Out:             r.out,
		PodFailureGrace: r.opts.PodFailureGrace,
	})
	r.mu.Lock()
	e.Report, e.Ready = report, err
	r.mu.Unlock()
	if err != nil {
		r.logf("%-11s NOT READY after %s: %v", e.Name, since(start), err)
		r.MarkFailed()
		r.Diagnose(context.WithoutCancel(ctx), e.Name)
		return nil
	}
	r.logf("%-11s green in %s", e.Name, since(start))
	// Per object: time to Ready and how late the harness saw the flip.
	fmt.Fprint(r.out, report.String())
	return nil
}

// Republish snapshots the fleet again, points every environment at the new
// revision and waits for them: the edit → re-sync loop on kept clusters.
func (r *Run) Republish(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	rev, err := r.git.Publish(ctx)
	if err != nil {
		return 0, fmt.Errorf("publishing fleet: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, env := range r.opts.Envs {
		e := r.Env(env)
		g.Go(func() error {
			if err := fluxsync.RequestReconcile(gctx, e.Config, "flux-system", "flux-system"); err != nil {
				return err
			}
			if err := fluxsync.WaitForRevision(gctx, e.Config, "flux-system", "flux-system", r.git.FluxRevision(rev)); err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
			return r.wait(gctx, e, start)
		})
	}
	err = g.Wait()
	return time.Since(start), err
}

// Diagnose prints the one-screen summary of an environment and writes its
// artifacts, once per environment.
func (r *Run) Diagnose(ctx context.Context, env string) {
	if _, done := r.diagnosed.LoadOrStore(env, struct{}{}); done {
		return
	}
	e := r.Env(env)
	if e == nil || e.Config == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	summary, err := diagnose.Summarize(ctx, env, e.Config)
	if err != nil {
		summary += fmt.Sprintf("\n(summary incomplete: %v)", err)
	}
	dir := filepath.Join(r.opts.ArtifactsDir, time.Now().Format("20060102-150405"))
	if err := diagnose.CollectArtifacts(ctx, env, e.Config, dir); err != nil {
		summary += fmt.Sprintf("\n(artifacts incomplete: %v)", err)
	}
	if err := e.Cluster.ExportLogs(ctx, filepath.Join(dir, env, "kind-logs")); err != nil {
		summary += fmt.Sprintf("\n(kind node logs not exported: %v)", err)
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

// Finish is an e2e-framework env.Func: it stops the git server and deletes
// the clusters this run created unless the keep policy says otherwise.
func (r *Run) Finish(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	if r.stopSignal != nil {
		r.stopSignal()
	}
	var errs []error
	if r.git != nil {
		errs = append(errs, r.git.Close())
	}
	errs = append(errs, r.guard.Cleanup(context.WithoutCancel(ctx), r.failed.Load()))
	if r.opts.Keep.Keep(r.failed.Load()) {
		for _, env := range r.opts.Envs {
			if e := r.Env(env); e != nil {
				r.logf("kept cluster %s: export KUBECONFIG=%s", e.Cluster.Name, e.Cluster.KubeconfigPath)
			}
		}
	}
	return ctx, errors.Join(errs...)
}

func kustomizeControllerArgs(components []string) map[string][]string {
	if len(components) > 0 && !slices.Contains(components, "kustomize-controller") {
		return nil
	}
	return map[string][]string{"kustomize-controller": {"--feature-gates=CancelHealthCheckOnNewRevision=true"}}
}

func extraCRDs(manifestsDir string) string {
	if manifestsDir == "" {
		return ""
	}
	return filepath.Join(manifestsDir, "extra-crds")
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

// prefixed puts the time and the environment name in front of each line
// written, like the readiness progress lines, so that parallel environments
// stay readable in one log.
func prefixed(w io.Writer, env string) io.Writer {
	return &linePrefixer{w: w, prefix: env + "  "}
}

type linePrefixer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s %s%s", time.Now().Format("15:04:05"), p.prefix, p.buf[:i+1]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}

// AfterEachTest is an e2e-framework TestEnvFunc: a failed test marks the run
// failed (for the keep policy) and gets the diagnostics of every environment
// that was not diagnosed yet.
func (r *Run) AfterEachTest(ctx context.Context, _ *envconf.Config, t *testing.T) (context.Context, error) {
	if t.Failed() {
		r.MarkFailed()
		r.diagnoseAll(context.WithoutCancel(ctx))
	}
	return ctx, nil
}

// Unavailable says why this machine cannot run kind clusters at all, or "".
func Unavailable(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("no Docker engine answers (docker info: %v: %s); start one, e.g. `make docker-engine`", err, bytes.TrimSpace(out))
	}
	return ""
}
