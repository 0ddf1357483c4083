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

	"github.com/flux-fleet/flux-fleet/harness/fluxobj/fluxobjtest"
)

// fakeWaiter runs the real watch loop against the client-go fake dynamic
// client, whose watches deliver every write.
func fakeWaiter(t *testing.T, out *bytes.Buffer, objs ...runtime.Object) (*Waiter, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	listKinds := map[schema.GroupVersionResource]string{
		{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}:   "GitRepositoryList",
		{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}: "KustomizationList",
	}
	for gk, gvr := range workloadResources {
		listKinds[gvr] = gk.Kind + "List"
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, objs...)
	mapper := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{{Group: "source.toolkit.fluxcd.io", Version: "v1"}, {Group: "kustomize.toolkit.fluxcd.io", Version: "v1"}})
	mapper.Add(schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"}, apimeta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Kind: "Kustomization"}, apimeta.RESTScopeNamespace)
	return &Waiter{opts: Options{Env: "fake", Out: out}.withDefaults(), dyn: dyn, mapper: mapper}, dyn
}

func TestWaitWatchesTransitions(t *testing.T) {
	const rev = "main@sha1:abc"
	git := fluxobjtest.Object("GitRepository", "flux-system", "flux-system", 1, 1, map[string]any{"artifact": map[string]any{"revision": rev}}, fluxobjtest.Cond("Ready", "True", "Succeeded", ""))
	ks := fluxobjtest.Object("Kustomization", "flux-system", "flux-system", 1, 1, nil, fluxobjtest.Cond("Ready", "Unknown", "Progressing", "reconciling"))
	_ = unstructured.SetNestedField(ks.Object, map[string]any{"kind": "GitRepository", "name": "flux-system"}, "spec", "sourceRef")
	ksGVR := schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}

	cases := []struct {
		name    string
		status  map[string]any
		wantErr string
	}{
		{"ready", map[string]any{"observedGeneration": int64(1), "lastAppliedRevision": rev,
			"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "ok", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}}}, ""},
		{"stalled", map[string]any{"observedGeneration": int64(1),
			"conditions": []any{map[string]any{"type": "Stalled", "status": "True", "reason": "InvalidPath", "message": "no such path"}}}, "fake: Kustomization/flux-system/flux-system failed: InvalidPath: no such path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w, dyn := fakeWaiter(t, &out, git.DeepCopy(), ks.DeepCopy())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			type result struct {
				rep *Report
				err error
			}
			done := make(chan result, 1)
			go func() {
				rep, err := w.Wait(ctx)
				done <- result{rep, err}
			}()
			time.Sleep(300 * time.Millisecond)
			select {
			case r := <-done:
				t.Fatalf("returned before the transition: %v", r.err)
			default:
			}
			u := ks.DeepCopy()
			u.Object["status"] = tc.status
			flip := time.Now()
			if _, err := dyn.Resource(ksGVR).Namespace("flux-system").UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if d := time.Since(flip); d > time.Second {
				t.Errorf("took %s after the transition", d)
			}
			if tc.wantErr == "" && r.err != nil || tc.wantErr != "" && (r.err == nil || r.err.Error() != tc.wantErr) {
				t.Fatalf("err = %v, want %q\n%s", r.err, tc.wantErr, out.String())
			}
			var fe *FailureError
			if tc.wantErr != "" && !errors.As(r.err, &fe) {
				t.Fatalf("want *FailureError, got %T", r.err)
			}
			if tc.wantErr == "" {
				if !strings.Contains(out.String(), "fake  Kustomization/flux-system/flux-system  Ready  ") || !strings.Contains(r.rep.String(), "latency") {
					t.Errorf("progress/report:\n%s\n%s", out.String(), r.rep)
				}
			}
			t.Logf("progress:\n%s", out.String())
		})
	}
}

func TestWaitTimeoutListsPending(t *testing.T) {
	ks := fluxobjtest.Object("Kustomization", "flux-system", "flux-system", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "DependencyNotReady", "dependency 'flux-system/infra' is not ready"))
	var out bytes.Buffer
	w, _ := fakeWaiter(t, &out, ks)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := w.Wait(ctx)
	var nr *NotReadyError
	if !errors.As(err, &nr) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want NotReadyError wrapping the deadline, got %v", err)
	}
	if !strings.Contains(err.Error(), "Kustomization/flux-system/flux-system  DependencyNotReady: dependency 'flux-system/infra' is not ready") {
		t.Errorf("error: %v", err)
	}
}
