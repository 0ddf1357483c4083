package diagnose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

func fluxObj(kind, ns, name string, ready, reason, msg string, inventory ...string) *unstructured.Unstructured {
	group := map[string]string{"Kustomization": "kustomize.toolkit.fluxcd.io/v1", "HelmRelease": "helm.toolkit.fluxcd.io/v2"}[kind]
	if group == "" {
		group = "source.toolkit.fluxcd.io/v1"
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": group, "kind": kind,
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     map[string]any{},
		"status":   map[string]any{},
	}}
	if ready != "" {
		_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Ready", "status": ready, "reason": reason, "message": msg}}, "status", "conditions")
	}
	if ready == "" && len(inventory) == 0 {
		delete(u.Object, "status") // never reconciled: no controller wrote a status
	}
	var entries []any
	for _, id := range inventory {
		entries = append(entries, map[string]any{"id": id, "v": "v1"})
	}
	if entries != nil {
		_ = unstructured.SetNestedSlice(u.Object, entries, "status", "inventory", "entries")
	}
	return u
}

func fleet() []*unstructured.Unstructured {
	apps := fluxObj("Kustomization", "flux-system", "apps", "False", "DependencyNotReady", "dependency 'flux-system/infrastructure' is not ready")
	_ = unstructured.SetNestedSlice(apps.Object, []any{map[string]any{"name": "infrastructure"}}, "spec", "dependsOn")
	_ = unstructured.SetNestedField(apps.Object, map[string]any{"kind": "GitRepository", "name": "flux-system"}, "spec", "sourceRef")
	return []*unstructured.Unstructured{
		fluxObj("GitRepository", "flux-system", "flux-system", "True", "Succeeded", "stored artifact"),
		apps,
		fluxObj("Kustomization", "flux-system", "flux-system", "True", "ReconciliationSucceeded", "Applied",
			"flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization",
			"flux-system_infrastructure_kustomize.toolkit.fluxcd.io_Kustomization",
			"apps__Namespace"),
		fluxObj("Kustomization", "flux-system", "infrastructure", "False", "HealthCheckFailed", "timeout waiting for: [HelmRelease/redis/redis status: 'InProgress']",
			"flux-system_bitnami_source.toolkit.fluxcd.io_HelmRepository",
			"redis_redis_helm.toolkit.fluxcd.io_HelmRelease"),
		fluxObj("HelmRepository", "flux-system", "bitnami", "False", "IndexationFailed", "failed to fetch Helm repository index: dial tcp: lookup charts.example on 10.96.0.10:53: no such host"),
		fluxObj("HelmRelease", "redis", "redis", "", "", ""),
	}
}

func TestRenderTree(t *testing.T) {
	got := strings.Join(renderTree(fleet()), "\n")
	want := `Kustomization/flux-system/flux-system  Ready
├── Kustomization/flux-system/apps  NOT READY  DependencyNotReady: dependency 'flux-system/infrastructure' is not ready  [dependsOn infrastructure; source GitRepository/flux-system]
└── Kustomization/flux-system/infrastructure  NOT READY  HealthCheckFailed: timeout waiting for: [HelmRelease/redis/redis status: 'InProgress']
    ├── HelmRelease/redis/redis  Unknown  no Ready condition (is its controller running?)
    └── HelmRepository/flux-system/bitnami  NOT READY  IndexationFailed: failed to fetch Helm repository index: dial tcp: lookup charts.example on 10.96.0.10:53: no such host
GitRepository/flux-system/flux-system  Ready`
	if got != want {
		t.Fatalf("renderTree:\n%s\nwant:\n%s", got, want)
	}
}

