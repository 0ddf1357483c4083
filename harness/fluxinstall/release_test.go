package fluxinstall

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"v2.8.0", "v2.10.12", "v0.0.1"} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("CheckVersion(%q) = %v, want nil", v, err)
		}
	}
	for _, v := range []string{"", "2.8.0", "v2.8", "v2.8.0-rc.1", "v2.8.0 ", "latest", "v2.8.x"} {
		err := CheckVersion(v)
		if err == nil || !strings.Contains(err.Error(), "want vX.Y.Z") || !strings.Contains(err.Error(), `"`+v+`"`) {
			t.Errorf("CheckVersion(%q) = %v, want an error quoting it and asking for vX.Y.Z", v, err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"v2.8.0", "v2.9.5", -1},
		{"v2.9.5", "v2.9.5", 0},
		{"v2.10.0", "v2.9.5", 1}, // numeric, not text, order
		{"v3.0.0", "v2.99.99", 1},
	}
	for _, tt := range tests {
		got, err := CompareVersions(tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("CompareVersions(%s, %s) = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
		}
	}
	if _, err := CompareVersions("v2.8.0", "main"); err == nil || !strings.Contains(err.Error(), `"main"`) {
		t.Errorf("CompareVersions with a branch name = %v, want an error naming it", err)
	}
}

func deploymentObj(name string, images ...string) *unstructured.Unstructured {
	var containers []any
	for i, img := range images {
		containers = append(containers, map[string]any{"name": "c" + string(rune('0'+i)), "image": img})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": "flux-system"},
		"spec":     map[string]any{"template": map[string]any{"spec": map[string]any{"containers": containers}}},
	}}
}

func TestControllerImages(t *testing.T) {
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "flux-system"}}}
	got, err := ControllerImages([]*unstructured.Unstructured{ns,
		deploymentObj("source-controller", "ghcr.io/fluxcd/source-controller:v1.9.5"),
		deploymentObj("helm-controller", "ghcr.io/fluxcd/helm-controller:v1.6.4")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got["source-controller"], []string{"ghcr.io/fluxcd/source-controller:v1.9.5"}) ||
		!slices.Equal(got["helm-controller"], []string{"ghcr.io/fluxcd/helm-controller:v1.6.4"}) {
		t.Errorf("ControllerImages = %v", got)
	}
	if _, err := ControllerImages([]*unstructured.Unstructured{deploymentObj("kustomize-controller", "")}); err == nil || !strings.Contains(err.Error(), "Deployment kustomize-controller") {
		t.Errorf("a container without an image: %v, want an error naming the Deployment", err)
	}
}

func TestRunningImagesAndMismatches(t *testing.T) {
	labels := map[string]string{"app": "source-controller"}
	pod := func(name, image string, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: image}}}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			p.Finalizers = []string{"test/keep"} // the fake client refuses a deleting object without one
		}
		return p
	}
	objs := []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}}},
		pod("new", "ghcr.io/fluxcd/source-controller:v1.9.5", false),
		pod("old-leaving", "ghcr.io/fluxcd/source-controller:v1.8.0", true),
	}
	c := fake.NewClientBuilder().WithObjects(objs...).Build()
	want := map[string][]string{"source-controller": {"ghcr.io/fluxcd/source-controller:v1.9.5"}}

	running, err := RunningImages(t.Context(), c, "flux-system", []string{"source-controller"})
	if err != nil {
		t.Fatal(err)
	}
	if m := ImageMismatches(want, running); len(m) != 0 {
		t.Errorf("a terminating old pod counted: %v (running %v)", m, running)
	}

	if err := c.Create(t.Context(), pod("old-still-running", "ghcr.io/fluxcd/source-controller:v1.8.0", false)); err != nil {
		t.Fatal(err)
	}
	running, err = RunningImages(t.Context(), c, "flux-system", []string{"source-controller"})
	if err != nil {
		t.Fatal(err)
	}
	m := ImageMismatches(want, running)
	wantLine := "source-controller runs ghcr.io/fluxcd/source-controller:v1.8.0, ghcr.io/fluxcd/source-controller:v1.9.5, want ghcr.io/fluxcd/source-controller:v1.9.5"
	if len(m) != 1 || m[0] != wantLine {
		t.Errorf("mismatches = %q, want [%q]", m, wantLine)
	}

	if _, err := RunningImages(t.Context(), c, "flux-system", []string{"helm-controller"}); err == nil || !strings.Contains(err.Error(), "Deployment flux-system/helm-controller") {
		t.Errorf("a missing Deployment: %v, want an error naming it", err)
	}
	if m := ImageMismatches(map[string][]string{"helm-controller": {"h:1"}}, map[string][]string{}); len(m) != 1 || m[0] != "helm-controller runs no pod, want h:1" {
		t.Errorf("a controller without pods: %q", m)
	}
}
