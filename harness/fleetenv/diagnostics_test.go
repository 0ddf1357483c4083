package fleetenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// plantedProxy is the password of the proxy the fake node is configured
// with; no artifact may carry it.
const plantedProxy = "PLANTED-proxy-pw-51d7"

// Diagnostics whose time runs out while kind exports its logs leave
// nothing of kind's in the artifacts, however late kind writes, and every
// artifact is private.
func TestSummarizeOutOfTimeLeavesNoKindLogsUnredacted(t *testing.T) {
	kind := testsupport.FakeKindLogExport(t, "hx-fake", plantedProxy, true)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	defer api.Close()
	artifacts := filepath.Join(t.TempDir(), "artifacts")
	d := &diagnostics{opts: Options{ArtifactsDir: artifacts}}
	e := &Environment{
		Name:    "staging",
		Cluster: &cluster.Cluster{Name: "hx-fake"},
		Clients: &fluxobj.Clients{Config: &rest.Config{Host: api.URL}},
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	kind.CancelOnceStarted(t, cancel, context.DeadlineExceeded)
	summary := d.summarize(ctx, e)
	if !strings.Contains(summary, "kind node logs not exported") {
		t.Errorf("the summary does not say the export was cut short:\n%s", summary)
	}
	testsupport.WaitFor(t, "kind's inspect", func() bool { _, err := os.Stat(kind.Done); return err == nil })
	testsupport.WaitFor(t, "the temporary directory's removal", func() bool { entries, _ := os.ReadDir(kind.TmpDir); return len(entries) == 0 })
	testsupport.AssertPrivateTree(t, artifacts, plantedProxy)
}
