package diagnose

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
)

// The real-cluster test uses the offline kit profile (FLEET_NODE_IMAGE,
// FLEET_KIND_CONFIG, FLEET_FLUX_MANIFESTS): this machine has no registry.

func kindCluster(t *testing.T, name string) *rest.Config {
	t.Helper()
	if testing.Short() {
		t.Skip("creates a real kind cluster; skipped with -short")
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		t.Skipf("docker info failed (%v): no Docker engine for kind: %s", err, line)
	}
	for _, v := range []string{"FLEET_NODE_IMAGE", "FLEET_KIND_CONFIG", "FLEET_FLUX_MANIFESTS"} {
		if os.Getenv(v) == "" {
			t.Skipf("%s is unset: source the offline kit profile (hack/kit/build.sh --print) to run real-kind tests", v)
		}
	}
	raw, err := os.ReadFile(os.Getenv("FLEET_KIND_CONFIG"))
	if err != nil {
		t.Fatalf("reading FLEET_KIND_CONFIG: %v", err)
	}
	provider := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
	if names, err := provider.List(); err == nil && slices.Contains(names, name) {
		_ = provider.Delete(name, "") // left over from an interrupted run
	}
	kubeconfig := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := provider.Create(name,
		kindcluster.CreateWithRawConfig(raw),
		kindcluster.CreateWithNodeImage(os.Getenv("FLEET_NODE_IMAGE")),
		kindcluster.CreateWithKubeconfigPath(kubeconfig),
		kindcluster.CreateWithWaitForReady(2*time.Minute),
	); err != nil {
		_ = provider.Delete(name, kubeconfig)
		t.Fatalf("creating kind cluster %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := provider.Delete(name, kubeconfig); err != nil {
			t.Errorf("deleting kind cluster %s: %v", name, err)
		}
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("loading kubeconfig: %v", err)
	}
	return cfg
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func applyFluxCRDs(t *testing.T, ctx context.Context, dyn dynamic.Interface) {
	t.Helper()
	for _, f := range []string{"source-controller.yaml", "kustomize-controller.yaml"} {
		data, err := os.ReadFile(filepath.Join(os.Getenv("FLEET_FLUX_MANIFESTS"), f))
		if err != nil {
			t.Fatalf("reading Flux manifests: %v", err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("decoding %s: %v", f, err)
			}
			if u.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if _, err := dyn.Resource(crdGVR).Create(ctx, &u, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating CRD %s: %v", u.GetName(), err)
			}
			name := u.GetName()
			if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				got, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				ready, _ := readyOfType(got, "Established")
				return ready, nil
			}); err != nil {
				t.Fatalf("CRD %s not established: %v", name, err)
			}
		}
	}
}

func readyOfType(u *unstructured.Unstructured, t string) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == t {
			return m["status"] == "True", m["reason"].(string)
		}
	}
	return false, ""
}

func TestIntegrationSummarizeAndCollect(t *testing.T) {
	cfg := kindCluster(t, "hx-diag")
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
	applyFluxCRDs(t, ctx, dyn)

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
	for _, want := range []string{"Pod " + ns + "/" + podName, "fleet-kit/does-not-exist:v0", "Kustomization apps/apps  NOT READY  BuildFailed"} {
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
