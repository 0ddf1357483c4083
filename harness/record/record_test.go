package record

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	digestA = "sha256:aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000"
	digestB = "sha256:bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000"
)

func baseRecord() *Record {
	return &Record{
		Format: Format, Env: "staging", Outcome: "Ready",
		Fleet: Fleet{Served: "1111111111111111111111111111111111111111", Commit: "abcdef0123456789abcdef0123456789abcdef01", Ref: "HEAD~1", Path: "fixtures/fleets/basic"},
		Kustomizations: []Kustomization{
			{Ref: "Kustomization/flux-system/apps", Objects: []Object{
				{Ref: "Deployment/apps/fleet-app", Group: "apps", Digest: "sha256:d1"},
				{Ref: "Ingress/apps/fleet-app", Group: "networking.k8s.io", Digest: "sha256:i1"},
				{Ref: "Service/apps/fleet-app", Digest: "sha256:s1"},
			}},
			{Ref: "Kustomization/flux-system/infrastructure", Objects: []Object{{Ref: "Deployment/nginx/nginx", Group: "apps", Digest: "sha256:n1"}}},
		},
		HelmReleases: []HelmRelease{
			{Ref: "HelmRelease/podinfo/podinfo", Chart: "podinfo", Version: "6.9.2", ChartDigest: digestA, ConfigDigest: "sha256:c1", Release: 1, Status: "deployed"},
			{Ref: "HelmRelease/redis/redis", Chart: "redis", Version: "0.1.0", ChartDigest: digestA, ConfigDigest: "sha256:c1", Release: 1, Status: "deployed"},
			{Ref: "HelmRelease/old/gone", Chart: "gone", Version: "1.0.0"},
		},
		Workloads: []Workload{
			{Ref: "Deployment/apps/fleet-app", Containers: []Container{{Name: "fleet-app", Image: "fleet-kit/fleet-app:dev", ImageIDs: []string{"docker.io/fleet-kit/fleet-app@" + digestA}}}},
			{Ref: "Deployment/podinfo/podinfo", Containers: []Container{{Name: "podinfo", Image: "ghcr.io/stefanprodan/podinfo:6.9.2", ImageIDs: []string{digestA}}}},
		},
	}
}

