package readiness

import (
	"errors"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func cond(t, status, reason, msg string) map[string]any {
	return map[string]any{"type": t, "status": status, "reason": reason, "message": msg, "lastTransitionTime": "2026-11-25T22:41:07Z"}
}

func withGeneration(c map[string]any, gen int64) map[string]any {
	c["observedGeneration"] = gen
	return c
}

func flux(kind, ns, name string, gen, observed int64, status map[string]any, conds ...map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": fluxGroups[kind] + "/v1",
		"kind":       kind,
		"metadata":   map[string]any{"namespace": ns, "name": name, "generation": gen},
		"spec":       map[string]any{},
	}}
	st := map[string]any{"observedGeneration": observed}
	for k, v := range status {
		st[k] = v
	}
	var cs []any
	for _, c := range conds {
		cs = append(cs, c)
	}
	if len(cs) > 0 {
		st["conditions"] = cs
	}
	u.Object["status"] = st
	return u
}

func TestClassifyFlux(t *testing.T) {
	const rev = "main@sha1:abc"
	withSpec := func(u *unstructured.Unstructured, v any, path ...string) *unstructured.Unstructured {
		_ = unstructured.SetNestedField(u.Object, v, path...)
		return u
	}
	cases := []struct {
		name      string
		obj       *unstructured.Unstructured
		sourceRev string
		phase     phase
		reason    string
		terminal  bool
		graced    bool
	}{
		{"ready", flux("Kustomization", "flux-system", "apps", 2, 2, map[string]any{"lastAppliedRevision": rev}, cond("Ready", "True", "ReconciliationSucceeded", "Applied")), rev, phaseReady, "ReconciliationSucceeded", false, false},
		{"ready but old generation", flux("Kustomization", "flux-system", "apps", 3, 2, nil, cond("Ready", "True", "ReconciliationSucceeded", "")), "", phaseProgressing, "Progressing", false, false},
		{"ready but older revision applied", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAppliedRevision": "main@sha1:old"}, cond("Ready", "True", "ReconciliationSucceeded", "")), rev, phaseProgressing, "RevisionNotApplied", false, false},
		{"no conditions", flux("GitRepository", "flux-system", "flux-system", 1, 0, nil), "", phaseProgressing, "Pending", false, false},
		{"stalled", flux("Kustomization", "flux-system", "apps", 1, 1, nil, cond("Ready", "False", "InvalidPath", "x"), cond("Stalled", "True", "InvalidPath", "bad path")), "", phaseFailed, "InvalidPath", true, false},
		{"build failed on current revision", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "BuildFailed", "kustomize build failed")), rev, phaseFailed, "BuildFailed", true, false},
		{"build failed on old revision", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": "main@sha1:old"}, cond("Ready", "False", "BuildFailed", "kustomize build failed")), rev, phaseProgressing, "BuildFailed", false, false},
		{"path not found", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x: no such file")), rev, phaseFailed, "ArtifactFailed", true, false},
		{"artifact download failed", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "ArtifactFailed", "failed to download archive")), rev, phaseProgressing, "ArtifactFailed", false, false},
		{"dependency not ready", flux("Kustomization", "flux-system", "apps", 1, 1, nil, cond("Ready", "False", "DependencyNotReady", "dependency 'flux-system/infra' is not ready")), "", phaseProgressing, "DependencyNotReady", false, false},
		{"health check failed", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "HealthCheckFailed", "timeout")), rev, phaseProgressing, "HealthCheckFailed", false, false},
		{"helm retries exceeded", flux("HelmRelease", "apps", "web", 1, 1, nil, cond("Ready", "False", "RetriesExceeded", "Failed to install after 1 attempt(s)")), "", phaseFailed, "RetriesExceeded", true, false},
		{"helm install failed, no retries left", flux("HelmRelease", "apps", "web", 1, 1, map[string]any{"installFailures": int64(1)}, cond("Ready", "False", "InstallFailed", "timed out")), "", phaseFailed, "InstallFailed", true, false},
		{"helm install failed, retries left", withSpec(flux("HelmRelease", "apps", "web", 1, 1, map[string]any{"installFailures": int64(1)}, cond("Ready", "False", "InstallFailed", "timed out")), int64(3), "spec", "install", "remediation", "retries"), "", phaseProgressing, "InstallFailed", false, false},
		{"git auth failure is graced", flux("GitRepository", "flux-system", "flux-system", 1, 1, nil, cond("Ready", "False", "GitOperationFailed", "authentication required")), "", phaseProgressing, "GitOperationFailed", false, true},
		{"helm index failure is graced", flux("HelmRepository", "flux-system", "bitnami", 1, 1, nil, cond("Ready", "False", "IndexationFailed", "dial tcp: lookup charts.example: no such host")), "", phaseProgressing, "IndexationFailed", false, true},
		{"oci pull failing while retrying (no observedGeneration, Ready Unknown) is graced", flux("OCIRepository", "flux-system", "nginx-ingress", 1, 0, nil, cond("Ready", "Unknown", "Progressing", "reconciliation in progress"), cond("FetchFailed", "True", "ReadOperationFailed", "failed to pull artifact: dial tcp: lookup ghcr.example: no such host")), "", phaseProgressing, "ReadOperationFailed", false, true},
		{"helm index fetch failed before first success is graced", flux("HelmRepository", "flux-system", "podinfo", 1, 0, nil, cond("Ready", "False", "Failed", "failed to fetch Helm repository index")), "", phaseProgressing, "Failed", false, true},
		{"path not found, status.observedGeneration unset but the condition is current", flux("Kustomization", "flux-system", "apps", 1, 0, map[string]any{"lastAttemptedRevision": rev}, withGeneration(cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x: no such file"), 1)), rev, phaseFailed, "ArtifactFailed", true, false},
		{"path not found before any attempt is graced", flux("Kustomization", "flux-system", "apps", 1, 0, nil, withGeneration(cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x: no such file"), 1)), rev, phaseProgressing, "ArtifactFailed", false, true},
		{"suspended", withSpec(flux("Kustomization", "flux-system", "apps", 1, 1, nil), true, "spec", "suspend"), "", phaseReady, "Suspended", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := classifyFlux(tc.obj, tc.sourceRev)
			if v.Phase != tc.phase || v.Reason != tc.reason || v.Terminal != tc.terminal || v.Graced != tc.graced {
				t.Fatalf("got %+v (phase %s), want phase %s reason %s terminal %v graced %v", v, v.Phase, tc.phase, tc.reason, tc.terminal, tc.graced)
			}
		})
	}
}

func TestParseInventoryID(t *testing.T) {
	cases := []struct {
		id   string
		want ObjectRef
		err  bool
	}{
		{"apps_podinfo_apps_Deployment", ObjectRef{Namespace: "apps", Name: "podinfo", Group: "apps", Kind: "Deployment"}, false},
		{"apps_podinfo__Service", ObjectRef{Namespace: "apps", Name: "podinfo", Kind: "Service"}, false},
		{"_apps__Namespace", ObjectRef{Name: "apps", Kind: "Namespace"}, false},
		{"flux-system_infra_kustomize.toolkit.fluxcd.io_Kustomization", ObjectRef{Namespace: "flux-system", Name: "infra", Group: "kustomize.toolkit.fluxcd.io", Kind: "Kustomization"}, false},
		{"bad", ObjectRef{}, true},
		{"a_b_c", ObjectRef{}, true},
		{"ns__apps_Deployment", ObjectRef{}, true},
	}
	for _, tc := range cases {
		got, err := ParseInventoryID(tc.id)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseInventoryID(%q) = %+v, %v; want %+v, err %v", tc.id, got, err, tc.want, tc.err)
		}
	}
}

func TestInventoryOf(t *testing.T) {
	u := flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"inventory": map[string]any{"entries": []any{
		map[string]any{"id": "apps_web_apps_Deployment", "v": "v1"},
		map[string]any{"id": "garbage", "v": "v1"},
	}}})
	got := inventoryOf(u)
	if len(got) != 1 || got[0].String() != "Deployment apps/web" || got[0].Version != "v1" {
		t.Fatalf("inventoryOf = %+v", got)
	}
}

