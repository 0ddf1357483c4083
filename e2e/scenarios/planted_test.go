package scenarios

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// assertPlantedValueHidden checks the value fixtures/fleets/helm-bad-value
// plants where Helm quotes it: real helm-controller puts it in the
// HelmRelease's condition and its own log, and the run shows its digest
// wherever it writes (its log, records, reports, artifacts — the
// controllers' logs as read from the API and kind's copy of the node's
// /var/log among them), never the value.
func assertPlantedValueHidden(t *testing.T, e *fleetenv.Environment, s *sharedCluster) {
	t.Helper()
	k, _ := fluxobj.KindOf("HelmRelease")
	hr, err := e.Clients.Dynamic.Resource(k.GVR()).Namespace("nginx").Get(t.Context(), "nginx", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading HelmRelease nginx/nginx: %v", err)
	}
	ready := fluxobj.Condition(hr, meta.ReadyCondition)
	if ready == nil || !strings.Contains(ready.Message, testsupport.PlantedValue) {
		// Checked in the cluster, never logged: it holds the value.
		t.Fatal("HelmRelease nginx/nginx's Ready message does not quote the planted value, so its absence below would prove nothing")
	}
	artifacts := s.run.Options().ArtifactsDir
	assertTokenNowhere(t, testsupport.PlantedValue, s.log.String(), artifacts)
	digest := "<" + testsupport.PlantedValueDigest + ">"
	seen := map[string]bool{}
	err = filepath.WalkDir(artifacts, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !strings.Contains(path, "helm-controller") {
			return err
		}
		data, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(data), digest) {
			where := "the API's controller logs"
			if strings.Contains(path, string(filepath.Separator)+"kind-logs"+string(filepath.Separator)) {
				where = "kind's node logs"
			}
			seen[where] = true
		}
		return err
	})
	if err != nil {
		t.Fatalf("reading %s: %v", artifacts, err)
	}
	for _, where := range []string{"the API's controller logs", "kind's node logs"} {
		if !seen[where] {
			t.Errorf("no helm-controller log in %s shows the planted value's digest %s: the scrubbing there went untested", where, digest)
		}
	}
}
