package e2e

import (
	"slices"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
)

// TestBringUpIsTheHarnessFlow: the flow TestMain spells out is the one the
// scenarios and the bench run, with and without an upgrade.
func TestBringUpIsTheHarnessFlow(t *testing.T) {
	names := func(steps []fleetenv.Step) []string {
		var out []string
		for _, s := range steps {
			out = append(out, s.Name)
		}
		return out
	}
	for _, opts := range []fleetenv.Options{{}, {Base: "HEAD~1"}, {FluxBase: "v2.7.3"}, {Base: "HEAD~1", FluxBase: "v2.7.3"}} {
		got, want := names(bringUp(opts)), names(fleetenv.BringUp(opts))
		if !slices.Equal(got, want) {
			t.Errorf("base %q: TestMain runs %q, fleetenv.BringUp %q", opts.Base, got, want)
		}
	}
	if got := names(bringUp(fleetenv.Options{Base: "HEAD~1"})); got[len(got)-1] != "upgrade" {
		t.Errorf("with a base the last step is %q, want upgrade", got[len(got)-1])
	}
}
