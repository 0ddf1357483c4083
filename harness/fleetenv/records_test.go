package fleetenv

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// TestScrubOutcome: a record's outcome quotes helm-controller's message,
// which quotes the rejected value; the record holds its digest instead.
func TestScrubOutcome(t *testing.T) {
	const planted = "PLANTED-hunter2"
	hr := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
		"metadata": map[string]any{"name": "cache", "namespace": "redis"},
		"spec":     map[string]any{"values": map[string]any{"dbPassword": planted}}}}
	scrub := record.NewScrubbers([]*unstructured.Unstructured{hr})
	msg := "values don't meet the specifications: at '/dbPassword': '" + planted + "' does not match pattern '^x'"
	for _, err := range []error{
		&readiness.FailureError{Env: "staging", Object: "HelmRelease/redis/cache", Reason: "InstallFailed", Message: msg, Terminal: true},
		&readiness.NotReadyError{Env: "staging", Pending: []readiness.Pending{{Object: "HelmRelease/redis/cache", Reason: "InstallFailed", Message: msg}}},
	} {
		got := scrubOutcome(err, scrub)
		if strings.Contains(got, planted) || !strings.Contains(got, "at '/dbPassword': '<"+record.ValueDigest(planted)+">'") {
			t.Errorf("outcome %q, want the value's digest in its place", got)
		}
		if raw := scrubOutcome(err, nil); raw != err.Error() {
			t.Errorf("with raw values the outcome is %q, want %q", raw, err.Error())
		}
	}
}
