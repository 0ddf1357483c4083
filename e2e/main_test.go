// Package e2e is the main job: it brings up every environment of a fleet on
// its own kind cluster (staging and production by default), syncs
// clusters/<env> from a local git server and proves, per environment, that
// the Flux controllers, the infrastructure and the apps are Ready and that
// the rollout works: traffic through the nginx ingress reaches the app, and
// the app uses the redis the infrastructure installed.
//
// Configuration is by environment variables (README, "Configuration").
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

	"github.com/flux-fleet/flux-fleet/harness/envfuncs"
)

var (
	testenv env.Environment
	run     *envfuncs.Run
	// skipReason is set when this machine cannot run the suite at all.
	skipReason string
)

func TestMain(m *testing.M) {
	// controller-runtime (used by the ssa applier) warns with a stack trace
	// when no logger is set; the harness reports through its own lines.
	ctrllog.SetLogger(logr.Discard())
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	opts, err := envfuncs.OptionsFromEnv(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: configuration:", err)
		os.Exit(2)
	}
	if reason := envfuncs.Unavailable(context.Background()); reason != "" {
		skipReason = reason
		os.Exit(m.Run())
	}
	run = envfuncs.New(opts, os.Stdout)
	ctx, cancel := contextBeforeTestTimeout()
	defer cancel()
	testenv, err = env.NewWithContext(ctx, envconf.New())
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	testenv.Setup(run.Setup)
	testenv.AfterEachTest(run.AfterEachTest)
	testenv.Finish(run.Finish)
	code := testenv.Run(m)
	cancel()
	os.Exit(code)
}

// contextBeforeTestTimeout ends shortly before `go test -timeout` would
// panic the binary, so that waits give up and Finish still deletes the
// clusters this run created.
func contextBeforeTestTimeout() (context.Context, context.CancelFunc) {
	flag.Parse()
	timeout := time.Duration(0)
	if f := flag.Lookup("test.timeout"); f != nil {
		timeout, _ = time.ParseDuration(f.Value.String())
	}
	if timeout <= 0 {
		return context.WithCancel(context.Background())
	}
	margin := min(2*time.Minute, timeout/5)
	return context.WithTimeout(context.Background(), timeout-margin)
}
