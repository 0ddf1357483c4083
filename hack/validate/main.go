// Command validate checks a Flux fleet offline (no cluster, no network): it
// builds every clusters/<env> directory like kustomize-controller, prints the
// resulting tree per environment and every problem found.
//
//	go run ./hack/validate [-fleet DIR] [-flux-version v2.7.3,v2.9.5]
//
// The fleet directory defaults to $FLEET_DIR, else the repository root. The
// fleet is judged by what each Flux release accepts (API versions, fields,
// strict substitution); the default is the release in go.mod.
// Exit status: 0 clean, 1 findings, 2 usage or load error.
package main

import (
	"context"
	"fmt"
	"io"
	"strings"

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
	if !cmd.Parse(args) {
		return cli.ExitError
	}
	dir, err := repo.FleetDir(*fleet)
	if err != nil {
		return cmd.Error(err, "pass -fleet DIR")
	}
	res, err := validate.ValidateWith(ctx, dir, validate.Options{FluxVersions: cli.List(*fluxVersions)})
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