func TestDiff(t *testing.T) {
	head := baseRecord()
	head.Fleet = Fleet{Served: "2222222222222222222222222222222222222222", Commit: "abcdef0123456789abcdef0123456789abcdef01", WorkingTree: true, Path: "fixtures/fleets/basic"}
	apps := &head.Kustomizations[0]
	apps.Objects = []Object{
		{Ref: "ConfigMap/apps/settings", Digest: "sha256:cm"},
		{Ref: "Deployment/apps/fleet-app", Group: "apps", Digest: "sha256:d2"},
		{Ref: "Ingress/apps/fleet-app", Group: "networking.k8s.io", Digest: "sha256:i1"},
	}
	head.HelmReleases = []HelmRelease{
		{Ref: "HelmRelease/new/added", Chart: "added", Version: "0.2.0"},
		{Ref: "HelmRelease/podinfo/podinfo", Chart: "podinfo", Version: "6.9.3", ChartDigest: digestB, ConfigDigest: "sha256:c1", Release: 2, Status: "deployed"},
		{Ref: "HelmRelease/redis/redis", Chart: "redis", Version: "0.1.0", ChartDigest: digestA, ConfigDigest: "sha256:c2", Release: 2, Status: "failed"},
	}
	head.Workloads[0].Containers[0].ImageIDs = []string{"docker.io/fleet-kit/fleet-app@" + digestB}
	head.Workloads[1].Containers[0] = Container{Name: "podinfo", Image: "ghcr.io/stefanprodan/podinfo:6.9.3", ImageIDs: []string{digestB}}
	head.Workloads = append(head.Workloads, Workload{Ref: "Deployment/apps/worker", Containers: []Container{{Name: "worker", Image: "fleet-kit/fleet-app:dev"}}})

	c := Diff(baseRecord(), head)
	want := strings.Join([]string{
		"fleet: commit abcdef012345 (HEAD~1) → working tree (on abcdef012345)",
		"Kustomization/flux-system/apps: 1 changed, 1 added, 1 removed",
		"  ~ Deployment/apps/fleet-app",
		"  + ConfigMap/apps/settings",
		"  - Service/apps/fleet-app",
		"Kustomization/flux-system/infrastructure: unchanged",
		"HelmRelease/new/added: installed: chart added 0.2.0",
		"HelmRelease/old/gone: removed (was chart gone 1.0.0)",
		"HelmRelease/podinfo/podinfo: chart podinfo 6.9.2 → 6.9.3 (sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb)",
		"HelmRelease/redis/redis: chart redis 0.1.0 → 0.1.0 (values changed, release failed)",
		"Deployment/apps/fleet-app container fleet-app: image fleet-kit/fleet-app:dev, running sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb",
		"Deployment/apps/worker container worker: added, image fleet-kit/fleet-app:dev",
		"Deployment/podinfo/podinfo container podinfo: image ghcr.io/stefanprodan/podinfo:6.9.2 (sha256:aaaaaaaaaaaa) → ghcr.io/stefanprodan/podinfo:6.9.3 (sha256:bbbbbbbbbbbb)",
	}, "\n")
	if got := c.String(); got != want {
		t.Errorf("Diff:\n%s\nwant:\n%s", got, want)
	}
	if c.Empty() {
		t.Error("Empty() = true for a diff with changes")
	}

	same := Diff(baseRecord(), baseRecord())
	if !same.Empty() {
		t.Errorf("a record compared with itself is not Empty:\n%s", same)
	}
	if got := same.String(); !strings.HasSuffix(got, "HelmRelease/redis/redis: chart redis 0.1.0 → 0.1.0 (unchanged)\nnothing the fleet runs changed") {
		t.Errorf("unchanged diff:\n%s", got)
	}
}

func TestObjectDigest(t *testing.T) {
	obj := func(mutate func(u *unstructured.Unstructured)) string {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"namespace": "apps", "name": "web", "labels": map[string]any{"app": "web"},
				"annotations": map[string]any{"team": "a"}, "resourceVersion": "1", "generation": int64(1)},
			"spec":   map[string]any{"replicas": int64(1)},
			"status": map[string]any{"readyReplicas": int64(1)},
		}}
		if mutate != nil {
			mutate(u)
		}
		return ObjectDigest(u)
	}
	base := obj(nil)
	if !strings.HasPrefix(base, "sha256:") || len(base) != 7+64 {
		t.Fatalf("digest %q", base)
	}
	same := map[string]func(u *unstructured.Unstructured){
		"status":          func(u *unstructured.Unstructured) { u.Object["status"] = map[string]any{"readyReplicas": int64(0)} },
		"resourceVersion": func(u *unstructured.Unstructured) { u.SetResourceVersion("99") },
		"generation":      func(u *unstructured.Unstructured) { u.SetGeneration(7) },
		"managedFields":   func(u *unstructured.Unstructured) { u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "x"}}) },
		"reconcile request": func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{"team": "a", "reconcile.fluxcd.io/requestedAt": "now"})
		},
		"deployment revision": func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{"team": "a", "deployment.kubernetes.io/revision": "3"})
		},
		"creation timestamp, uid": func(u *unstructured.Unstructured) { u.SetUID("u-1"); u.SetCreationTimestamp(metav1.Now()) },
	}
	for name, m := range same {
		if got := obj(m); got != base {
			t.Errorf("%s changed the digest", name)
		}
	}
	differ := map[string]func(u *unstructured.Unstructured){
		"spec":       func(u *unstructured.Unstructured) { u.Object["spec"] = map[string]any{"replicas": int64(2)} },
		"label":      func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"app": "web", "tier": "x"}) },
		"annotation": func(u *unstructured.Unstructured) { u.SetAnnotations(map[string]string{"team": "b"}) },
	}
	for name, m := range differ {
		if got := obj(m); got == base {
			t.Errorf("a change of %s kept the digest", name)
		}
	}

	secret := func(data map[string]any) string {
		return ObjectDigest(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"name": "s"}, "type": "Opaque", "data": data}})
	}
	if secret(map[string]any{"password": "c2VjcmV0"}) != secret(map[string]any{"password": "b3RoZXI="}) {
		t.Error("a Secret's digest depends on its values: it must use key names only")
	}
	if secret(map[string]any{"password": "c2VjcmV0"}) == secret(map[string]any{"password": "c2VjcmV0", "user": "dQ=="}) {
		t.Error("a Secret's digest ignores a new key")
	}
}

