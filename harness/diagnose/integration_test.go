package diagnose

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// The real-cluster test runs on a kind cluster from the offline kit profile
// (see harness/internal/kindtest): this machine has no registry.

func TestIntegrationSummarizeAndCollect(t *testing.T) {
	kit := kindtest.Require(t, kindtest.FluxManifestsVar)
	cfg := kit.Cluster(t, "hx-diag").RESTConfig
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kit.ApplyFluxCRDs(ctx, t, cfg)

	const ns = "apps"
	const secretValue = "hx-diag-very-secret-value"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"password": secretValue}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A Kustomization whose build failed, written as kustomize-controller would.
	ksGVR := schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	ks := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"namespace": ns, "name": "apps"},
		"spec":     map[string]any{"interval": "10m", "prune": true, "path": "./apps", "sourceRef": map[string]any{"kind": "GitRepository", "name": "fleet"}},
	}}
	created, err := dyn.Resource(ksGVR).Namespace(ns).Create(ctx, ks, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Object["status"] = map[string]any{"observedGeneration": created.GetGeneration(), "conditions": []any{map[string]any{
		"type": "Ready", "status": "False", "reason": "BuildFailed", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
		"message": "kustomize build failed: accumulating resources: open apps/missing.yaml: no such file or directory"}}}
	if _, err := dyn.Resource(ksGVR).Namespace(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	one := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "fleet-kit/does-not-exist:v0", ImagePullPolicy: corev1.PullIfNotPresent,
					Env: []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}}}}}},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var podName string
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) == 0 {
			return false, nil
		}
		for _, cs := range pods.Items[0].Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
				podName = pods.Items[0].Name
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("pod never reached an image pull error: %v", err)
	}

	start := time.Now()
	sum, err := Summarize(ctx, "hx-diag", cfg)
	if err != nil {
		t.Fatalf("Summarize: %v\n%s", err, sum)
	}
	t.Logf("Summarize took %s:\n%s", time.Since(start).Round(time.Millisecond), sum)
	for _, want := range []string{"Pod/" + ns + "/" + podName, "fleet-kit/does-not-exist:v0", "Kustomization/apps/apps  NOT READY  BuildFailed"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if !strings.Contains(sum, "ErrImagePull") && !strings.Contains(sum, "ImagePullBackOff") {
		t.Errorf("summary does not name the image pull failure")
	}
	if n := strings.Count(sum, "\n"); n > 60 {
		t.Errorf("summary has %d lines, want <= 60", n)
	}

	dir := t.TempDir()
	start = time.Now()
	if err := CollectArtifacts(ctx, "hx-diag", cfg, dir); err != nil {
		t.Fatalf("CollectArtifacts: %v", err)
	}
	t.Logf("CollectArtifacts took %s", time.Since(start).Round(time.Millisecond))
	root := filepath.Join(dir, "hx-diag")
	for _, f := range []string{"flux/kustomization/apps_apps.yaml", "events.yaml", "workloads.yaml", "secrets.txt", "pods/" + ns + "_" + podName + "_web.log"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("missing artifact %s: %v", f, err)
		}
	}
	names, _ := os.ReadFile(filepath.Join(root, "secrets.txt"))
	if !strings.Contains(string(names), ns+"/creds") {
		t.Errorf("secrets.txt lacks %s/creds:\n%s", ns, names)
	}
	flux, _ := os.ReadFile(filepath.Join(root, "flux/kustomization/apps_apps.yaml"))
	if !strings.Contains(string(flux), "BuildFailed") {
		t.Errorf("Kustomization artifact lacks its status:\n%s", flux)
	}
	_ = filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), secretValue) || strings.Contains(string(data), base64.StdEncoding.EncodeToString([]byte(secretValue))) {
			t.Errorf("%s contains secret data", path)
		}
		rel, _ := filepath.Rel(root, path)
		t.Logf("artifact %s (%d bytes)", rel, len(data))
		return nil
	})
}
