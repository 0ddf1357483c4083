package fleetenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/fluxsync"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/preflight"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// Step is one named step of a bring-up.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
}

// StepTiming is how long one step of a bring-up took.
type StepTiming struct {
	Name string
	Took time.Duration
	Err  error
}

// Timings returns the steps run so far, in order, with their durations.
func (r *Run) Timings() []StepTiming {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.timings)
}

// Steps are the bring-up in order. Checks that need no cluster come first,
// so a broken fleet fails in seconds.
func (r *Run) Steps() []Step {
	steps := []Step{
		{"offline checks", r.checkFleet},
		{"chart server", r.serveCharts},
		{"pre-flight", r.preflight},
		{"clusters", r.createClusters},
		{"servers on the kind network", r.exposeServers},
		{"flux install", r.installFlux},
		{"sync", r.sync},
		{"wait", r.wait},
	}
	if r.opts.Base != "" {
		steps = append(steps, Step{"upgrade", r.upgrade})
	}
	return steps
}

// Setup returns the steps as e2e-framework environment functions; the
// first also puts the Run into the context the features receive.
func (r *Run) Setup() []env.Func {
	var funcs []env.Func
	for i, s := range r.Steps() {
		funcs = append(funcs, func(ctx context.Context, _ *envconf.Config) (context.Context, error) {
			if i == 0 {
				ctx = WithRun(ctx, r)
			}
			return ctx, r.runStep(ctx, s)
		})
	}
	return funcs
}

