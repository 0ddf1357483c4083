// Command validate checks a Flux fleet offline (no cluster, no network): it
// builds every clusters/<env> directory like kustomize-controller, prints the
// resulting tree per environment and every problem found.
//
//	go run ./hack/validate [-fleet DIR]
//
// The fleet directory defaults to $FLEET_DIR, else the repository root.
// Exit status: 0 clean, 1 findings, 2 usage or load error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/flux-fleet/flux-fleet/hack/internal/repo"
	"github.com/flux-fleet/flux-fleet/harness/validate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fleet := fs.String("fleet", "", "fleet directory holding clusters/, apps/, infrastructure/ (default: $FLEET_DIR, else the repository root)")
	quiet := fs.Bool("q", false, "print findings only, not the trees")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "validate: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return 2
	}
	dir, err := repo.FleetDir(*fleet)
	if err != nil {
		fmt.Fprintf(stderr, "validate: %v (pass -fleet DIR)\n", err)
		return 2
	}
	res, err := validate.Validate(ctx, dir)
	if err != nil {
		fmt.Fprintf(stderr, "validate: %v\n", err)
		return 2
	}
	if !*quiet {
		for _, env := range res.Envs {
			fmt.Fprintln(stdout, res.Tree(env.Name))
		}
	}
	for _, f := range res.Findings {
		fmt.Fprintf(stdout, "FAIL %s\n", f)
	}
	fmt.Fprintf(stdout, "validated %d environments, %d objects in %.2fs: %d findings\n",
		len(res.Envs), res.ObjectCount(), res.Duration.Seconds(), len(res.Findings))
	if !res.OK() {
		return 1
	}
	return 0
}