// TestRenderTreeChartsAndCycles: a HelmRelease's HelmChart goes under the
// release, a Kustomization listing itself is not its own child, and an
// inventory loop ends in a "(cycle)" line instead of recursing.
func TestRenderTreeChartsAndCycles(t *testing.T) {
	release := fluxObj("HelmRelease", "redis", "redis", "True", "InstallSucceeded", "installed")
	_ = unstructured.SetNestedField(release.Object, "flux-system/redis-redis", "status", "helmChart")
	objs := []*unstructured.Unstructured{
		fluxObj("Kustomization", "flux-system", "a", "True", "ReconciliationSucceeded", "Applied",
			"flux-system_a_kustomize.toolkit.fluxcd.io_Kustomization",
			"flux-system_b_kustomize.toolkit.fluxcd.io_Kustomization",
			"redis_redis_helm.toolkit.fluxcd.io_HelmRelease"),
		fluxObj("Kustomization", "flux-system", "b", "True", "ReconciliationSucceeded", "Applied",
			"flux-system_c_kustomize.toolkit.fluxcd.io_Kustomization"),
		fluxObj("Kustomization", "flux-system", "c", "True", "ReconciliationSucceeded", "Applied",
			"flux-system_b_kustomize.toolkit.fluxcd.io_Kustomization"),
		release,
		fluxObj("HelmChart", "flux-system", "redis-redis", "False", "ChartPullError", "no chart version found"),
		fluxObj("HelmChart", "flux-system", "orphan", "True", "ChartPullSucceeded", "pulled"),
	}
	got := strings.Join(renderTree(objs), "\n")
	want := `Kustomization/flux-system/a  Ready
├── Kustomization/flux-system/b  Ready
│   └── Kustomization/flux-system/c  Ready
│       └── Kustomization/flux-system/b  (cycle)
└── HelmRelease/redis/redis  Ready
    └── HelmChart/flux-system/redis-redis  NOT READY  ChartPullError: no chart version found
HelmChart/flux-system/orphan  Ready`
	if got != want {
		t.Fatalf("renderTree:\n%s\nwant:\n%s", got, want)
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		in    string
		limit int
		want  string
	}{
		{"short", 20, "short"},
		{"multi\n  line\tmessage", 50, "multi line message"},
		{strings.Repeat("a", 30) + "CAUSE", 30, "aaaaaaaaaa ... aaaaaaaaaaCAUSE"},
	}
	for _, tc := range cases {
		got := Truncate(tc.in, tc.limit)
		if got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
		if len(got) > tc.limit && len(tc.in) > tc.limit {
			t.Errorf("Truncate(%q) too long: %d", tc.in, len(got))
		}
	}
}

func badPod(name, reason string, restarts int32) *corev1.Pod {
	ctrl := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name, Labels: map[string]string{"pod-template-hash": "abc"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-abc", Controller: &ctrl}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "fleet-kit/does-not-exist:v0"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "web", Image: "fleet-kit/does-not-exist:v0", RestartCount: restarts,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "Back-off pulling image \"fleet-kit/does-not-exist:v0\""}},
		}}},
	}
	if reason == "CrashLoopBackOff" {
		p.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
	}
	return p
}

func runningPod(name string, for_ time.Duration) *corev1.Pod {
	p := badPod(name, "", 0)
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Now().Add(-for_))}}
	return p
}

func TestTroublesOf(t *testing.T) {
	cases := []struct {
		pod      *corev1.Pod
		state    string
		previous bool
		logs     bool
	}{
		{badPod("a", "ImagePullBackOff", 0), "ImagePullBackOff", false, false},
		{badPod("b", "CrashLoopBackOff", 4), "CrashLoopBackOff", true, true},
		{badPod("c", "ContainerCreating", 0), "", false, false},
		{runningPod("d", 2*time.Minute), "NotReady", false, true},
		{runningPod("e", 5*time.Second), "NotReady", false, true},
	}
	for _, tc := range cases {
		got := troublesOf(tc.pod)
		if tc.state == "" {
			if len(got) != 0 {
				t.Errorf("%s: want no trouble, got %+v", tc.pod.Name, got)
			}
			continue
		}
		if len(got) != 1 || got[0].State != tc.state || got[0].Previous != tc.previous || got[0].HasLogs != tc.logs {
			t.Errorf("%s: got %+v", tc.pod.Name, got)
		}
	}
}

func TestRecentWarnings(t *testing.T) {
	at := func(s int) metav1.Time { return metav1.NewTime(time.Date(2026, 11, 25, 22, 0, s, 0, time.UTC)) }
	ev := func(name, reason, msg string, s int, count int32) corev1.Event {
		return corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name + reason, Namespace: "apps"}, Type: "Warning", Reason: reason, Message: msg, Count: count, LastTimestamp: at(s),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "apps", Name: name}}
	}
	events := []corev1.Event{
		ev("web-1", "Failed", "ErrImagePull", 1, 1),
		ev("web-1", "BackOff", "Back-off pulling image", 5, 3),
		ev("web-1", "Failed", "ErrImagePull", 9, 2),
		{Type: "Normal", Reason: "Pulled", LastTimestamp: at(10)},
	}
	got := recentWarnings(events, 10)
	want := []string{
		"22:00:09 Pod/apps/web-1 Failed: ErrImagePull (x3)",
		"22:00:05 Pod/apps/web-1 BackOff: Back-off pulling image (x3)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recentWarnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(recentWarnings(events, 1)); n != 1 {
		t.Fatalf("limit 1 gave %d lines", n)
	}
}