// Up runs every step in order, for callers outside e2e-framework
// (scenarios, benchmarks). Down undoes it.
func (r *Run) Up(ctx context.Context) error {
	for _, s := range r.Steps() {
		if err := r.runStep(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (r *Run) runStep(ctx context.Context, s Step) error {
	start := time.Now()
	r.logf("step %s ...", s.Name)
	err := s.Run(ctx)
	r.mu.Lock()
	r.timings = append(r.timings, StepTiming{Name: s.Name, Took: time.Since(start), Err: err})
	r.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		// Say why the context ended (an interrupt, the test deadline, a
		// cluster gone), which a wrapped "context canceled" does not.
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
	}
	if err != nil {
		r.MarkFailed()
		r.logf("step %-28s FAILED after %s", s.Name, since(start))
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	r.logf("step %-28s done in %s", s.Name, since(start))
	return nil
}

// checkFleet runs the offline tier on every tree the run will serve (the
// working tree, or the revisions of E2E_REVISION and E2E_BASE): a fleet it
// rejects fails before anything is created.
func (r *Run) checkFleet(ctx context.Context) error {
	trees, err := r.treesToServe(ctx)
	if err != nil {
		return err
	}
	if !r.opts.OfflineChecks {
		r.logf("offline checks skipped (E2E_OFFLINE_CHECKS=false)")
		return nil
	}
	for _, t := range trees {
		if err := r.checkTree(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func (r *Run) checkTree(ctx context.Context, t fleetTree) error {
	res, err := validate.Validate(ctx, t.Dir)
	if err != nil {
		return fmt.Errorf("validating fleet %s (%s): %w", r.opts.FleetDir, t.Label, err)
	}
	var findings []string
	for _, f := range res.Findings {
		if f.Env == "" || slices.Contains(r.opts.Envs, f.Env) {
			findings = append(findings, "  "+f.String())
		}
	}
	if len(findings) > 0 {
		return fmt.Errorf("fleet %s (%s) has %d problem(s) (make validate FLEET=%s shows them with the Flux tree):\n%s",
			r.opts.FleetDir, t.Label, len(findings), r.opts.FleetDir, strings.Join(findings, "\n"))
	}
	r.logf("fleet %s (%s): %d objects valid in %d environment(s)", r.opts.FleetDir, t.Label, res.ObjectCount(), len(res.Envs))
	return nil
}

// serveCharts starts the chart server on loopback (the pre-flight uses it
// before the kind network exists), when there are charts to serve.
func (r *Run) serveCharts(ctx context.Context) error {
	dirs := r.opts.ChartDirs
	if len(dirs) == 0 {
		r.logf("no chart directories: chart server not started")
		return nil
	}
	tmp, err := r.scratchDir()
	if err != nil {
		return err
	}
	s, err := chartserver.Start(ctx, chartserver.Options{Addr: "127.0.0.1", ChartDirs: dirs, Log: prefixed(r.out, "charts"), TempDir: tmp})
	if err != nil {
		return fmt.Errorf("serving charts from %s: %w", strings.Join(dirs, ", "), err)
	}
	r.mu.Lock()
	r.charts = s
	r.mu.Unlock()
	var names []string
	for _, c := range s.Charts() {
		names = append(names, c.Name+"@"+c.Version)
	}
	r.logf("serving %d chart(s) as a Helm repository and an OCI registry: %s", len(names), strings.Join(names, ", "))
	return nil
}

// preflight resolves and renders every HelmRelease of every tree the run
// will serve before any cluster exists. Sources that cannot be reached from
// here (public registries on a machine without internet) are reported and
// left to the clusters; every other finding fails the run.
func (r *Run) preflight(ctx context.Context) error {
	if !r.opts.Preflight {
		r.logf("pre-flight skipped (E2E_PREFLIGHT=false)")
		return nil
	}
	trees, err := r.treesToServe(ctx)
	if err != nil {
		return err
	}
	kube, err := preflight.KitKubeVersion(r.opts.Root)
	if err != nil {
		return err
	}
	for _, t := range trees {
		if err := r.preflightTree(ctx, t, kube); err != nil {
			return err
		}
	}
	return nil
}

func (r *Run) preflightTree(ctx context.Context, t fleetTree, kube string) error {
	opts := preflight.Options{
		FleetDir:    t.Dir,
		Envs:        r.opts.Envs,
		KnownImages: r.opts.Kit.PreloadImages,
		// Offline, an image the kit did not build can never be pulled.
		KnownImagesOnly: r.opts.Offline(),
		KubeVersion:     kube,
		Timeout:         time.Minute,
	}
	if r.charts != nil {
		user, pass := r.charts.Credentials()
		opts.HostRewrites = map[string]string{chartserver.InClusterHost: r.charts.Host()}
		opts.Credentials = map[string]preflight.Credential{chartserver.InClusterHost: {Username: user, Password: pass}}
	}
	rep, err := preflight.Run(ctx, opts)
	if err != nil {
		return fmt.Errorf("pre-flight of %s (%s): %w", r.opts.FleetDir, t.Label, err)
	}
	switch {
	case !rep.HasHelmReleases():
		r.logf("pre-flight (%s): no HelmRelease in the fleet", t.Label)
	case rep.OK():
		r.logf("pre-flight (%s): every HelmRelease resolved and rendered, every image present", t.Label)
	case rep.OnlyUnreachable():
		r.logf("pre-flight (%s): sources unreachable from this machine, left to the clusters:\n%s", t.Label, indent(rep.Findings()))
	default:
		return fmt.Errorf("pre-flight of %s found problems before any cluster was created:\n%s", t.Label, rep.String())
	}
	return nil
}

func indent[T fmt.Stringer](items []T) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString("  " + it.String() + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// createClusters creates (or reuses) one kind cluster per environment, in
// parallel, and builds each environment's API clients.
func (r *Run) createClusters(ctx context.Context) error {
	if err := os.MkdirAll(r.opts.WorkDir, 0o755); err != nil {
		return fmt.Errorf("creating work directory: %w", err)
	}
	specs := make([]cluster.Spec, 0, len(r.opts.Envs))
	for _, env := range r.opts.Envs {
		specs = append(specs, cluster.Spec{
			Name:       r.opts.ClusterName(env),
			Fleet:      r.opts.FleetDir,
			NodeImage:  r.opts.Kit.NodeImage,
			KindConfig: r.opts.Kit.KindConfig,
			WorkDir:    r.opts.WorkDir,
			Reuse:      r.opts.Reuse,
			// The images, and the Service network, come during the Flux
			// install (see installFlux).
			Log: r.out,
		})
	}
	clusters, err := r.guard.CreateAll(ctx, specs)
	if err != nil {
		return fmt.Errorf("creating clusters: %w", err)
	}
	for i, c := range clusters {
		clients, err := fluxobj.NewClients(c.RESTConfig)
		if err != nil {
			return fmt.Errorf("%s: %w", r.opts.Envs[i], err)
		}
		e := &Environment{Name: r.opts.Envs[i], Cluster: c, Clients: clients}
		r.mu.Lock()
		r.envs[e.Name] = e
		r.mu.Unlock()
		r.logf("%-11s kubeconfig %s", e.Name, c.KubeconfigPath)
	}
	return nil
}

// exposeServers serves the fleet's git repository, and the charts, on the
// kind network's gateway, where nodes reach the host.
func (r *Run) exposeServers(ctx context.Context) error {
	host, err := cluster.HostAddress(ctx)
	if err != nil {
		return err
	}
	r.gateway = host
	tmp, err := r.scratchDir()
	if err != nil {
		return err
	}
	git, err := gitserver.Start(ctx, gitserver.Options{
		Addr: host, SourceDir: r.opts.FleetDir, Revision: r.opts.firstRevision(), Log: prefixed(r.out, "git"), TempDir: tmp,
		// Kubeconfigs and diagnostics never reach a cluster, ignored or not.
		Exclude: []string{r.opts.WorkDir, r.opts.ArtifactsDir},
	})
	if err != nil {
		return fmt.Errorf("serving fleet %s: %w", r.opts.FleetDir, err)
	}
	r.mu.Lock()
	r.git = git
	r.mu.Unlock()
	r.logf("serving %s at %s (revision %s: %s)", r.opts.FleetDir, git.URL(), git.Revision(), git.Origin())
	if r.charts != nil {
		hostPort, err := r.charts.AddListener(ctx, host)
		if err != nil {
			return fmt.Errorf("serving charts on %s: %w", host, err)
		}
		_, port, err := net.SplitHostPort(hostPort)
		if err != nil {
			return fmt.Errorf("chart server address %q: %w", hostPort, err)
		}
		if r.chartsPort, err = strconv.Atoi(port); err != nil {
			return fmt.Errorf("chart server address %q: %w", hostPort, err)
		}
		r.logf("charts at http://%s (in the clusters: http://%s)", hostPort, chartserver.InClusterHost)
	}
	return nil
}

// eachEnv runs f for every environment in parallel. Each f runs under a
// watch of its cluster's API server: a cluster that is deleted or stops
// answering ends f within seconds with what the cluster answered, instead
// of letting its waits run to their timeouts.
func (r *Run) eachEnv(ctx context.Context, f func(ctx context.Context, e *Environment) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range r.opts.Envs {
		e := r.Env(name)
		if e == nil {
			return fmt.Errorf("environment %s has no cluster", name)
		}
		g.Go(func() error {
			wctx, stop := e.Cluster.WatchAPI(gctx)
			defer stop()
			err := f(wctx, e)
			var gone *cluster.GoneError
			if err != nil && errors.As(context.Cause(wctx), &gone) {
				return fmt.Errorf("%s: %w (while: %v)", e.Name, gone, err)
			}
			return err
		})
	}
	return g.Wait()
}

// dependencyRequeue is how often kustomize- and helm-controller re-check a
// dependency that is not Ready (their default is 30s): short, so that a
// fresh sync does not wait for a dependency that is already Ready.
const dependencyRequeue = "500ms"

// controllerArgs are the harness's controller flags: besides the dependency
// requeue, kustomize-controller cancels a health check when a new revision
// arrives, so a fix published during a failing check applies at once.
func controllerArgs(components []string) map[string][]string {
	has := func(c string) bool { return len(components) == 0 || slices.Contains(components, c) }
	args := map[string][]string{}
	if has("kustomize-controller") {
		args["kustomize-controller"] = []string{"--feature-gates=CancelHealthCheckOnNewRevision=true", "--requeue-dependency=" + dependencyRequeue}
	}
	if has("helm-controller") {
		args["helm-controller"] = []string{"--requeue-dependency=" + dependencyRequeue}
	}
	return args
}

// installFlux installs Flux on every cluster while the cluster finishes
// coming up: kube-proxy programs the Service network at the same time as
// the images the node image lacks load, the manifests are generated, and
// the controllers are applied and start. The controllers reach the API server at its own address, so they
// need not wait for the Service network; the step ends when both are done,
// because the sync needs both.
func (r *Run) installFlux(ctx context.Context) error {
	return r.eachEnv(ctx, func(ctx context.Context, e *Environment) error {
		start := time.Now()
		ctx, cancel := context.WithTimeoutCause(ctx, fluxInstallTimeout,
			fmt.Errorf("%s: the Flux install did not finish within %s", e.Name, fluxInstallTimeout))
		defer cancel()
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return e.Cluster.WaitServiceNetwork(gctx, 0) })
		// The images load while the Flux manifests are generated; the apply
		// waits for them: a controller pod made before its image is on the
		// node goes into a pull back-off (there is no registry).
		loaded := make(chan error, 1)
		g.Go(func() error {
			err := e.Cluster.LoadImages(gctx, r.opts.Kit.PreloadImages...)
			loaded <- err
			return err
		})
		g.Go(func() error {
			apiServer, err := e.Cluster.APIServerEndpoint(gctx)
			if err != nil {
				return err
			}
			opts := fluxinstall.Options{
				Components:     r.opts.FluxComponents,
				ManifestsDir:   r.opts.Kit.FluxManifests,
				ControllerArgs: controllerArgs(r.opts.FluxComponents),
				// A controller is ready a second or two after it starts.
				ReadinessProbePeriod: time.Second,
				APIServer:            apiServer,
				BeforeApply: func(ctx context.Context) error {
					select {
					case err := <-loaded:
						return err
					case <-ctx.Done():
						return ctx.Err()
					}
				},
				ClusterName: e.Cluster.Name,
				Out:         prefixed(r.out, e.Name),
			}
			if dir := filepath.Join(r.opts.Kit.FluxManifests, "extra-crds"); r.opts.Kit.FluxManifests != "" && exists(dir) {
				opts.ExtraCRDsDir = dir
			}
			res, err := fluxinstall.Install(gctx, e.Clients, opts)
			if err != nil {
				return fmt.Errorf("installing Flux: %w", err)
			}
			r.mu.Lock()
			e.FluxInstall = res
			r.mu.Unlock()
			return nil
		})
		if err := g.Wait(); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		// The sync's first step is kustomize-controller fetching from
		// source-controller through its Service: reachable only once
		// kube-proxy has programmed it, which can trail the controller's
		// Ready by a second (a refused fetch cost seconds of back-off).
		if err := e.Cluster.WaitServiceAnswers(ctx, fluxobj.Namespace, sourceControllerService, time.Minute); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		r.logf("%-11s flux %s (%s) ready in %s, with the Service network (%.1fs) and images (%.1fs) alongside",
			e.Name, e.FluxInstall.Version, strings.Join(e.FluxInstall.Components, ", "), since(start),
			e.Cluster.ServiceNetworkTook.Seconds(), e.Cluster.LoadTook.Seconds())
		return nil
	})
}

// fluxInstallTimeout bounds the Flux install of one environment (with the
// Service network and the images alongside): the error then names each
// controller Deployment that is not Available and its last condition.
const fluxInstallTimeout = 5 * time.Minute

// sourceControllerService is the Service Flux's install gives
// source-controller, where the other controllers fetch artifacts.
const sourceControllerService = "source-controller"

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// syncTimeout bounds the first fetch of the fleet's revision: a git server
// that cannot be reached fails faster than that (fluxsync's grace).
const syncTimeout = 2 * time.Minute

func (r *Run) sync(ctx context.Context) error {
	return r.eachEnv(ctx, func(ctx context.Context, e *Environment) error {
		ctx, cancel := context.WithTimeout(ctx, syncTimeout)
		defer cancel()
		user, pass := r.git.Credentials()
		opts := fluxsync.Options{
			URL:      r.git.URL(),
			Branch:   r.git.Branch(),
			Path:     "./clusters/" + e.Name,
			Username: user,
			Password: pass,
		}
		if r.charts != nil {
			opts.Extra = r.charts.ClusterObjects(r.gateway, r.chartsPort)
		}
		if err := fluxsync.Apply(ctx, e.Clients, opts); err != nil {
			return fmt.Errorf("%s: syncing clusters/%s: %w", e.Name, e.Name, err)
		}
		return r.fetchRevision(ctx, e, r.git.Revision())
	})
}

// fetchRevision asks Flux to fetch the published commit now (a reused
// cluster may hold an older one) and waits until it has.
func (r *Run) fetchRevision(ctx context.Context, e *Environment, commit string) error {
	if err := fluxsync.RequestReconcile(ctx, e.Clients, fluxobj.Namespace, fluxobj.SyncName); err != nil {
		return fmt.Errorf("%s: requesting reconciliation: %w", e.Name, err)
	}
	if err := fluxsync.WaitForRevision(ctx, e.Clients, fluxobj.Namespace, fluxobj.SyncName, r.git.FluxRevision(commit), 0); err != nil {
		return fmt.Errorf("%s: waiting for revision %s: %w", e.Name, commit, err)
	}
	return nil
}

// wait records each environment's readiness outcome; it fails only when a
// wait could not run at all.
func (r *Run) wait(ctx context.Context) error {
	start := time.Now()
	return r.eachEnv(ctx, func(ctx context.Context, e *Environment) error {
		return r.waitEnv(ctx, e, start)
	})
}

func (r *Run) waitEnv(ctx context.Context, e *Environment, start time.Time) error {
	wctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	report, err := readiness.WaitForFlux(wctx, e.Clients, readiness.Options{
		Env:             e.Name,
		Out:             r.out,
		PodFailureGrace: r.opts.PodFailureGrace,
	})
	r.mu.Lock()
	e.Report, e.Ready = report, err
	r.mu.Unlock()
	defer r.writeRecord(ctx, e)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		r.logf("%-11s NOT READY after %s: %v", e.Name, since(start), err)
		r.MarkFailed()
		r.Diagnose(ctx, e.Name)
		return nil
	}
	r.logf("%-11s green in %s", e.Name, since(start))
	// Per object: time to Ready and how late the harness saw the flip.
	fmt.Fprint(r.out, report.String())
	return nil
}

// Republish snapshots the fleet (with Options.Revision, that revision
// again) and its charts, points every environment at the new revision and
// waits for them: the edit → re-sync loop on kept clusters. ctx bounds it;
// so does the run's Timeout.
func (r *Run) Republish(ctx context.Context) (time.Duration, error) {
	return r.PublishRevision(ctx, r.opts.Revision)
}

// PublishRevision is Republish for another revision of the checkout that
// holds the fleet ("" = the working tree): a kept cluster, cleared, brought
// to a base of its own before an Upgrade.
func (r *Run) PublishRevision(ctx context.Context, revision string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	start := time.Now()
	if r.charts != nil {
		if _, err := r.charts.Publish(ctx); err != nil {
			return 0, fmt.Errorf("publishing charts: %w", err)
		}
	}
	rev, err := r.publish(ctx, revision)
	if err != nil {
		return 0, fmt.Errorf("publishing fleet: %w", err)
	}
	err = r.eachEnv(ctx, func(ctx context.Context, e *Environment) error {
		if err := r.fetchRevision(ctx, e, rev); err != nil {
			return err
		}
		// Only now: resumed before the GitRepository holds the new revision,
		// the sync would briefly re-apply the cleared fleet's Kustomizations,
		// and they would apply the new sources with the old specs.
		if r.cleared.Load() {
			if err := fluxsync.Resume(ctx, e.Clients, fluxobj.Namespace, fluxobj.SyncName); err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
		}
		return r.waitEnv(ctx, e, start)
	})
	r.cleared.Store(false)
	return time.Since(start), err
}

// clearTimeout bounds Clear: uninstalling releases and terminating
// namespaces takes seconds; a finalizer that never finishes is reported.
const clearTimeout = 2 * time.Minute

// Clear takes the fleet off every environment and keeps the clusters with
// Flux installed, so that scenarios can share one cluster: the next fleet is
// edited into the served directory and Republish brings it up, from a
// cluster as empty as a fresh one, without creating a cluster and
// installing Flux again. It returns how long the clearing took.
func (r *Run) Clear(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, clearTimeout)
	defer cancel()
	start := time.Now()
	err := r.eachEnv(ctx, func(ctx context.Context, e *Environment) error {
		if err := fluxsync.Clear(ctx, e.Clients, fluxobj.Namespace, fluxobj.SyncName); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		r.mu.Lock()
		e.Ready, e.Report, e.Summary = nil, nil, ""
		r.mu.Unlock()
		r.diagnosed.Delete(e.Name)
		return nil
	})
	r.cleared.Store(true)
	if err == nil {
		r.logf("fleet cleared from every environment in %s", since(start))
	}
	return time.Since(start), err
}

// prefixed puts the time and a name in front of each line written, so that
// parallel environments and servers stay readable in one log.
func prefixed(w io.Writer, name string) io.Writer {
	return &linePrefixer{w: w, prefix: name + "  "}
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

// Available says whether this machine can run kind clusters at all: nil, or
// an error saying why not and what to do.
func Available(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("no Docker engine answers (docker info: %v: %s); start one, e.g. `make docker-engine`", err, bytes.TrimSpace(out))
	}
	return nil
}
