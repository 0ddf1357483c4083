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
	"fmt"
	"io"
	"time"

	"github.com/flux-fleet/flux-fleet/hack/internal/cli"
	"github.com/flux-fleet/flux-fleet/hack/internal/repo"
	"github.com/flux-fleet/flux-fleet/harness/preflight"
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
		return cmd.Error(err, "")
	}
	if report.OnlyUnreachable() {
		fmt.Fprintln(stdout, "every finding is an unreachable source or registry: check the network (or proxy) before the fleet")
	}
	return cli.Result(report.OK())
}