func TestClassifyWorkload(t *testing.T) {
	dep := func(gen, observed, replicas, ready int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"namespace": "apps", "name": "web", "generation": gen},
			"spec":     map[string]any{"replicas": replicas},
			"status": map[string]any{"observedGeneration": observed, "replicas": replicas, "updatedReplicas": ready, "readyReplicas": ready, "availableReplicas": ready,
				"conditions": []any{map[string]any{"type": "Available", "status": "True"}, map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}}},
		}}
	}
	if v := classifyWorkload(dep(1, 1, 2, 2)); v.Phase != phaseReady {
		t.Errorf("healthy deployment: %+v", v)
	}
	if v := classifyWorkload(dep(1, 1, 2, 1)); v.Phase != phaseProgressing {
		t.Errorf("rolling deployment: %+v", v)
	}
	if v := classifyWorkload(dep(2, 1, 2, 2)); v.Phase != phaseProgressing {
		t.Errorf("unobserved deployment: %+v", v)
	}
}

func waitingPod(reason string) *corev1.Pod {
	ctrl := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-7d9f-abcde", UID: "uid-1",
			Labels:          map[string]string{"pod-template-hash": "7d9f"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d9f", Controller: &ctrl}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "web", Image: "fleet-kit/does-not-exist:v0",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "Back-off pulling image"}},
		}}},
	}
}

