// Command bench measures where the seconds of a bring-up go: N runs of a
// fleet's environments from nothing on kind clusters made from the offline
// kit's node image with the run's images baked in, N from the bare node
// image (the images sent with kind load), interleaved so that both ways see
// the same machine, and N re-syncs of a new revision on kept clusters. It
// prints min/median/max per phase and the ratio of the two ways. Each
// bring-up writes its run report (report.json, .html, .md, as every e2e
// run does) into <workdir>/bench-<time>/<way>-<run>/, so that the
// timelines of runs can be compared side by side.
//
//	go run ./hack/bench [-n 5] [-fleet fixtures/fleets/basic] [-envs staging,production]
//
// The default fleet is the plain-manifest one: its pace is the bring-up's.
// A Helm fleet adds helm-controller's and kustomize-controller's fixed
// 5 s polls and its charts' own probe periods, which the harness does not
// set (-fleet fixtures/fleets/helm measures those too).
//
// It needs the kit profile in the environment (make bench loads it) and
// creates only clusters named bench-<env>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// clusterPrefix keeps the bench's clusters apart from the e2e suite's
// (staging, production, ff-*), so it can run next to them.
const clusterPrefix = "bench-"

type config struct {
	runs    int
	fleet   string
	envs    []string
	bare    bool
	timeout time.Duration
	logPath string
	verbose bool
}

func main() {
	ctrllog.SetLogger(logr.Discard()) // the ssa applier's controller-runtime would warn with a stack trace
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, interrupts := fleetenv.WatchInterrupts(context.Background())
	code := 0
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		code = 1
	}
	interrupts.Stop()
	os.Exit(interrupts.ExitCode(code))
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	var envs string
	fs.IntVar(&c.runs, "n", 5, "runs from nothing per node image, and re-syncs")
	fs.StringVar(&c.fleet, "fleet", "fixtures/fleets/basic", "fleet directory (the layout of the real fleet)")
	fs.StringVar(&envs, "envs", "staging,production", "environments, each on its own cluster "+clusterPrefix+"<env>")
	fs.BoolVar(&c.bare, "bare", true, "also measure the bare node image ("+kitprofile.NodeImageBareVar+"), images sent with kind load")
	fs.DurationVar(&c.timeout, "timeout", time.Hour, "bound of the whole bench")
	fs.StringVar(&c.logPath, "log", "", "the runs' full log (default: <E2E_WORKDIR>/bench-<time>.log)")
	fs.BoolVar(&c.verbose, "v", false, "also print the runs' full log")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.runs < 1 {
		return c, fmt.Errorf("-n %d: want at least 1 run", c.runs)
	}
	if c.timeout <= 0 {
		return c, fmt.Errorf("-timeout %s: want a positive duration", c.timeout)
	}
	c.envs = kitprofile.List(envs)
	if len(c.envs) == 0 {
		return c, errors.New("-envs is empty: name at least one environment")
	}
	return c, nil
}

