package readiness

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj/fluxobjtest"
)

const (
	repeatHookFailed = "Helm install failed for release apps/podinfo with chart podinfo@6.9.2: failed post-install: 1 error occurred:\n\t* job podinfo-hook failed: BackoffLimitExceeded"
	repeatTimedOut   = "Helm install failed for release apps/podinfo with chart podinfo@6.9.2: context deadline exceeded"
	// repeatVerdict is the whole fail-fast error for two equal hook
	// failures: the user-facing line issue #19 asks for, so spelled out.
	repeatVerdict = "staging: HelmRelease/apps/podinfo keeps failing: InstallFailed: install failed twice in a row with the same reason (attempt 2; 1 of 3 remediation retries used, spec.install.remediation.retries): " + repeatHookFailed
)

var repeatHRGVR = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}

// podinfoAt is HelmRelease apps/podinfo (spec.install.remediation.retries
// 3) at generation gen as helm-controller writes it along one install
// attempt: failures counted failures so far, and Released=False with msg
// once one failed; running marks an attempt in progress (Ready Unknown),
// otherwise Ready reports the uninstall that remediated the failure.
func podinfoAt(gen, failures int64, msg string, running bool) *unstructured.Unstructured {
	ready := fluxobjtest.Cond("Ready", "False", "UninstallSucceeded", "Helm uninstall succeeded for release apps/podinfo")
	if running {
		ready = fluxobjtest.Cond("Ready", "Unknown", "Progressing", "Running 'install' action with timeout of 5m0s")
	}
	conds := []map[string]any{ready}
	if failures > 0 {
		conds = append(conds, fluxobjtest.Cond("Released", "False", "InstallFailed", msg))
	}
	u := fluxobjtest.Object("HelmRelease", "apps", "podinfo", gen, gen,
		map[string]any{"installFailures": failures, "failures": failures, "lastAttemptedReleaseAction": "install"}, conds...)
	_ = unstructured.SetNestedField(u.Object, int64(3), "spec", "install", "remediation", "retries")
	return u
}

// TestEvaluateRepeatedHelmFailure drives one HelmRelease through a
// sequence of states, evaluating after each as the watch loop does.
func TestEvaluateRepeatedHelmFailure(t *testing.T) {
	cases := []struct {
		name   string
		states []*unstructured.Unstructured
		want   string // the error after the last state, "" for none
	}{
		{"the same hook failure twice fails at the second", []*unstructured.Unstructured{
			podinfoAt(1, 0, "", true), podinfoAt(1, 1, repeatHookFailed, false), podinfoAt(1, 1, repeatHookFailed, true), podinfoAt(1, 2, repeatHookFailed, false),
		}, repeatVerdict},
		{"two different failures wait for helm-controller", []*unstructured.Unstructured{
			podinfoAt(1, 1, repeatHookFailed, false), podinfoAt(1, 1, repeatHookFailed, true), podinfoAt(1, 2, repeatTimedOut, false),
		}, ""},
		{"one failure with retries left waits", []*unstructured.Unstructured{
			podinfoAt(1, 0, "", true), podinfoAt(1, 1, repeatHookFailed, false), podinfoAt(1, 1, repeatHookFailed, true),
		}, ""},
		{"a new generation starts the count again", []*unstructured.Unstructured{
			podinfoAt(1, 1, repeatHookFailed, false), podinfoAt(2, 1, repeatHookFailed, false), podinfoAt(2, 2, repeatHookFailed, false),
		}, repeatVerdict},
		{"a failure of the generation before is not the first of this one", []*unstructured.Unstructured{
			podinfoAt(1, 1, repeatHookFailed, false), podinfoAt(2, 2, repeatHookFailed, false),
		}, ""},
		{"the count seen at its first message: a later uncounted message does not replace it", []*unstructured.Unstructured{
			podinfoAt(1, 1, repeatHookFailed, false), podinfoAt(1, 1, repeatTimedOut, false), podinfoAt(1, 2, repeatHookFailed, false),
		}, repeatVerdict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := newTestRun(&out)
			store := cache.NewStore(cache.MetaNamespaceKeyFunc)
			r.fluxStores["HelmRelease"] = store
			now := time.Now()
			var err error
			for i, u := range tc.states {
				if err = store.Update(u); err != nil {
					t.Fatal(err)
				}
				if _, _, err = r.evaluate(now.Add(time.Duration(i) * time.Second)); err != nil && i < len(tc.states)-1 {
					t.Fatalf("state %d (%d failures): failed early: %v", i, tc.states[i].Object["status"].(map[string]any)["installFailures"], err)
				}
			}
			var fe *FailureError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v, want none\n%s", err, out.String())
			case tc.want != "" && (!errors.As(err, &fe) || err.Error() != tc.want || fe.Object != "HelmRelease/apps/podinfo" || fe.Reason != "InstallFailed" || fe.Terminal):
				t.Fatalf("err = %v\nwant %q (a non-terminal *FailureError)\n%s", err, tc.want, out.String())
			}
		})
	}
}

// TestWaitRepeatedHelmFailure runs the real watch loop: helm-controller's
// writes arrive back to back, faster than the loop evaluates, and the
// first failure's message must still be remembered from its watch event.
func TestWaitRepeatedHelmFailure(t *testing.T) {
	dyn := repeatFakeClient(podinfoAt(1, 0, "", true))
	mapper := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{{Group: "helm.toolkit.fluxcd.io", Version: "v2"}})
	mapper.Add(schema.GroupVersionKind{Group: "helm.toolkit.fluxcd.io", Version: "v2", Kind: "HelmRelease"}, apimeta.RESTScopeNamespace)
	// The wait writes progress from its own goroutine while the test reads it.
	out := &syncWriter{t: t}
	w := &Waiter{opts: Options{Env: "staging", Out: out, Kinds: []string{"HelmRelease"}, Require: []fluxobj.ObjectRef{}}.withDefaults(), dyn: dyn, mapper: mapper}

	// Bound: the whole sequence is a handful of in-memory writes; the
	// context only keeps a broken rule from hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := w.Wait(ctx)
		done <- err
	}()
	// The wait has listed the first state once its line is printed.
	for !strings.Contains(out.String(), "HelmRelease/apps/podinfo  NotReady  Progressing") {
		select {
		case err := <-done:
			t.Fatalf("wait ended before any failure: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	var last time.Time
	for _, u := range []*unstructured.Unstructured{podinfoAt(1, 1, repeatHookFailed, false), podinfoAt(1, 1, repeatHookFailed, true), podinfoAt(1, 2, repeatHookFailed, false)} {
		last = time.Now()
		if _, err := dyn.Resource(repeatHRGVR).Namespace("apps").UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("writing the status of HelmRelease/apps/podinfo: %v", err)
		}
	}
	err := <-done
	t.Logf("wait ended %s after the second failure was written", time.Since(last))
	var fe *FailureError
	if !errors.As(err, &fe) || err.Error() != repeatVerdict {
		t.Fatalf("err = %v\nwant %q\n%s", err, repeatVerdict, out.String())
	}
}

// repeatFakeClient is the client-go fake dynamic client holding objs, with
// list kinds for HelmReleases and every workload the waiter watches.
func repeatFakeClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	listKinds := map[schema.GroupVersionResource]string{repeatHRGVR: "HelmReleaseList"}
	for gk, gvr := range workloadResources {
		listKinds[gvr] = gk.Kind + "List"
	}
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, objs...)
}
