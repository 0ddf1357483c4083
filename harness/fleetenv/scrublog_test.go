package fleetenv

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// TestProgressOutScrubsValues: the wait's progress line quotes
// helm-controller's message, which quotes the rejected value; the run log
// gets its digest, unless raw values were asked for.
func TestProgressOutScrubsValues(t *testing.T) {
	const planted = "PLANTED-hunter2"
	hr := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
		"metadata": map[string]any{"name": "cache", "namespace": "redis"},
		"spec":     map[string]any{"values": map[string]any{"dbPassword": planted}}}}
	listKinds := map[schema.GroupVersionResource]string{}
	for _, kind := range []string{"HelmRelease", "Kustomization"} {
		k, _ := fluxobj.KindOf(kind)
		listKinds[k.GVR()] = kind + "List"
	}
	e := &Environment{Name: "staging", Clients: &fluxobj.Clients{
		Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, hr)}}
	line := "13:31:41 staging  HelmRelease/redis/cache  Failed  InstallFailed: at '/dbPassword': '" + planted + "' does not match pattern '^x'\n"
	other := "13:31:41 staging  Deployment/apps/x  NotReady  " + planted + "\n"

	var out strings.Builder
	w := progressOut(&out, e, Options{})
	for _, l := range []string{line, other} {
		if n, err := w.Write([]byte(l)); n != len(l) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(l))
		}
	}
	want := strings.Replace(line, planted, "<"+record.ValueDigest(planted)+">", 1) + other
	if out.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", out.String(), want)
	}
	var raw strings.Builder
	_, _ = progressOut(&raw, e, Options{RawValues: true}).Write([]byte(line))
	if raw.String() != line {
		t.Errorf("with raw values the log is %q, want the line as it was", raw.String())
	}
}
