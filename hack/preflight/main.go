// Command preflight checks, before any cluster exists, that every
// HelmRelease of a fleet resolves, renders and uses images that exist
// (package harness/preflight). It needs the fleet's chart sources and
// registries (the network, for the real fleet).
//
//	go run ./hack/preflight [-fleet DIR] [-env staging,production]
//
// The fleet directory defaults to $FLEET_DIR, else the repository root;
// charts are rendered for the kind node's Kubernetes version, read from
// hack/kit/versions.env. Exit status: 0 clean, 1 findings, 2 usage or load error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/hack/internal/cli"
	"github.com/flux-fleet/flux-fleet/hack/internal/repo"
	"github.com/flux-fleet/flux-fleet/harness/preflight"
	"helm.sh/helm/v4/pkg/chart/common"
)

func main() { cli.Main(run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := cli.New("preflight", stdout, stderr)
	fs := cmd.Flags
	fleet := fs.String("fleet", "", "fleet directory holding clusters/ (default: $FLEET_DIR, else the repository root)")
	envs := fs.String("env", "", "comma-separated environments (clusters/<env>) to check; empty: all")
	kubeVersion := fs.String("kube-version", "", "Kubernetes version to render for (default: KUBERNETES_VERSION of "+preflight.KitVersionsFile+")")
	cacheDir := fs.String("cache", "", "chart cache directory (default: ${XDG_CACHE_HOME:-~/.cache}/flux-fleet/preflight)")
	timeout := fs.Duration("timeout", 3*time.Minute, "bound on the whole run")
	requestTimeout := fs.Duration("request-timeout", 15*time.Second, "bound on each network request")
	if !cmd.Parse(args) {
		return cli.ExitError
	}
	if err := checkFlags(*kubeVersion, *timeout, *requestTimeout); err != nil {
		return cmd.Error(err, "")
	}
	dir, err := repo.FleetDir(*fleet)
	if err != nil {
		return cmd.Error(err, "pass -fleet DIR")
	}
	kv := *kubeVersion
	if kv == "" {
		root, err := repo.Root()
		if err == nil {
			kv, err = preflight.KitKubeVersion(root)
		}
		if err != nil {
			return cmd.Error(err, "pass -kube-version")
		}
	}
	// The run's own bound, so that its end is told from another error.
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	report, err := preflight.Run(ctx, preflight.Options{
		FleetDir:       dir,
		Envs:           cli.List(*envs),
		KubeVersion:    kv,
		CacheDir:       *cacheDir,
		Out:            stdout,
		Timeout:        *timeout,
		RequestTimeout: *requestTimeout,
	})
	if err != nil {
		return cmd.Error(ranOut(ctx, *timeout, err), "")
	}
	if report.OnlyUnreachable() {
		fmt.Fprintln(stdout, "every finding is an unreachable source or registry: check the network (or proxy) before the fleet")
	}
	return cli.Result(report.OK())
}

// checkFlags refuses the flag values preflight.Run would refuse or read as
// its defaults, naming the flag rather than the library's Options field.
func checkFlags(kubeVersion string, timeout, requestTimeout time.Duration) error {
	if kubeVersion != "" {
		// The parser preflight.Run renders with.
		if _, err := common.ParseKubeVersion(kubeVersion); err != nil {
			return fmt.Errorf("-kube-version %q: want a Kubernetes version such as v1.37.2: %w", kubeVersion, err)
		}
	}
	if timeout <= 0 {
		return fmt.Errorf("-timeout %s: want a positive duration such as 3m", timeout)
	}
	if requestTimeout <= 0 {
		return fmt.Errorf("-request-timeout %s: want a positive duration such as 15s", requestTimeout)
	}
	return nil
}

// ranOut names -timeout when the run's bound (ctx) ended it: the library
// then fails with "<what it was doing>: context deadline exceeded".
func ranOut(ctx context.Context, timeout time.Duration, err error) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	doing, cut := strings.CutSuffix(strings.TrimPrefix(err.Error(), "preflight: "), ": "+context.DeadlineExceeded.Error())
	if !cut {
		return err // an error of its own, not the bound's
	}
	return fmt.Errorf("-timeout %s ran out while %s", timeout, doing)
}
