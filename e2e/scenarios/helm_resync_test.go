package scenarios

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// helmValueResync is the edit → re-sync loop on the Helm path: a value
// of the podinfo HelmRelease is edited in the (copied) fleet, published,
// upgraded by helm-controller and live in the running Deployment, on the
// same cluster, in seconds.
func helmValueResync(t *testing.T, shared *sharedCluster) {
	e, took := shared.bringUp(t, "helm")
	if e.Ready != nil {
		t.Fatalf("the Helm fixture fleet did not converge: %v", e.Ready)
	}
	t.Logf("green in %s", took.Round(100*time.Millisecond))

	b := make([]byte, 4)
	_, _ = rand.Read(b)
	message := "resync-" + hex.EncodeToString(b)
	resync := shared.edit(t, func(fleet string) {
		patch := filepath.Join(fleet, "apps", "staging", "podinfo-patch.yaml")
		data, err := os.ReadFile(patch)
		if err != nil {
			t.Fatal(err)
		}
		// podinfo's chart turns ui.message into PODINFO_UI_MESSAGE.
		edited := strings.Replace(string(data), "  values:\n", "  values:\n    ui:\n      message: "+message+"\n", 1)
		if edited == string(data) {
			t.Fatalf("%s has no values: block to edit", patch)
		}
		if err := os.WriteFile(patch, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	if e.Ready != nil {
		t.Fatalf("not Ready after the edit: %v", e.Ready)
	}
	d, err := e.Clients.Kube.AppsV1().Deployments("podinfo").Get(t.Context(), "podinfo", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading Deployment podinfo/podinfo: %v", err)
	}
	var got string
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, env := range c.Env {
			if env.Name == "PODINFO_UI_MESSAGE" {
				got = env.Value
			}
		}
	}
	if got != message {
		t.Fatalf("Deployment podinfo/podinfo has PODINFO_UI_MESSAGE=%q after the re-sync, want %q", got, message)
	}
	if d.Status.UpdatedReplicas != d.Status.Replicas || d.Status.ObservedGeneration != d.Generation {
		t.Fatalf("Deployment podinfo/podinfo not rolled out: %+v", d.Status)
	}
	t.Logf("edited HelmRelease value live in Deployment podinfo/podinfo %s after publishing", resync.Round(100*time.Millisecond))
}
