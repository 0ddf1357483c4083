// Package e2e is the main job: it brings up every environment of a fleet on
// its own kind cluster (staging and production by default), syncs
// clusters/<env> from a local git server and proves, per environment, that
// the Flux controllers, the infrastructure and the apps are Ready and that
// the rollout works: traffic through the nginx ingress reaches the app, and
// the app uses the redis the infrastructure installed.
//
// Configuration is by flags after -args or the E2E_* variables they fall
// back to (`go test ./e2e -args -help`, docs/configuration.md).
// Each check is its own test with one subtest per environment, so
// `go test ./e2e -run 'TestTraffic/staging'` selects one.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
)

// testenv is e2e-framework's environment; the fleet's Run travels in the
// context it hands to every feature (fleetenv.From).
var testenv env.Environment

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	// controller-runtime (used by the ssa applier) warns with a stack trace
	// when no logger is set; the harness reports through its own lines.
	ctrllog.SetLogger(logr.Discard())
	fleetenv.RegisterFlags(flag.CommandLine)
	flag.Parse()
	opts, err := options()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: configuration:", err)
		return 2
	}
	// Waits and checks end a reserve before `go test -timeout` would panic
	// the binary, so that the teardown still deletes the clusters.
	start := time.Now()
	opts.Deadline = testDeadline(start)
	ctx, cancel := fleetenv.WorkContext(context.Background(), start, opts.Deadline)
	defer cancel()
	ctx, interrupts := fleetenv.WatchInterrupts(ctx)
	defer interrupts.Stop()
	if testing.Short() {
		// Every test skips (see perEnv): -short runs no kind cluster.
		return m.Run()
	}
	// A cluster by kubeconfig with in-cluster servers needs no engine.
	if err := dockerIfNeeded(ctx, opts); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "e2e: CI=true and this machine cannot run kind clusters:", err)
			return 1
		}
		// Every test skips with the reason (see perEnv).
		return m.Run()
	}
	run := fleetenv.New(opts, os.Stdout)
	testenv, err = env.NewWithContext(ctx, envconf.New())
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	for _, step := range bringUp(opts) {
		testenv.Setup(run.Step(step))
	}
	testenv.BeforeEachTest(run.BeforeEachTest)
	testenv.AfterEachTest(run.AfterEachTest)
	// e2e-framework only logs a Finish error: a teardown that left
	// something behind must fail the run, saying what was left.
	var teardown error
	testenv.Finish(func(ctx context.Context, _ *envconf.Config) (context.Context, error) {
		teardown = run.Down(ctx)
		return ctx, teardown
	})
	code := testenv.Run(m)
	if teardown != nil {
		fmt.Fprintln(os.Stderr, "e2e: teardown failed:", teardown)
		code = 1
	}
	return interrupts.ExitCode(code)
}

// bringUp is the harness's flow as this suite runs it, one named step each
// (harness/fleetenv/step_*.go); TestBringUpIsTheHarnessFlow keeps it equal
// to fleetenv.BringUp, which the scenarios and the bench run.
func bringUp(opts fleetenv.Options) []fleetenv.Step {
	steps := []fleetenv.Step{
		fleetenv.OfflineChecks(), // the fleet builds, before anything exists
		fleetenv.ChartServer(),   // the fixture charts, on loopback
		fleetenv.Preflight(),     // every HelmRelease resolved and rendered
		fleetenv.Clusters(),      // kind clusters; their image load and Service network start
		fleetenv.Servers(),       // git and charts where the clusters reach them
		fleetenv.FluxInstall(),   // Flux, while the clusters finish
		fleetenv.Sync(),          // clusters/<env> applied, the revision fetched
		fleetenv.Wait(),          // every Flux object and workload Ready, or why not
	}
	if opts.Base != "" {
		steps = append(steps, fleetenv.UpgradeFromBase()) // the base rolled to the head
	}
	if opts.FluxBase != "" {
		steps = append(steps, fleetenv.FluxUpgrade()) // Flux upgraded in place under the fleet
	}
	return steps
}

// dockerIfNeeded checks for a Docker engine when the run needs one
// (kind clusters, or servers on the kind network).
func dockerIfNeeded(ctx context.Context, opts fleetenv.Options) error {
	if !opts.NeedsDocker() {
		return nil
	}
	return fleetenv.Available(ctx)
}

// options resolves the run configuration from the parsed flags and the
// environment; the repository root is one level up.
func options() (fleetenv.Options, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return fleetenv.Options{}, err
	}
	return fleetenv.ResolveOptions(context.Background(), root, flag.CommandLine, os.LookupEnv)
}

// testDeadline is when `go test -timeout` panics the binary; zero without
// a timeout.
func testDeadline(start time.Time) time.Time {
	timeout := time.Duration(0)
	if f := flag.Lookup("test.timeout"); f != nil {
		timeout, _ = time.ParseDuration(f.Value.String())
	}
	if timeout <= 0 {
		return time.Time{}
	}
	return start.Add(timeout)
}