func TestWorkloads(t *testing.T) {
	ctrl := func(kind, name string) []metav1.OwnerReference {
		yes := true
		return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &yes}}
	}
	spec := func(containers ...string) corev1.PodSpec {
		var s corev1.PodSpec
		for _, c := range containers {
			name, image, _ := strings.Cut(c, "=")
			s.Containers = append(s.Containers, corev1.Container{Name: name, Image: image})
		}
		return s
	}
	pod := func(ns, name string, owner []metav1.OwnerReference, s corev1.PodSpec, ids ...string) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owner}, Spec: s}
		for i, c := range s.Containers {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: ids[i]})
		}
		return p
	}
	appSpec := spec("app=fleet-kit/fleet-app:dev")
	deploys := []appsv1.Deployment{{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: appSpec}}}}
	sets := []appsv1.StatefulSet{{ObjectMeta: metav1.ObjectMeta{Namespace: "redis", Name: "redis"}, Spec: appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{Spec: spec("redis=redis:7")}}}}
	daemons := []appsv1.DaemonSet{{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kindnet"}, Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: spec("cni=kindnet")}}}}
	rss := []appsv1.ReplicaSet{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-old", OwnerReferences: ctrl("Deployment", "web")}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-new", OwnerReferences: ctrl("Deployment", "web")}},
	}
	pods := []corev1.Pod{
		pod("apps", "web-old-1", ctrl("ReplicaSet", "web-old"), appSpec, "sha256:old"),
		pod("apps", "web-new-1", ctrl("ReplicaSet", "web-new"), appSpec, "sha256:new"),
		pod("apps", "web-new-2", ctrl("ReplicaSet", "web-new"), appSpec, "sha256:new"),
		pod("redis", "redis-0", ctrl("StatefulSet", "redis"), spec("redis=redis:7"), "sha256:r"),
		pod("apps", "debug", nil, spec("sh=busybox"), "sha256:b"),
		pod("kube-system", "kindnet-x", ctrl("DaemonSet", "kindnet"), spec("cni=kindnet"), "sha256:k"),
	}
	got := Workloads(deploys, sets, daemons, rss, pods)
	want := []Workload{
		{Ref: "Deployment/apps/web", Containers: []Container{{Name: "app", Image: "fleet-kit/fleet-app:dev", ImageIDs: []string{"sha256:new", "sha256:old"}}}},
		{Ref: "Pod/apps/debug", Containers: []Container{{Name: "sh", Image: "busybox", ImageIDs: []string{"sha256:b"}}}},
		{Ref: "StatefulSet/redis/redis", Containers: []Container{{Name: "redis", Image: "redis:7", ImageIDs: []string{"sha256:r"}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Workloads =\n%+v\nwant\n%+v", got, want)
	}
}

func TestHelmReleaseOf(t *testing.T) {
	hr := func(status map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
			"metadata": map[string]any{"namespace": "podinfo", "name": "podinfo"},
			"spec":     map[string]any{"interval": "5m", "chart": map[string]any{"spec": map[string]any{"chart": "podinfo", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "podinfo"}}}},
			"status":   status,
		}}
	}
	snap := func(version int64, chartVersion, status string) map[string]any {
		return map[string]any{"name": "podinfo", "namespace": "podinfo", "version": version, "status": status, "chartName": "podinfo",
			"chartVersion": chartVersion, "appVersion": chartVersion, "configDigest": "sha256:cfg" + chartVersion, "digest": "sha256:rel",
			"firstDeployed": "2026-11-26T06:00:00Z", "lastDeployed": "2026-11-26T06:00:00Z"}
	}
	charts := map[string]string{"flux-system/podinfo-podinfo": digestA}
	tests := []struct {
		name string
		obj  *unstructured.Unstructured
		want HelmRelease
	}{
		{"latest release of the history, chart digest from the HelmChart",
			hr(map[string]any{"helmChart": "flux-system/podinfo-podinfo", "lastAttemptedRevision": "6.9.3",
				"history": []any{snap(1, "6.9.2", "superseded"), snap(2, "6.9.3", "deployed")}}),
			HelmRelease{Ref: "HelmRelease/podinfo/podinfo", Chart: "podinfo", Version: "6.9.3", ChartDigest: digestA, AppVersion: "6.9.3", ConfigDigest: "sha256:cfg6.9.3", Release: 2, Status: "deployed", Values: map[string]string{}}},
		{"OCI digest of the release wins",
			hr(map[string]any{"helmChart": "flux-system/podinfo-podinfo", "lastAttemptedRevisionDigest": digestB,
				"history": []any{func() map[string]any { s := snap(1, "6.9.2", "deployed"); s["ociDigest"] = digestB; return s }()}}),
			HelmRelease{Ref: "HelmRelease/podinfo/podinfo", Chart: "podinfo", Version: "6.9.2", ChartDigest: digestB, AppVersion: "6.9.2", ConfigDigest: "sha256:cfg6.9.2", Release: 1, Status: "deployed", Values: map[string]string{}}},
		{"no release yet: the attempted chart version",
			hr(map[string]any{"helmChart": "flux-system/podinfo-podinfo", "lastAttemptedRevision": "6.9.2", "lastAttemptedConfigDigest": "sha256:x"}),
			HelmRelease{Ref: "HelmRelease/podinfo/podinfo", Chart: "podinfo", Version: "6.9.2", ChartDigest: digestA, ConfigDigest: "sha256:x", Values: map[string]string{}}},
	}
	withValues := hr(map[string]any{"lastAttemptedRevision": "6.9.2"})
	_ = unstructured.SetNestedField(withValues.Object, map[string]any{"redis": map[string]any{"password": plantedPassword}, "replicaCount": int64(2)}, "spec", "values")
	tests = append(tests, struct {
		name string
		obj  *unstructured.Unstructured
		want HelmRelease
	}{"spec.values by path and digest, never the value", withValues,
		HelmRelease{Ref: "HelmRelease/podinfo/podinfo", Chart: "podinfo", Version: "6.9.2",
			Values: map[string]string{"redis.password": sha12(`"` + plantedPassword + `"`), "replicaCount": sha12(`2`)}}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HelmReleaseOf(tt.obj, charts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	r := baseRecord()
	r.Time = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	path := filepath.Join(dir, "artifacts", FileName("staging", ""))
	if err := Write(path, r); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("read back %+v\nwant %+v", got, r)
	}
	if FileName("staging", "base") != "record-staging-base.json" || filepath.Base(path) != "record-staging.json" {
		t.Errorf("file names: %s, %s", FileName("staging", "base"), filepath.Base(path))
	}

	bad := filepath.Join(dir, "bad.json")
	for _, tt := range []struct{ content, want string }{
		{"not json", "record " + bad + ": not a record"},
		{`{"format": 2, "env": "staging"}`, "record " + bad + ": format 2, this harness reads format 1"},
	} {
		if err := os.WriteFile(bad, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(bad); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Read(%q) error = %v, want it to start with %q", tt.content, err, tt.want)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("Read of a missing file: %v", err)
	}
}
