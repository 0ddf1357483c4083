// Command validate checks a Flux fleet offline (no cluster, no network): it
// builds every clusters/<env> directory like kustomize-controller, prints the
// resulting tree per environment and every problem found.
//
//	go run ./hack/validate [-fleet DIR] [-flux-version v2.7.3,v2.9.5] [-timeout 3m]
//
// The fleet directory defaults to $FLEET_DIR, else the repository root. The
// fleet is judged by what each Flux release accepts (API versions, fields,
// strict substitution); the default is the release in go.mod.
// Exit status: 0 clean, 1 findings, 2 usage or load error (a run past
// -timeout included).
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
	"github.com/flux-fleet/flux-fleet/harness/validate"
)

func main() { cli.Main(run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := cli.New("validate", stdout, stderr)
	fleet := cmd.Flags.String("fleet", "", "fleet directory holding clusters/, apps/, infrastructure/ (default: $FLEET_DIR, else the repository root)")
	quiet := cmd.Flags.Bool("q", false, "print findings only, not the trees")
	fluxVersions := cmd.Flags.String("flux-version", "", "comma-separated Flux releases the fleet must be accepted by, e.g. v2.7.3,v2.9.5 (default: the one in go.mod)")
	timeout := cmd.Flags.Duration("timeout", 3*time.Minute, "bound on the whole run")
	if !cmd.Parse(args) {
		return cli.ExitError
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "validate: -timeout %s: want a positive duration\n", *timeout)
		return cli.ExitError
	}
	dir, err := repo.FleetDir(*fleet)
	if err != nil {
		return cmd.Error(err, "pass -fleet DIR")
	}
	opts := validate.Options{FluxVersions: cli.List(*fluxVersions)}
	res, err := within(ctx, dir, *timeout, func(ctx context.Context) (*validate.Result, error) {
		return validate.ValidateWith(ctx, dir, opts)
	})
	if err != nil {
		return cmd.Error(err, "")
	}
	if !*quiet {
		for _, env := range res.Envs {
			fmt.Fprintln(stdout, res.Tree(env.Name))
		}
	}
	for _, f := range res.Findings {
		fmt.Fprintf(stdout, "FAIL %s\n", f)
	}
	fmt.Fprintf(stdout, "validated %d environments, %d objects for Flux %s in %.2fs: %d findings\n",
		len(res.Envs), res.ObjectCount(), strings.Join(res.FluxVersions, ", "), res.Duration.Seconds(), len(res.Findings))
	return cli.Result(res.OK())
}

// within runs validation under the -timeout bound. kustomize does not
// honour ctx, so the validation runs aside and is abandoned at the bound:
// the process exits right after.
func within(ctx context.Context, dir string, timeout time.Duration, validation func(context.Context) (*validate.Result, error)) (*validate.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type outcome struct {
		res *validate.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := validation(ctx)
		done <- outcome{res, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-ctx.Done():
		out.err = ctx.Err()
	}
	if out.err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("validating fleet %s took longer than -timeout %s", dir, timeout)
	}
	if out.err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("validating fleet %s: %w", dir, ctx.Err())
	}
	return out.res, out.err
}
