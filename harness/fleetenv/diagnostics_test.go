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
	clients := forbiddingAPI(t, true)
	artifacts := filepath.Join(t.TempDir(), "artifacts")
	d := &diagnostics{opts: Options{ArtifactsDir: artifacts}}
	e := &Environment{
		Name:    "staging",
		Cluster: &cluster.Cluster{Name: "hx-fake"},
		Clients: clients,
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

// Diagnostics that cannot read the fleet's values export no kind logs: the
// controllers' logs in them could quote those values unscrubbed.
func TestSummarizeWithoutValuesExportsNoKindLogs(t *testing.T) {
	kind := testsupport.FakeKindLogExport(t, "hx-fake", plantedProxy, false)
	clients := forbiddingAPI(t, false)
	artifacts := filepath.Join(t.TempDir(), "artifacts")
	d := &diagnostics{opts: Options{ArtifactsDir: artifacts}}
	e := &Environment{Name: "staging", Cluster: &cluster.Cluster{Name: "hx-fake"}, Clients: clients}
	summary := d.summarize(t.Context(), e)
	if !strings.Contains(summary, "(kind node logs not exported: reading the values to scrub: listing HelmReleases: ") ||
		!strings.Contains(summary, "E2E_ARTIFACTS_RAW_VALUES=true keeps them unscrubbed)") {
		t.Errorf("the summary does not say why kind's logs were not exported:\n%s", summary)
	}
	if _, err := os.Stat(kind.Done); err == nil {
		t.Error("kind's export ran although the values to scrub its logs of could not be read")
	}
	testsupport.AssertPrivateTree(t, artifacts, plantedProxy)
}

// forbiddingAPI is the clients of an API server that forbids every request
// but, with values, the lists of HelmReleases and Kustomizations (none).
func forbiddingAPI(t *testing.T, values bool) *fluxobj.Clients {
	t.Helper()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if values && (strings.HasSuffix(r.URL.Path, "/helmreleases") || strings.HasSuffix(r.URL.Path, "/kustomizations")) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"apiVersion":"v1","kind":"List","metadata":{},"items":[]}`))
			return
		}
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	t.Cleanup(api.Close)
	clients, err := fluxobj.NewClients(&rest.Config{Host: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	return clients
}
