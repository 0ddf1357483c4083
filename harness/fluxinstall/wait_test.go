package fluxinstall

import (
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"

	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestWaitDeployments(t *testing.T) {
	labels := map[string]string{"app": "source-controller"}
	deployment := func(available corev1.ConditionStatus, ready int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller", Generation: 1},
			Spec: appsv1.DeploymentSpec{
				Replicas: new(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
			},
			Status: appsv1.DeploymentStatus{
				ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1,
				ReadyReplicas: ready, AvailableReplicas: ready,
				Conditions: []appsv1.DeploymentCondition{{
					Type: appsv1.DeploymentAvailable, Status: available,
					Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability.",
				}},
			},
		}
	}
	pod := func(reason string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller-abc", Labels: labels},
			Status: corev1.PodStatus{
				Phase: corev1.PodPending,
				ContainerStatuses: []corev1.ContainerStatus{{
					Name: "manager", Image: "ghcr.io/fluxcd/source-controller:v1.9.5",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "pull failed"}},
				}},
			},
		}
	}
	tests := []struct {
		name    string
		objs    []client.Object
		timeout time.Duration
		wantErr []string // substrings; nil means success
	}{
		{
			name:    "available",
			objs:    []client.Object{deployment(corev1.ConditionTrue, 1)},
			timeout: 5 * time.Second,
		},
		{
			name:    "image pull back-off gives up before the deadline",
			objs:    []client.Object{deployment(corev1.ConditionFalse, 0), pod("ImagePullBackOff")},
			timeout: time.Minute,
			wantErr: []string{"giving up", "Deployment flux-system/source-controller not available", "MinimumReplicasUnavailable", "ImagePullBackOff: pull failed", "ghcr.io/fluxcd/source-controller:v1.9.5"},
		},
		{
			name:    "still creating waits until the deadline",
			objs:    []client.Object{deployment(corev1.ConditionFalse, 0), pod("ContainerCreating")},
			timeout: 1200 * time.Millisecond,
			wantErr: []string{"context deadline exceeded", "MinimumReplicasUnavailable"},
		},
		{
			// Available while an old pod is still running: kstatus's
			// Deployment rules call it InProgress, the generic ones Current.
			name:    "available but still rolling out waits until the deadline",
			objs:    []client.Object{rolling(deployment(corev1.ConditionTrue, 1))},
			timeout: 1200 * time.Millisecond,
			wantErr: []string{"context deadline exceeded", "Deployment flux-system/source-controller not available", "Pending termination: 1"},
		},
		{
			name:    "missing Deployment",
			timeout: 1200 * time.Millisecond,
			wantErr: []string{"flux-system/source-controller", "not found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithObjects(tt.objs...).Build()
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			err := waitDeployments(ctx, c, []client.ObjectKey{{Namespace: "flux-system", Name: "source-controller"}}, 0)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
		})
	}
}

// rolling makes d a Deployment mid-rollout: a second replica, the old
// one, still counted.
func rolling(d *appsv1.Deployment) *appsv1.Deployment {
	d.Status.Replicas = 2
	return d
}

func TestStuckAtInstall(t *testing.T) {
	tests := []struct {
		name string
		p    fluxobj.PodProblem
		want bool
	}{
		{"starting", fluxobj.PodProblem{Container: "manager", Reason: fluxobj.NotReadyReason, Logs: true}, false},
		{"first exit while the Service network is not ready", fluxobj.PodProblem{Container: "manager", Reason: "CrashLoopBackOff", Restarts: 1, Logs: true}, false},
		{"a crash that keeps repeating", fluxobj.PodProblem{Container: "manager", Reason: "CrashLoopBackOff", Restarts: 3, Logs: true}, true},
		{"image that does not pull", fluxobj.PodProblem{Container: "manager", Reason: fluxobj.ImagePullReason}, true},
		{"unschedulable", fluxobj.PodProblem{Reason: "Unschedulable"}, true},
	}
	for _, tt := range tests {
		if got := stuckAtInstall(tt.p); got != tt.want {
			t.Errorf("%s: stuckAtInstall = %v, want %v", tt.name, got, tt.want)
		}
	}
}
