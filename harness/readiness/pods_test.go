package readiness

import (
	"errors"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj/fluxobjtest"
)

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
			tr := newPodTracker(10*time.Second, time.Time{})
			for i, reason := range tc.steps {
				pod := waitingPod(reason)
				if reason == "" {
					pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
					pod.Status.ContainerStatuses[0].Ready = true
				}
				fe, next := tr.observe(pod, t0.Add(time.Duration(i)*5*time.Second))
				if (fe != nil) != (i == tc.failAt) {
					t.Fatalf("step %d (%s): failure = %v", i, reason, fe)
				}
				if fe == nil && reason != "" && reason != "ContainerCreating" && next.IsZero() {
					t.Fatalf("step %d: no deadline for a stuck container", i)
				}
				if fe != nil {
					if fe.Owner != "Deployment/apps/web" || fe.Container != "web" || fe.Image != "fleet-kit/does-not-exist:v0" || fe.Reason != strings.Replace(reason, "ErrImagePull", "ImagePullBackOff", 1) {
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
		{&FailureError{Env: "staging", Object: "Kustomization/flux-system/apps", Reason: "BuildFailed", Message: "kustomize build failed", Terminal: true},
			"staging: Kustomization/flux-system/apps failed: BuildFailed: kustomize build failed"},
		{&FailureError{Env: "staging", Object: "Pod/apps/web-1", Owner: "Deployment/apps/web", Container: "web", Image: "x:v0", Reason: "ImagePullBackOff", Message: "Back-off"},
			"staging: Pod/apps/web-1 (of Deployment/apps/web) keeps failing, container web image x:v0: ImagePullBackOff: Back-off"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() =\n%s\nwant\n%s", got, tc.want)
		}
	}
	nr := &NotReadyError{Env: "production", Elapsed: 5 * time.Minute, Err: errors.New("context deadline exceeded"),
		Pending: []Pending{{Object: "Kustomization/flux-system/apps", Reason: "DependencyNotReady", Message: "dependency 'flux-system/infra' is not ready"}}}
	if s := nr.Error(); !strings.Contains(s, "production: not ready after 5m0s") || !strings.Contains(s, "Kustomization/flux-system/apps  DependencyNotReady: dependency") {
		t.Errorf("NotReadyError text: %s", s)
	}
}

func TestMatchers(t *testing.T) {
	g := NewWithT(t)
	ready := fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, nil, fluxobjtest.Cond("Ready", "True", "ReconciliationSucceeded", "Applied revision"))
	failing := fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "BuildFailed", "kustomize build failed: accumulating resources"))
	g.Expect(ready).To(BeReady())
	g.Expect(*ready).To(BeReady())
	g.Expect(failing).NotTo(BeReady())
	g.Expect(fluxobjtest.Object("Kustomization", "flux-system", "apps", 2, 1, nil, fluxobjtest.Cond("Ready", "True", "x", ""))).NotTo(BeReady())
	g.Expect(failing).To(HaveCondition("Ready", metav1.ConditionFalse))

	ok, err := BeReady().Match(failing)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeFalse())
	msg := BeReady().FailureMessage(failing)
	g.Expect(msg).To(ContainSubstring("Kustomization/flux-system/apps: Ready=False BuildFailed: kustomize build failed"))

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
	g.Expect(tm.FailureMessage(typed)).To(ContainSubstring("Kustomization/flux-system/infra: Ready=False DependencyNotReady: waiting"))
	typed.Status.Conditions[0].Status = metav1.ConditionTrue
	g.Expect(typed).To(BeReady())

	_, err = BeReady().Match("not an object")
	g.Expect(err).To(HaveOccurred())
}

// A controller-runtime client returns typed objects without apiVersion and
// kind: the matchers name them by their API kind all the same, not by the
// Go type.
func TestMatchersNameKindlessTypedObjects(t *testing.T) {
	g := NewWithT(t)
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "infra", Generation: 1},
		Status: kustomizev1.KustomizationStatus{ObservedGeneration: 1,
			Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "DependencyNotReady", Message: "waiting"}}},
	}
	g.Expect(BeReady().FailureMessage(ks)).To(Equal("expected object to be Ready, but Kustomization/flux-system/infra: Ready=False DependencyNotReady: waiting"))
	repo := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "fleet"}}
	g.Expect(HaveCondition("Ready", metav1.ConditionTrue).FailureMessage(repo)).To(Equal("expected object to have condition Ready=True, but GitRepository/flux-system/fleet has no Ready condition"))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}
	g.Expect(HaveCondition("Ready", metav1.ConditionTrue).FailureMessage(pod)).To(Equal("expected object to have condition Ready=True, but Pod/apps/web has no Ready condition"))
}

// A pod from before the wait (the previous revision's, on a kept cluster)
// fails only once its problem outlasted the grace counted from the start of
// the wait: a published fix replaces it first.
func TestPodTrackerPodsFromBeforeTheWait(t *testing.T) {
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	crashLooping := func(created time.Time) *corev1.Pod {
		pod := waitingPod("CrashLoopBackOff")
		pod.CreationTimestamp = metav1.NewTime(created)
		pod.Status.ContainerStatuses[0].RestartCount = 3
		pod.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}
		return pod
	}
	tests := []struct {
		name    string
		created time.Time
		at      time.Duration // after start
		fails   bool
	}{
		{"a new pod's crash loop fails at once", start.Add(2 * time.Second), 3 * time.Second, true},
		{"a pod of the start's second counts as new", start.Add(400 * time.Millisecond), time.Second, true},
		{"an earlier pod's crash loop waits for the grace", start.Add(-time.Minute), 3 * time.Second, false},
		{"an earlier pod still crashing after the grace fails", start.Add(-time.Minute), 11 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newPodTracker(10*time.Second, start.Add(300*time.Millisecond))
			var fe *FailureError
			for at := time.Duration(0); at <= tt.at; at += time.Second {
				if fe, _ = tr.observe(crashLooping(tt.created), start.Add(at)); fe != nil {
					break
				}
			}
			if (fe != nil) != tt.fails {
				t.Fatalf("failure = %v, want failing %v", fe, tt.fails)
			}
			if fe != nil && fe.Reason != "CrashLoopBackOff" {
				t.Fatalf("reason %q, want CrashLoopBackOff", fe.Reason)
			}
		})
	}
}
