// Package chartservertest makes chart sets for the tests of the packages
// that serve or push them.
package chartservertest

import (
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// Set packages a minimal chart of each name and version, as the harness
// packages a fleet's charts, into the set it serves and pushes.
func Set(t testing.TB, charts ...[2]string) chartrepo.Set {
	t.Helper()
	set, err := chartserver.Package(t.Context(), []string{testsupport.WriteCharts(t, charts...)}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return set
}
