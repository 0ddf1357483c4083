package readiness

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj/fluxobjtest"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// TestMessagesScrubbedBeforeCut: helm-controller's message quotes a
// rejected value across the point where a progress line is cut short
// (200 characters). The value is
// replaced before the cut, so no part of it reaches the line or the
// errors the run records as the outcome; with raw values the line shows the
// message as it is.
func TestMessagesScrubbedBeforeCut(t *testing.T) {
	planted := "PLANTED-" + strings.Repeat("s3cr3t", 10)
	msg := "Helm install failed for release redis/cache: values don't meet the specifications of the schema(s) in the following chart(s):\nredis:\n- at '/auth/dbPassword': '" +
		planted + "' does not match pattern '^[a-z]+$'"
	hr := fluxobjtest.Object("HelmRelease", "redis", "cache", 1, 1, map[string]any{},
		fluxobjtest.Cond("Ready", "False", "InstallFailed", msg))
	_ = unstructured.SetNestedField(hr.Object, planted, "spec", "values", "auth", "dbPassword")

	for _, raw := range []bool{false, true} {
		var out bytes.Buffer
		r := newTestRun(&out)
		r.opts.RawValues = raw
		r.fluxStores["HelmRelease"] = cache.NewStore(cache.MetaNamespaceKeyFunc)
		if err := r.fluxStores["HelmRelease"].Add(hr); err != nil {
			t.Fatal(err)
		}
		_, _, err := r.evaluate(time.Now())
		// What the run records as the outcome: the failure, or what was
		// pending when the wait ended.
		shown := out.String() + "\n" + r.notReady(nil).Error()
		if err != nil {
			shown += "\n" + err.Error()
		}
		if raw {
			if !strings.Contains(shown, planted[:20]) {
				t.Errorf("raw values: the output does not quote the value as it is:\n%s", shown)
			}
			continue
		}
		if strings.Contains(shown, planted[:12]) || strings.Contains(shown, "s3cr3ts3cr3t") {
			t.Errorf("part of the planted value reached the output:\n%s", shown)
		}
		if digest := "<" + record.ValueDigest(planted) + ">"; !strings.Contains(shown, digest) {
			t.Errorf("output lacks the value's digest %s:\n%s", digest, shown)
		}
	}
}
