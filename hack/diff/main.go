// Command diff shows what a change does to the clusters before any cluster
// exists: it renders the fleet at two revisions — every object each Flux
// Kustomization applies and every object each HelmRelease installs — and
// prints, per environment, the objects added, removed and changed, each
// HelmRelease's chart and values changes, and the upgrade hazards
// (package harness/renderdiff).
//
//	go run ./hack/diff [-base origin/main] [-head REV] [-env staging,production] [-fleet DIR] [-o text|markdown|json]
//
// The head defaults to the working tree, uncommitted edits included. The
// fixture fleets' chart server is started on loopback with the chart
// directories of each revision (-charts). Exit status, like git diff
// --exit-code: 0 no change, 1 changes, 2 errors (a bad revision, a fleet that
// does not build, a chart source that cannot be reached).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/flux-fleet/flux-fleet/hack/internal/cli"
	"github.com/flux-fleet/flux-fleet/hack/internal/repo"
	"github.com/flux-fleet/flux-fleet/harness/preflight"
	"github.com/flux-fleet/flux-fleet/harness/renderdiff"
)

func main() { cli.Main(run) }

// flags are the command's options as parsed.
type flags struct {
	base, head, envs, fleet, format, charts, kubeVersion, cacheDir string
	timeout, requestTimeout                                        time.Duration
}

func parseFlags(cmd *cli.Command, args []string) (*flags, bool) {
	f := &flags{}
	fs := cmd.Flags
	fs.StringVar(&f.base, "base", "origin/main", "git revision to compare against")
	fs.StringVar(&f.head, "head", "", "git revision to compare (default: the working tree, uncommitted edits included)")
	fs.StringVar(&f.envs, "env", "", "comma-separated environments (clusters/<env>); empty: all")
	fs.StringVar(&f.fleet, "fleet", "", "fleet directory holding clusters/ (default: $FLEET_DIR, else the repository root)")
	fs.StringVar(&f.format, "o", "text", "output format: text, markdown or json")
	fs.StringVar(&f.charts, "charts", "", "comma-separated chart directories served as the fixture fleets' chart server, taken from each revision when inside the repository "+
		"(default: fixtures/charts and the offline kit's extra charts)")
	fs.StringVar(&f.kubeVersion, "kube-version", "", "Kubernetes version to render charts for (default: KUBERNETES_VERSION of "+preflight.KitVersionsFile+")")
	fs.StringVar(&f.cacheDir, "cache", "", "chart cache directory (default: the pre-flight's)")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "bound on the whole run")
	fs.DurationVar(&f.requestTimeout, "request-timeout", 15*time.Second, "bound on each network request")
	if !cmd.Parse(args) {
		return nil, false
	}
	if !slices.Contains([]string{"text", "markdown", "json"}, f.format) {
		fmt.Fprintf(cmd.Stderr, "diff: -o %q: want text, markdown or json\n", f.format)
		return nil, false
	}
	// A bound already past would fail the first git call with a misleading cause.
	if f.timeout <= 0 {
		fmt.Fprintf(cmd.Stderr, "diff: -timeout %s: want a positive duration\n", f.timeout)
		return nil, false
	}
	return f, true
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	start := time.Now()
	cmd := cli.New("diff", stdout, stderr)
	f, ok := parseFlags(cmd, args)
	if !ok {
		return cli.ExitError
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	opts, err := f.options(stderr)
	if err != nil {
		return cmd.Error(err, "")
	}
	work, err := os.MkdirTemp("", "fleet-diff-")
	if err != nil {
		return cmd.Error(fmt.Errorf("creating a work directory: %w", err), "")
	}
	defer os.RemoveAll(work)
	opts.TempDir = work
	base, head, err := f.trees(ctx, work)
	if err != nil {
		return cmd.Error(err, "")
	}
	report, err := renderdiff.Compare(ctx, base, head, opts)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (the run's bound -timeout %s passed)", err, f.timeout)
		}
		return cmd.Error(err, "")
	}
	if err := write(stdout, report, f.format); err != nil {
		return cmd.Error(err, "")
	}
	fmt.Fprintf(stderr, "diff: %d environment(s), %s → %s, rendered and compared in %.2fs\n",
		len(report.Envs), base.Label, head.Label, time.Since(start).Seconds())
	if report.Changed() {
		return cli.ExitFindings
	}
	return cli.ExitClean
}

// options are the render options the flags ask for.
func (f *flags) options(stderr io.Writer) (renderdiff.Options, error) {
	opts := renderdiff.Options{Envs: cli.List(f.envs), KubeVersion: f.kubeVersion, CacheDir: f.cacheDir,
		Timeout: f.timeout, RequestTimeout: f.requestTimeout}
	if opts.KubeVersion == "" {
		root, err := repo.Root()
		if err == nil {
			opts.KubeVersion, err = preflight.KitKubeVersion(root)
		}
		if err != nil {
			return opts, fmt.Errorf("%w (pass -kube-version)", err)
		}
	}
	return opts, nil
}

// write prints the report in the chosen format; the terminal view is
// coloured only on a terminal, and never with NO_COLOR set.
func write(stdout io.Writer, report *renderdiff.Report, format string) error {
	switch format {
	case "markdown":
		return report.WriteMarkdown(stdout)
	case "json":
		return report.WriteJSON(stdout)
	}
	return report.WriteText(stdout, isTerminal(stdout) && os.Getenv("NO_COLOR") == "")
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
