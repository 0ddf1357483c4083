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
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/hack/internal/repo"
	"github.com/flux-fleet/flux-fleet/harness/preflight"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("preflight", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fleet := fs.String("fleet", "", "fleet directory holding clusters/ (default: $FLEET_DIR, else the repository root)")
	envs := fs.String("env", "", "comma-separated environments (clusters/<env>) to check; empty: all")
	kubeVersion := fs.String("kube-version", "", "Kubernetes version to render for (default: KUBERNETES_VERSION of "+preflight.KitVersionsFile+")")
	cacheDir := fs.String("cache", "", "chart cache directory (default: ${XDG_CACHE_HOME:-~/.cache}/flux-fleet/preflight)")
	timeout := fs.Duration("timeout", 3*time.Minute, "bound on the whole run")
	requestTimeout := fs.Duration("request-timeout", 15*time.Second, "bound on each network request")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "preflight: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return 2
	}
	dir, err := repo.FleetDir(*fleet)
	if err != nil {
		fmt.Fprintf(stderr, "preflight: %v (pass -fleet DIR)\n", err)
		return 2
	}
	kv := *kubeVersion
	if kv == "" {
		root, err := repo.Root()
		if err == nil {
			kv, err = preflight.KitKubeVersion(root)
		}
		if err != nil {
			fmt.Fprintf(stderr, "preflight: %v (pass -kube-version)\n", err)
			return 2
		}
	}
	var names []string
	for _, e := range strings.Split(*envs, ",") {
		if e = strings.TrimSpace(e); e != "" {
			names = append(names, e)
		}
	}
	report, err := preflight.Run(ctx, preflight.Options{
		FleetDir:       dir,
		Envs:           names,
		KubeVersion:    kv,
		CacheDir:       *cacheDir,
		Out:            stdout,
		Timeout:        *timeout,
		RequestTimeout: *requestTimeout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 2
	}
	if report.OnlyUnreachable() {
		fmt.Fprintln(stdout, "every finding is an unreachable source or registry: check the network (or proxy) before the fleet")
	}
	if !report.OK() {
		return 1
	}
	return 0
}
