package probe

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolveTargetPort(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "web",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
	tests := []struct {
		name    string
		port    corev1.ServicePort
		want    int32
		wantErr string
	}{
		{"number", corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(9090)}, 9090, ""},
		{"named", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http")}, 8080, ""},
		{"unset falls back to the service port", corev1.ServicePort{Port: 80}, 80, ""},
		{"unknown name", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("metrics")}, 0, `no container port named "metrics"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveTargetPort(pod, tt.port)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestReadyPod(t *testing.T) {
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
	notReady := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse}
	pod := func(name string, phase corev1.PodPhase, c corev1.PodCondition) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{c}}}
	}
	tests := []struct {
		name string
		pods []corev1.Pod
		want string
	}{
		{"picks the ready one", []corev1.Pod{pod("a", corev1.PodRunning, notReady), pod("b", corev1.PodRunning, ready)}, "b"},
		{"pending is skipped", []corev1.Pod{pod("a", corev1.PodPending, ready)}, ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readyPod(tt.pods)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("want an error, got pod %s", got.Name)
				}
				return
			}
			if err != nil || got.Name != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestServicePort(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}}
	if p, err := servicePort(svc, 0); err != nil || p.Port != 80 {
		t.Fatalf("default port: got %v, %v", p.Port, err)
	}
	if p, err := servicePort(svc, 443); err != nil || p.Port != 443 {
		t.Fatalf("port 443: got %v, %v", p.Port, err)
	}
	if _, err := servicePort(svc, 8080); err == nil {
		t.Fatal("port 8080: want an error")
	}
}
