package readiness

import (
	"context"
	"errors"
	"io"
	"slices"
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
func fakeWaiter(t *testing.T, out io.Writer, objs ...runtime.Object) (*Waiter, *dynamicfake.FakeDynamicClient) {
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
			out := &syncWriter{t: t}
			w, dyn := fakeWaiter(t, out, git.DeepCopy(), ks.DeepCopy())
			// No poll or timer of the waiter's can end this wait (its only
			// timer serves grace periods, and nothing here is graced): a
			// result other than the context's deadline came from the watch.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done := make(chan waitResult, 1)
			go func() {
				rep, err := w.Wait(ctx)
				done <- waitResult{rep, err, time.Now()}
			}()
			// Flip only once the waiter watches Kustomizations and has
			// judged the object not Ready, so the flip is a transition it
			// must see through the watch.
			if r, ok := untilPrinted(ctx, done, out, "Kustomization/flux-system/flux-system", "NotReady"); !ok {
				t.Fatalf("returned before the transition: %v\n%s", r.err, out)
			}
			if !watching(dyn, ksGVR) {
				t.Fatalf("the waiter judged the Kustomization without watching it; actions: %v", dyn.Actions())
			}
			u := ks.DeepCopy()
			u.Object["status"] = tc.status
			flip := time.Now()
			if _, err := dyn.Resource(ksGVR).Namespace("flux-system").UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			r := <-done
			t.Logf("returned %s after the transition", r.at.Sub(flip).Round(time.Millisecond))
			if errors.Is(r.err, context.DeadlineExceeded) {
				t.Fatalf("the transition was not seen; the wait ran into its deadline: %v", r.err)
			}
			if tc.wantErr == "" && r.err != nil || tc.wantErr != "" && (r.err == nil || r.err.Error() != tc.wantErr) {
				t.Fatalf("err = %v, want %q\n%s", r.err, tc.wantErr, out)
			}
			var fe *FailureError
			if tc.wantErr != "" && !errors.As(r.err, &fe) {
				t.Fatalf("want *FailureError, got %T", r.err)
			}
			if tc.wantErr == "" {
				if !printedState(out.String(), "Kustomization/flux-system/flux-system", "Ready") || !seenFlip(r.rep, "Kustomization/flux-system/flux-system") {
					t.Errorf("progress/report:\n%s\n%s", out.String(), r.rep)
				}
			}
		})
	}
}

// The wait ends with its context and lists what was pending then. The
// context ends only after the waiter has judged the Kustomization, so a
// slow start cannot leave the list empty.
func TestWaitTimeoutListsPending(t *testing.T) {
	ks := fluxobjtest.Object("Kustomization", "flux-system", "flux-system", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "DependencyNotReady", "dependency 'flux-system/infra' is not ready"))
	out := &syncWriter{t: t}
	w, _ := fakeWaiter(t, out, ks)
	bound, cancelBound := context.WithTimeout(context.Background(), time.Minute)
	defer cancelBound()
	ctx, cancel := context.WithCancel(bound)
	defer cancel()
	done := make(chan waitResult, 1)
	go func() {
		rep, err := w.Wait(ctx)
		done <- waitResult{rep, err, time.Now()}
	}()
	if r, ok := untilPrinted(bound, done, out, "Kustomization/flux-system/flux-system", "NotReady"); !ok {
		t.Fatalf("returned before judging the Kustomization: %v\n%s", r.err, out)
	}
	cancel()
	err := (<-done).err
	var nr *NotReadyError
	if !errors.As(err, &nr) || !errors.Is(err, context.Canceled) {
		t.Fatalf("want NotReadyError wrapping the context's end, got %v", err)
	}
	want := []Pending{{Object: "Kustomization/flux-system/flux-system", Reason: "DependencyNotReady", Message: "dependency 'flux-system/infra' is not ready"}}
	if !slices.Equal(nr.Pending, want) {
		t.Errorf("pending = %+v, want %+v", nr.Pending, want)
	}
}

// watching reports whether the fake client served a watch of gvr.
func watching(dyn *dynamicfake.FakeDynamicClient, gvr schema.GroupVersionResource) bool {
	for _, a := range dyn.Actions() {
		if a.GetVerb() == "watch" && a.GetResource() == gvr {
			return true
		}
	}
	return false
}
