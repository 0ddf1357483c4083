package fluxobj

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodProblems(t *testing.T) {
	started := metav1.NewTime(time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC))
	crashed := &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
	container := func(cs corev1.ContainerStatus) *corev1.Pod {
		cs.Name, cs.Image = "web", "fleet-kit/web:v1"
		return &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{cs}}}
	}
	cases := []struct {
		name    string
		pod     *corev1.Pod
		reason  string // "" = no problem
		certain bool
		since   time.Time
	}{
		{"healthy", container(corev1.ContainerStatus{Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}), "", false, time.Time{}},
		{"creating", container(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}), "", false, time.Time{}},
		{"image pull back-off", container(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}), "ImagePullBackOff", false, time.Time{}},
		{"first crash is not yet a loop", container(corev1.ContainerStatus{RestartCount: 1, LastTerminationState: corev1.ContainerState{Terminated: crashed},
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s"}}}), "CrashLoopBackOff", false, time.Time{}},
		{"second crash in back-off is a loop", container(corev1.ContainerStatus{RestartCount: 2, LastTerminationState: corev1.ContainerState{Terminated: crashed},
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 20s"}}}), "CrashLoopBackOff", true, time.Time{}},
		{"restarted and exited again is a loop", container(corev1.ContainerStatus{RestartCount: 1, LastTerminationState: corev1.ContainerState{Terminated: crashed},
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: started}}}), "CrashLoopBackOff", true, started.Time},
		{"first exit is just an exit", container(corev1.ContainerStatus{
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: started}}}), "Error", false, started.Time},
		{"ErrImagePull is the image pull failure", container(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}), "ImagePullBackOff", false, time.Time{}},
		{"running, never ready", container(corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}), NotReadyReason, false, started.Time},
		{"unschedulable", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/1 nodes are available: 1 Insufficient cpu.", LastTransitionTime: started}}}}, "Unschedulable", false, started.Time},
		{"running init container is normal", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{Name: "init",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}}}}, "", false, time.Time{}},
		{"completed", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, "", false, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := PodProblems(tc.pod)
			if tc.reason == "" {
				if len(got) != 0 {
					t.Fatalf("PodProblems = %+v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("PodProblems = %+v, want one %s", got, tc.reason)
			}
			if p := got[0]; p.Reason != tc.reason || p.Certain != tc.certain || !p.Since.Equal(tc.since) {
				t.Fatalf("PodProblems = %+v, want reason %s certain %v since %v", p, tc.reason, tc.certain, tc.since)
			}
		})
	}
}

func TestPodOwner(t *testing.T) {
	yes := true
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-7d9f-abcde",
		Labels:          map[string]string{"pod-template-hash": "7d9f"},
		OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d9f", Controller: &yes}}}}
	if got := PodOwner(pod); got != "Deployment/apps/web" {
		t.Fatalf("PodOwner = %q, want Deployment/apps/web", got)
	}
	pod.OwnerReferences[0] = metav1.OwnerReference{Kind: "StatefulSet", Name: "redis", Controller: &yes}
	if got := PodOwner(pod); got != "StatefulSet/apps/redis" {
		t.Fatalf("PodOwner = %q, want StatefulSet/apps/redis", got)
	}
}