func TestPodTracker(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		steps  []string // waiting reason per observation, 5s apart; "" = running
		failAt int      // index of the observation that fails, -1 = never
	}{
		{"backoff outlasts grace", []string{"ErrImagePull", "ImagePullBackOff", "ErrImagePull"}, 2},
		{"recovers before grace", []string{"ErrImagePull", "", "ErrImagePull"}, -1},
		{"crash loop", []string{"CrashLoopBackOff", "CrashLoopBackOff", "CrashLoopBackOff"}, 2},
		{"creating is fine", []string{"ContainerCreating", "ContainerCreating", "ContainerCreating"}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newPodTracker(10 * time.Second)
			for i, reason := range tc.steps {
				pod := waitingPod(reason)
				if reason == "" {
					pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
				}
				fe, next := tr.observe(pod, t0.Add(time.Duration(i)*5*time.Second))
				if (fe != nil) != (i == tc.failAt) {
					t.Fatalf("step %d (%s): failure = %v", i, reason, fe)
				}
				if fe == nil && badWaitingReasons[reason] && next.IsZero() {
					t.Fatalf("step %d: no deadline for a stuck container", i)
				}
				if fe != nil {
					if fe.Owner != "Deployment apps/web" || fe.Container != "web" || fe.Image != "fleet-kit/does-not-exist:v0" || fe.Reason != reason {
						t.Fatalf("failure fields: %+v", fe)
					}
				}
			}
		})
	}
}

func TestFailureErrorText(t *testing.T) {
	cases := []struct {
		err  *FailureError
		want string
	}{
		{&FailureError{Env: "staging", Object: "Kustomization flux-system/apps", Reason: "BuildFailed", Message: "kustomize build failed", Terminal: true},
			"staging: Kustomization flux-system/apps failed: BuildFailed: kustomize build failed"},
		{&FailureError{Env: "staging", Object: "Pod apps/web-1", Owner: "Deployment apps/web", Container: "web", Image: "x:v0", Reason: "ImagePullBackOff", Message: "Back-off"},
			"staging: Pod apps/web-1 (of Deployment apps/web) keeps failing, container web image x:v0: ImagePullBackOff: Back-off"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() =\n%s\nwant\n%s", got, tc.want)
		}
	}
	nr := &NotReadyError{Env: "production", Elapsed: 5 * time.Minute, Err: errors.New("context deadline exceeded"),
		Pending: []Pending{{Object: "Kustomization flux-system/apps", Reason: "DependencyNotReady", Message: "dependency 'flux-system/infra' is not ready"}}}
	if s := nr.Error(); !strings.Contains(s, "production: not ready after 5m0s") || !strings.Contains(s, "Kustomization flux-system/apps  DependencyNotReady: dependency") {
		t.Errorf("NotReadyError text: %s", s)
	}
}

func TestMatchers(t *testing.T) {
	g := NewWithT(t)
	ready := flux("Kustomization", "flux-system", "apps", 1, 1, nil, cond("Ready", "True", "ReconciliationSucceeded", "Applied revision"))
	failing := flux("Kustomization", "flux-system", "apps", 1, 1, nil, cond("Ready", "False", "BuildFailed", "kustomize build failed: accumulating resources"))
	g.Expect(ready).To(BeReady())
	g.Expect(*ready).To(BeReady())
	g.Expect(failing).NotTo(BeReady())
	g.Expect(flux("Kustomization", "flux-system", "apps", 2, 1, nil, cond("Ready", "True", "x", ""))).NotTo(BeReady())
	g.Expect(failing).To(HaveCondition("Ready", metav1.ConditionFalse))

	ok, err := BeReady().Match(failing)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeFalse())
	msg := BeReady().FailureMessage(failing)
	g.Expect(msg).To(ContainSubstring("Kustomization flux-system/apps: Ready=False BuildFailed: kustomize build failed"))

	m := BeReady()
	_, _ = m.Match(failing)
	g.Expect(m.FailureMessage(failing)).To(ContainSubstring("Ready=False BuildFailed"))

	typed := &kustomizev1.Kustomization{
		TypeMeta:   metav1.TypeMeta{Kind: "Kustomization", APIVersion: "kustomize.toolkit.fluxcd.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "infra", Generation: 1},
		Status: kustomizev1.KustomizationStatus{ObservedGeneration: 1,
			Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "DependencyNotReady", Message: "waiting"}}},
	}
	g.Expect(typed).NotTo(BeReady())
	tm := BeReady()
	_, _ = tm.Match(typed)
	g.Expect(tm.FailureMessage(typed)).To(ContainSubstring("Kustomization flux-system/infra: Ready=False DependencyNotReady: waiting"))
	typed.Status.Conditions[0].Status = metav1.ConditionTrue
	g.Expect(typed).To(BeReady())

	_, err = BeReady().Match("not an object")
	g.Expect(err).To(HaveOccurred())
}