// way is one way of getting the images into the nodes.
type way struct {
	name      string
	nodeImage string
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.timeout, fmt.Errorf("the bench took longer than -timeout %s", cfg.timeout))
	defer cancel()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	base, err := baseOptions(root, cfg)
	if err != nil {
		return err
	}
	ways := []way{{"preloaded", base.Kit.NodeImage}}
	if cfg.bare {
		bare := base.Kit.NodeImageBare
		if bare == "" {
			return fmt.Errorf("%s is unset: load the kit profile (make bench does), or pass -bare=false", kitprofile.NodeImageBareVar)
		}
		ways = append(ways, way{"kind load", bare})
	}

	// One name for the bench's log and its directory of run reports.
	name := "bench-" + time.Now().Format("20060102-150405")
	reports := filepath.Join(base.WorkDir, name)
	logPath := cfg.logPath
	if logPath == "" {
		logPath = filepath.Join(base.WorkDir, name+".log")
	}
	logFile, err := createRunLog(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	runLog := io.Writer(logFile)
	if cfg.verbose {
		runLog = io.MultiWriter(logFile, out)
	}
	fmt.Fprintf(out, "bench: fleet %s, environments %s, %d run(s) per way; full log %s\n", base.FleetDir, strings.Join(base.Envs, ","), cfg.runs, logPath)
	for _, w := range ways {
		fmt.Fprintf(out, "  %-10s node image %s\n", w.name, w.nodeImage)
	}

	var samples []sample
	for i := range cfg.runs {
		for j := range ways {
			// Alternate which way goes first, so that neither always runs
			// on a machine still busy deleting the other's clusters.
			w := ways[(i+j)%len(ways)]
			resyncs := 0
			if i == 0 && w.name == "preloaded" {
				resyncs = cfg.runs
			}
			s, err := bringUp(ctx, base, w, runArtifactsDir(reports, w, i+1), resyncs, runLog)
			s.err = err
			samples = append(samples, s)
			fmt.Fprintln(out, s.line(i+1, cfg.runs))
			if err != nil {
				fmt.Fprint(out, report(samples, ways))
				printReports(out, reports)
				return fmt.Errorf("%s run %d: %w (full log: %s)", w.name, i+1, err, logPath)
			}
		}
	}
	fmt.Fprint(out, report(samples, ways))
	printReports(out, reports)
	return updateTimingsDoc(out, filepath.Join(root, timingsDocPath), cfg, samples, ways)
}

// createRunLog creates (or empties) the bench's log at path, readable by
// its owner only, in a directory created 0700 when missing: the log carries
// the runs' errors, which may quote credentials.
func createRunLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the bench log's directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the bench log: %w", err)
	}
	// An older log at path keeps its mode through O_TRUNC.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("making the bench log %s private: %w", path, err)
	}
	return f, nil
}

// runArtifactsDir is where bring-up n (from 1) of way w writes its records,
// diagnostics and run report (report.json, .html, .md) at its teardown:
// one directory per bring-up, so their timelines can be opened side by side.
func runArtifactsDir(reports string, w way, n int) string {
	return filepath.Join(reports, strings.ReplaceAll(w.name, " ", "-")+"-"+strconv.Itoa(n))
}

// printReports says where the bring-ups' run reports are: one directory
// per bring-up under reports, each with its report.html.
func printReports(out io.Writer, reports string) {
	entries, err := os.ReadDir(reports)
	if err != nil {
		fmt.Fprintf(out, "no run reports: %v\n", err)
		return
	}
	fmt.Fprintf(out, "run reports, one per bring-up: %s\n", reports)
	for _, e := range entries {
		if e.IsDir() {
			fmt.Fprintf(out, "  %s\n", filepath.Join(reports, e.Name(), "report.html"))
		}
	}
}

// baseOptions are the E2E_* and kit settings with the bench's fleet,
// environments and cluster names; clusters never outlive a run.
func baseOptions(root string, cfg config) (fleetenv.Options, error) {
	opts, err := fleetenv.OptionsFromEnv(root)
	if err != nil {
		return opts, err
	}
	if missing := opts.Kit.Missing(); len(missing) > 0 {
		return opts, fmt.Errorf("the kit profile is not loaded (%s unset): run make bench, which builds and loads it", strings.Join(missing, ", "))
	}
	opts.FleetDir = cfg.fleet
	if !filepath.IsAbs(opts.FleetDir) {
		opts.FleetDir = filepath.Join(root, opts.FleetDir)
	}
	for _, env := range cfg.envs {
		if _, err := os.Stat(filepath.Join(opts.FleetDir, "clusters", env)); err != nil {
			return opts, fmt.Errorf("fleet %s has no clusters/%s directory", opts.FleetDir, env)
		}
	}
	opts.Envs = cfg.envs
	opts.ClusterPrefix = clusterPrefix
	opts.Keep = cluster.KeepNever
	opts.Reuse = false
	opts.Timeout = 5 * time.Minute
	return opts, nil
}

