package readiness

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj/fluxobjtest"
)

// newTestRun builds a run over in-memory stores, as the informers would fill them.
func newTestRun(out *bytes.Buffer, objs ...*unstructured.Unstructured) *run {
	opts := Options{Env: "staging", Out: out, Kinds: []string{"GitRepository", "Kustomization"}}.withDefaults()
	r := &run{
		opts: opts, start: time.Now(), seen: map[string]readySeen{},
		fluxStores: map[string]cache.Store{}, workStores: map[schema.GroupKind]cache.Store{},
		printed: map[string]string{}, readyAt: map[string]ObjectTiming{}, failingFrom: map[string]time.Time{},
		pods: newPodTracker(opts.PodFailureGrace, time.Time{}), firstEval: false,
	}
	for _, k := range opts.Kinds {
		r.fluxStores[k] = cache.NewStore(cache.MetaNamespaceKeyFunc)
	}
	for gk := range workloadResources {
		r.workStores[gk] = cache.NewStore(cache.MetaNamespaceKeyFunc)
	}
	for _, u := range objs {
		if s, ok := r.fluxStores[u.GetKind()]; ok {
			_ = s.Add(u)
			continue
		}
		_ = r.workStores[u.GroupVersionKind().GroupKind()].Add(u)
	}
	return r
}

func deployment(ready bool) *unstructured.Unstructured {
	n := int64(0)
	if ready {
		n = 1
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"namespace": "apps", "name": "web", "generation": int64(1)},
		"spec":     map[string]any{"replicas": int64(1)},
		"status": map[string]any{"observedGeneration": int64(1), "replicas": int64(1), "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
			"conditions": []any{map[string]any{"type": "Available", "status": map[bool]string{true: "True", false: "False"}[ready]}}},
	}}
}

func TestEvaluate(t *testing.T) {
	const rev = "main@sha1:abc"
	git := fluxobjtest.Object("GitRepository", "flux-system", "flux-system", 1, 1, map[string]any{"artifact": map[string]any{"revision": rev}}, fluxobjtest.Cond("Ready", "True", "Succeeded", ""))
	root := func(ready string, reason string) *unstructured.Unstructured {
		u := fluxobjtest.Object("Kustomization", "flux-system", "flux-system", 1, 1, map[string]any{
			"lastAppliedRevision": rev, "lastAttemptedRevision": rev,
			"inventory": map[string]any{"entries": []any{map[string]any{"id": "apps_web_apps_Deployment", "v": "v1"}}},
		}, fluxobjtest.Cond("Ready", ready, reason, "message of "+reason))
		_ = unstructured.SetNestedField(u.Object, map[string]any{"kind": "GitRepository", "name": "flux-system"}, "spec", "sourceRef")
		return u
	}
	cases := []struct {
		name    string
		objs    []*unstructured.Unstructured
		done    bool
		failure string
		line    string
	}{
		{"all ready", []*unstructured.Unstructured{git, root("True", "ReconciliationSucceeded"), deployment(true)}, true, "", "staging  Deployment/apps/web  Ready"},
		{"workload rolling out", []*unstructured.Unstructured{git, root("True", "ReconciliationSucceeded"), deployment(false)}, false, "", "Deployment/apps/web  NotReady  InProgress"},
		{"root missing", []*unstructured.Unstructured{git}, false, "", "Kustomization/flux-system/flux-system  NotReady  NotFound"},
		{"build failed", []*unstructured.Unstructured{git, root("False", "BuildFailed")}, false, "staging: Kustomization/flux-system/flux-system failed: BuildFailed", "Failed  BuildFailed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := newTestRun(&out, tc.objs...)
			done, _, err := r.evaluate(time.Now())
			if done != tc.done {
				t.Errorf("done = %v, want %v", done, tc.done)
			}
			var fe *FailureError
			if tc.failure == "" && err != nil || tc.failure != "" && (!errors.As(err, &fe) || !strings.HasPrefix(err.Error(), tc.failure)) {
				t.Errorf("err = %v, want %q", err, tc.failure)
			}
			if !strings.Contains(out.String(), tc.line) {
				t.Errorf("progress lacks %q:\n%s", tc.line, out.String())
			}
		})
	}
}

func TestEvaluateSourceGraceAndDedupe(t *testing.T) {
	git := fluxobjtest.Object("GitRepository", "flux-system", "flux-system", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "GitOperationFailed", "authentication required"))
	// The condition flips during the wait, not in the fixture's past.
	conds, _, _ := unstructured.NestedSlice(git.Object, "status", "conditions")
	conds[0].(map[string]any)["lastTransitionTime"] = time.Now().UTC().Add(time.Second).Format(time.RFC3339)
	_ = unstructured.SetNestedSlice(git.Object, conds, "status", "conditions")

	var out bytes.Buffer
	r := newTestRun(&out, git)
	now := time.Now()
	for i := 0; i < 3; i++ {
		if _, next, err := r.evaluate(now.Add(time.Duration(i) * time.Second)); err != nil || next.IsZero() {
			t.Fatalf("eval %d: err %v next %v", i, err, next)
		}
	}
	if n := strings.Count(out.String(), "GitOperationFailed"); n != 1 {
		t.Errorf("want one deduplicated NotReady line, got %d:\n%s", n, out.String())
	}
	_, _, err := r.evaluate(now.Add(25 * time.Second))
	var fe *FailureError
	if !errors.As(err, &fe) || fe.Terminal || fe.Reason != "GitOperationFailed" {
		t.Fatalf("want graced failure after 25s, got %v", err)
	}
	nr := r.notReady(errors.New("deadline"))
	if !strings.Contains(nr.Error(), "GitRepository/flux-system/flux-system") {
		t.Errorf("NotReadyError lacks pending objects: %v", nr)
	}
}