// fakeClients serve the fleet (plus extra Flux objects), failing pods, a
// Warning event and a Secret with data.
func fakeClients(t *testing.T, extra ...*unstructured.Unstructured) *clients {
	t.Helper()
	listKinds := map[schema.GroupVersionResource]string{}
	var flux []fluxobj.Kind
	for _, kind := range []string{"Kustomization", "GitRepository", "HelmRepository", "HelmRelease"} {
		k, _ := fluxobj.KindOf(kind)
		listKinds[k.GVR()] = kind + "List"
		flux = append(flux, k)
	}
	var objs []runtime.Object
	for _, u := range append(fleet(), extra...) {
		objs = append(objs, u)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, objs...)

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "flux-system"}, Data: map[string][]byte{"password": []byte("s3cr3t-value")}}
	kube := kubefake.NewClientset(
		badPod("web-abc-1", "ImagePullBackOff", 0),
		badPod("web-abc-2", "CrashLoopBackOff", 3),
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "e1"}, Type: "Warning", Reason: "Failed", Message: "Failed to pull image \"fleet-kit/does-not-exist:v0\"",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "apps", Name: "web-abc-1"}, LastTimestamp: metav1.Now()},
		secret,
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "kustomize-controller"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "kustomize-controller"}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "kustomize-controller-abc", Labels: map[string]string{"app": "kustomize-controller"}},
			Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "ghcr.io/fluxcd/kustomize-controller:v1.9.5"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}},
	)
	scheme := runtime.NewScheme()
	_ = metav1.AddMetaToScheme(scheme)
	md := metadatafake.NewSimpleMetadataClient(scheme, &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: secret.ObjectMeta,
	})
	return &clients{Clients: &fluxobj.Clients{Dynamic: dyn, Kube: kube, Metadata: md}, flux: flux}
}

func TestSummarizeWithFakes(t *testing.T) {
	c := fakeClients(t)
	out, err := c.summarize(context.Background(), "staging")
	if err != nil {
		t.Fatalf("summarize: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		"=== staging: Flux (6 objects, 4 not ready) ===",
		"HelmRepository/flux-system/bitnami  NOT READY  IndexationFailed",
		"Pod/apps/web-abc-1 (Deployment/apps/web)",
		"container web: ImagePullBackOff  image fleet-kit/does-not-exist:v0",
		"container web: CrashLoopBackOff",
		"| fake logs",
		"Pod/apps/web-abc-1 Failed: Failed to pull image",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if n := strings.Count(out, "\n"); n > 60 {
		t.Errorf("summary has %d lines, want <= 60", n)
	}
}

func TestCollectWithFakes(t *testing.T) {
	c := fakeClients(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "staging")
	if err := c.collect(context.Background(), "staging", root, Options{}); err != nil {
		t.Fatalf("collect: %v", err)
	}
	for _, f := range []string{
		"flux/kustomization/flux-system_apps.yaml",
		"flux/helmrepository/flux-system_bitnami.yaml",
		"events.yaml", "workloads.yaml", "secrets.txt",
		"pods/apps_web-abc-2_web.log", "pods/apps_web-abc-1_web.log",
		"controllers/kustomize-controller.log",
	} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("missing artifact %s: %v", f, err)
		}
	}
	_ = filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), "s3cr3t-value") || strings.Contains(string(data), "czNjcjN0LXZhbHVl") {
			t.Errorf("%s contains secret data", path)
		}
		return nil
	})
	names, _ := os.ReadFile(filepath.Join(root, "secrets.txt"))
	if string(names) != "flux-system/flux-system\n" {
		t.Errorf("secrets.txt = %q", names)
	}
}

func TestHelmReleaseLines(t *testing.T) {
	hr := fluxObj("HelmRelease", "redis", "redis", "False", "InstallFailed", "Helm install failed for release redis/redis with chart redis@0.1.0: values don't meet the specifications of the schema(s)")
	_ = unstructured.SetNestedField(hr.Object, map[string]any{"chart": "redis", "version": "0.1.x",
		"sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"}}, "spec", "chart", "spec")
	_ = unstructured.SetNestedField(hr.Object, "0.1.0", "status", "lastAttemptedRevision")
	_ = unstructured.SetNestedField(hr.Object, "flux-system/redis-redis", "status", "helmChart")
	_ = unstructured.SetNestedSlice(hr.Object, []any{map[string]any{"version": int64(1), "status": "failed", "chartName": "redis", "chartVersion": "0.1.0",
		"digest": "sha256:1234567890abcdef1234", "lastDeployed": "2026-11-26T06:01:02Z"}}, "status", "history")
	chart := fluxObj("HelmChart", "flux-system", "redis-redis", "True", "ChartPullSucceeded", "pulled 'redis' chart with version '0.1.0'")
	got := strings.Join(helmReleaseLines([]*unstructured.Unstructured{hr, chart}), "\n")
	want := strings.Join([]string{
		"HelmRelease/redis/redis  chart redis@0.1.x from HelmRepository/flux-system/charts  attempted 0.1.0",
		"  helm-controller: InstallFailed: Helm install failed for release redis/redis with chart redis@0.1.0: values don't meet the specifications of the schema(s)",
		"  history: v1 failed redis@0.1.0 digest sha256:1234567890ab deployed 06:01:02",
	}, "\n")
	if got != want {
		t.Fatalf("helmReleaseLines:\n%s\nwant:\n%s", got, want)
	}
}