// bringUp runs one bring-up from nothing on a copy of the fleet, the
// traffic checks, resyncs re-syncs of an edited copy, and the teardown,
// which writes the run report into artifacts.
func bringUp(ctx context.Context, base fleetenv.Options, w way, artifacts string, resyncs int, log io.Writer) (s sample, err error) {
	s = sample{way: w.name, phases: map[string]time.Duration{}}
	fleet, err := os.MkdirTemp("", "bench-fleet-")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(fleet)
	if err := os.CopyFS(fleet, os.DirFS(base.FleetDir)); err != nil {
		return s, fmt.Errorf("copying fleet %s: %w", base.FleetDir, err)
	}
	opts := base
	opts.FleetDir = fleet
	opts.Kit.NodeImage = w.nodeImage
	opts.ArtifactsDir = artifacts
	fmt.Fprintf(log, "\n======== %s: bring-up from nothing (node image %s) ========\n", w.name, w.nodeImage)
	r := fleetenv.New(opts, log)
	defer func() {
		start := time.Now()
		if derr := r.Down(ctx); derr != nil {
			err = errors.Join(err, fmt.Errorf("tearing down: %w", derr))
		}
		// The next run starts from nothing, not in the disk writes of this
		// one's teardown: the deleted node files' writeback would slow the
		// next clusters' start, more with every run. The flush is part of
		// the delete phase.
		syscall.Sync()
		s.phases[phaseDelete] = time.Since(start)
	}()

	start := time.Now()
	upErr := r.Up(ctx)
	s.phases[phaseGreen] = time.Since(start)
	if perr := s.fromRun(r); perr != nil {
		return s, errors.Join(upErr, perr)
	}
	if upErr != nil {
		return s, upErr
	}
	for _, env := range opts.Envs {
		if e := r.Env(env); e.Ready != nil {
			return s, fmt.Errorf("%s not Ready: %w", env, e.Ready)
		}
	}

	start = time.Now()
	if err := checkTraffic(ctx, r, log); err != nil {
		return s, err
	}
	s.phases[phaseChecks] = time.Since(start)

	for i := range resyncs {
		file, err := touchFleet(fleet, i+1)
		if err != nil {
			return s, err
		}
		fmt.Fprintf(log, "\n======== re-sync %d: %s edited ========\n", i+1, file)
		took, err := r.Publisher().Republish(ctx)
		if err != nil {
			return s, fmt.Errorf("re-sync %d: %w", i+1, err)
		}
		for _, env := range opts.Envs {
			if e := r.Env(env); e.Ready != nil {
				return s, fmt.Errorf("re-sync %d: %s not Ready: %w", i+1, env, e.Ready)
			}
		}
		s.resyncs = append(s.resyncs, took)
	}
	return s, nil
}

// touchFleet appends a comment to the fleet's first YAML file under apps/
// (under the root when there is no apps/): a new revision that changes no
// object, so the re-sync measures fetch, apply and readiness only.
func touchFleet(fleet string, n int) (string, error) {
	var file string
	dir := filepath.Join(fleet, "apps")
	if _, err := os.Stat(dir); err != nil {
		dir = fleet
	}
	errFound := errors.New("found")
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			file = path
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return "", fmt.Errorf("finding a YAML file to edit in %s: %w", dir, err)
	}
	if file == "" {
		return "", fmt.Errorf("fleet %s has no YAML file to edit for a re-sync", fleet)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return "", fmt.Errorf("editing %s: %w", file, err)
	}
	_, err = fmt.Fprintf(f, "\n# bench re-sync %d at %s\n", n, time.Now().Format(time.RFC3339Nano))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("editing %s: %w", file, err)
	}
	rel, _ := filepath.Rel(fleet, file)
	return rel, nil
}
