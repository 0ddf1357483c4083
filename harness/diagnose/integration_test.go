package diagnose

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest"
	"github.com/flux-fleet/flux-fleet/harness/record"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// The real-cluster test runs on a kind cluster from the offline kit profile
// (see harness/internal/kindtest): this machine has no registry.

func TestIntegrationSummarizeAndCollect(t *testing.T) {
	kit := kindtest.Require(t, kindtest.FluxManifestsVar)
	c := kit.Cluster(t, "hx-diag")
	cfg := c.RESTConfig
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
	applyHelmReleaseCRD(ctx, t, kit, dyn)

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
		"spec": map[string]any{"interval": "10m", "prune": true, "path": "./apps", "sourceRef": map[string]any{"kind": "GitRepository", "name": "fleet"},
			"postBuild": map[string]any{"substitute": map[string]any{"REDIS_PASSWORD": secretValue}}},
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

	// A HelmRelease whose values hold the password: artifacts must show
	// the key, never the value.
	hrGVR := schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
	hr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
		"metadata": map[string]any{"namespace": ns, "name": "cache"},
		"spec": map[string]any{"interval": "10m", "chart": map[string]any{"spec": map[string]any{"chart": "redis", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}}},
			"values": map[string]any{"auth": map[string]any{"password": secretValue}}},
	}}
	if _, err := dyn.Resource(hrGVR).Namespace(ns).Create(ctx, hr, metav1.CreateOptions{}); err != nil {
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
	digest := sha12(`"` + secretValue + `"`)
	hrArtifact, _ := os.ReadFile(filepath.Join(root, "flux/helmrelease/"+ns+"_cache.yaml"))
	if !strings.Contains(string(hrArtifact), "password: "+digest) {
		t.Errorf("HelmRelease artifact lacks its values key with the value's digest %s:\n%s", digest, hrArtifact)
	}
	if !strings.Contains(string(flux), "REDIS_PASSWORD: "+digest) {
		t.Errorf("Kustomization artifact lacks its substitution with the value's digest %s:\n%s", digest, flux)
	}

	// kind's own export, redacted before it reaches the artifacts, as the
	// harness does it. The node's /var/log, which kind copies, holds the Flux
	// controllers' logs: one that quotes the HelmRelease's value is planted
	// there, as helm-controller writes Helm's schema errors.
	node := c.Name + "-control-plane"
	plantedLog := "/var/log/pods/flux-system_helm-controller-planted_0000/manager/0.log"
	line := `2026-12-07T00:00:00Z stderr F {"level":"error","msg":"Reconciler error","error":"- at '/auth/password': '` + secretValue + `' does not match pattern '^x'"}`
	if out, err := exec.CommandContext(ctx, "docker", "exec", node, "sh", "-c",
		`mkdir -p "$(dirname "$1")" && printf '%s\n' "$2" > "$1"`, "sh", plantedLog, line).CombinedOutput(); err != nil {
		t.Fatalf("planting a controller log in node %s: %v: %s", node, err, out)
	}
	fc, err := fluxobj.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	values, err := record.ReadScrubbers(ctx, fc)
	if err != nil {
		t.Fatalf("reading the values to scrub: %v", err)
	}
	kindLogs := filepath.Join(root, "kind-logs")
	start = time.Now()
	if err := c.ExportRedactedLogs(ctx, kindLogs, func(dir string) error { return RedactKindLogs(dir, values) }); err != nil {
		t.Fatalf("ExportRedactedLogs: %v", err)
	}
	exported, err := os.ReadFile(filepath.Join(kindLogs, node, "pods", "flux-system_helm-controller-planted_0000", "manager", "0.log"))
	if want := "'<" + digest + ">' does not match"; err != nil || !strings.Contains(string(exported), want) {
		t.Errorf("the planted controller log as exported (%v): %q, want it with %q", err, exported, want)
	}
	t.Logf("ExportRedactedLogs took %s", time.Since(start).Round(time.Millisecond))
	assertNodeEnvRedacted(t, filepath.Join(kindLogs, c.Name+"-control-plane", "inspect.json"))

	for path, data := range readTree(t, root) {
		if strings.Contains(data, secretValue) || strings.Contains(data, base64.StdEncoding.EncodeToString([]byte(secretValue))) {
			t.Errorf("%s contains secret data", path)
		}
		rel, _ := filepath.Rel(root, path)
		t.Logf("artifact %s (%d bytes)", rel, len(data))
	}
	testsupport.AssertPrivateTree(t, root)
}

// assertNodeEnvRedacted checks a node container's inspect.json as kind
// exported it and RedactKindLogs rewrote it: still JSON, an environment
// (kind's node image sets container=docker, the kind provider more), every
// entry's value "<redacted>".
func assertNodeEnvRedacted(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the node's inspect.json: %v", err)
	}
	var containers []struct {
		Config struct{ Env []string }
	}
	if err := json.Unmarshal(data, &containers); err != nil {
		t.Fatalf("%s is not JSON after redaction: %v", path, err)
	}
	if len(containers) != 1 || len(containers[0].Config.Env) == 0 {
		t.Fatalf("%s: want one container with an environment, got %+v", path, containers)
	}
	for _, kv := range containers[0].Config.Env {
		if name, value, _ := strings.Cut(kv, "="); name == "" || value != Redacted {
			t.Errorf("%s: Env entry %q not redacted", path, kv)
		}
	}
}

// applyHelmReleaseCRD creates the CRDs of the kit's helm-controller manifest
// (the kit builds helm-controller) and waits until they are Established.
func applyHelmReleaseCRD(ctx context.Context, t *testing.T, kit kindtest.Profile, dyn dynamic.Interface) {
	t.Helper()
	path := filepath.Join(kit.FluxManifests, "helm-controller.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the kit's helm-controller manifest: %v", err)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("decoding %s: %v", path, err)
		}
		if u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		if _, err := dyn.Resource(crdGVR).Create(ctx, &u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating CRD %s: %v", u.GetName(), err)
		}
		name := u.GetName()
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil // not visible yet
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not established: %v", name, err)
		}
	}
}
