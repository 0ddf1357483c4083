package readiness

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj/fluxobjtest"
)

// fixtureNow is the evaluation time of TestEvaluateBranches: 30s after the
// lastTransitionTime fluxobjtest stamps on every condition.
var fixtureNow = time.Date(2026, 11, 25, 22, 41, 37, 0, time.UTC)

// rootWithInventory is the root Kustomization, Ready on its source's
// revision, listing the given inventory ids.
func rootWithInventory(ids ...string) *unstructured.Unstructured {
	const rev = "main@sha1:abc"
	var entries []any
	for _, id := range ids {
		entries = append(entries, map[string]any{"id": id, "v": "v1"})
	}
	u := fluxobjtest.Object("Kustomization", "flux-system", "flux-system", 1, 1, map[string]any{
		"lastAppliedRevision": rev, "lastAttemptedRevision": rev, "inventory": map[string]any{"entries": entries},
	}, fluxobjtest.Cond("Ready", "True", "ReconciliationSucceeded", "Applied"))
	_ = unstructured.SetNestedField(u.Object, map[string]any{"kind": "GitRepository", "name": "flux-system"}, "spec", "sourceRef")
	return u
}

func readyGit() *unstructured.Unstructured {
	return fluxobjtest.Object("GitRepository", "flux-system", "flux-system", 1, 1, map[string]any{"artifact": map[string]any{"revision": "main@sha1:abc"}}, fluxobjtest.Cond("Ready", "True", "Succeeded", ""))
}

func failedJob() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"namespace": "apps", "name": "migrate", "generation": int64(1)},
		"spec":     map[string]any{"completions": int64(1), "parallelism": int64(1)},
		"status": map[string]any{"failed": int64(1),
			"conditions": []any{map[string]any{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}}},
	}}
}

// podObject is a pod as the pod informer holds it.
func podObject(t *testing.T, pod *corev1.Pod) *unstructured.Unstructured {
	t.Helper()
	pod.APIVersion, pod.Kind = "v1", "Pod"
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pod)
	if err != nil {
		t.Fatalf("converting pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return &unstructured.Unstructured{Object: m}
}

func crashingPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "web", Image: "web:v1", RestartCount: 3,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}},
		}}},
	}
}

func unreadyPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-0", UID: "uid-web-0"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "web", Image: "web:v1",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(fixtureNow.Add(-time.Hour))}},
		}}},
	}
}

// TestEvaluateBranches pins each decision of evaluate: its verdict, its
// exact error and the progress line it prints.
func TestEvaluateBranches(t *testing.T) {
	deleting := crashingPod("apps", "old")
	deleting.DeletionTimestamp = &metav1.Time{Time: fixtureNow}
	gitFailing := fluxobjtest.Object("GitRepository", "flux-system", "flux-system", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "GitOperationFailed", "authentication required"))
	cases := []struct {
		name       string
		objs       []*unstructured.Unstructured
		namespaces []string
		require    []fluxobj.ObjectRef
		first      bool
		done       bool
		err        string
		line       string // a progress line the evaluation prints ("" for none)
	}{
		{name: "all ready prints the summary", objs: []*unstructured.Unstructured{readyGit(), rootWithInventory()}, done: true,
			line: "staging  all Flux objects and workloads Ready"},
		{name: "first evaluation: Ready already", objs: []*unstructured.Unstructured{readyGit(), rootWithInventory()}, first: true, done: true,
			line: "staging  GitRepository/flux-system/flux-system  Ready  (already)"},
		{name: "required Flux object whose CRD is not installed", objs: []*unstructured.Unstructured{readyGit(), rootWithInventory()},
			require: []fluxobj.ObjectRef{{Kind: "HelmRelease", Namespace: "apps", Name: "web"}},
			line:    "HelmRelease/apps/web  NotReady  NotFound: CRD for HelmRelease is not installed"},
		{name: "required object of a kind the wait does not know is not waited for", objs: []*unstructured.Unstructured{readyGit(), rootWithInventory()},
			require: []fluxobj.ObjectRef{{Kind: "ConfigMap", Namespace: "apps", Name: "settings"}}, done: true},
		{name: "inventory workload missing from the cluster", objs: []*unstructured.Unstructured{readyGit(), rootWithInventory("apps_web_apps_Deployment")},
			line: "Deployment/apps/web  NotReady  NotFound: in a Kustomization inventory but not in the cluster"},
		{name: "inventory workload out of the namespaces watched", objs: []*unstructured.Unstructured{readyGit(), rootWithInventory("apps_web_apps_Deployment")},
			namespaces: []string{"flux-system"}, done: true},
		{name: "failed workload is terminal", objs: []*unstructured.Unstructured{readyGit(), rootWithInventory("apps_migrate_batch_Job"), failedJob()},
			err:  "staging: Job/apps/migrate failed: Failed: Job Failed. failed: 1/1",
			line: "Job/apps/migrate  Failed  Failed: Job Failed. failed: 1/1"},
		{name: "crash loop fails at once", objs: []*unstructured.Unstructured{readyGit(), rootWithInventory(), podObject(t, crashingPod("apps", "web-1"))},
			err: "staging: Pod/apps/web-1 keeps failing, container web image web:v1: CrashLoopBackOff: last exit code 1 (Error), 3 restarts; back-off 40s"},
		{name: "unready pod past its grace names the last probe failure", objs: []*unstructured.Unstructured{readyGit(), rootWithInventory(), podObject(t, unreadyPod())},
			err: "staging: Pod/apps/web-0 keeps failing, container web image web:v1: NotReady: running since 21:41:37 but not ready (for 1h0m0s); last probe failure: Readiness probe failed: HTTP probe failed with statuscode: 404"},
		{name: "pods of system namespaces, of unwatched namespaces and being deleted are skipped", namespaces: []string{"apps", "flux-system"}, done: true,
			objs: []*unstructured.Unstructured{readyGit(), rootWithInventory(), podObject(t, crashingPod("kube-system", "a")), podObject(t, crashingPod("other", "b")), podObject(t, deleting)}},
		{name: "graced failure that began before the grace fails at once", objs: []*unstructured.Unstructured{gitFailing, rootWithInventory()},
			err: "staging: GitRepository/flux-system/flux-system keeps failing: GitOperationFailed: authentication required (failing for 30s)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := newTestRun(&out, tc.objs...)
			r.start, r.firstEval, r.opts.Namespaces = fixtureNow, tc.first, tc.namespaces
			r.events = func(*corev1.Pod) string {
				return "Readiness probe failed: HTTP probe failed with statuscode: 404"
			}
			if tc.require != nil {
				r.opts.Require = append(tc.require, fluxobj.SyncKustomization())
			}
			done, _, err := r.evaluate(fixtureNow)
			if done != tc.done {
				t.Errorf("done = %v, want %v\n%s", done, tc.done, out.String())
			}
			if got := errText(err); got != tc.err {
				t.Errorf("err  = %q\nwant   %q", got, tc.err)
			}
			if tc.line != "" && !strings.Contains(out.String(), tc.line) {
				t.Errorf("progress lacks %q:\n%s", tc.line, out.String())
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
