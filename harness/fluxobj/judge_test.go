package fluxobj

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func fluxGroupVersion(kind string) string {
	k, ok := KindOf(kind)
	if !ok {
		panic("unknown Flux kind " + kind)
	}
	return k.GVK.GroupVersion().String()
}

func noStatus(u *unstructured.Unstructured) *unstructured.Unstructured {
	delete(u.Object, "status")
	return u
}

// staticHelmRepository is an OCI HelmRepository as source-controller leaves
// it: spec intact, status emptied, never reconciled again.
func staticHelmRepository() *unstructured.Unstructured {
	u := noStatus(flux("HelmRepository", "flux-system", "bitnami", 1, 0, nil))
	u.Object["spec"] = map[string]any{"type": "oci", "url": "oci://registry.example/charts"}
	u.Object["status"] = map[string]any{}
	return u
}

func cond(t, status, reason, msg string) map[string]any {
	return map[string]any{"type": t, "status": status, "reason": reason, "message": msg, "lastTransitionTime": "2026-11-25T22:41:07Z"}
}

func withGeneration(c map[string]any, gen int64) map[string]any {
	c["observedGeneration"] = gen
	return c
}

func flux(kind, ns, name string, gen, observed int64, status map[string]any, conds ...map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": fluxGroupVersion(kind),
		"kind":       kind,
		"metadata":   map[string]any{"namespace": ns, "name": name, "generation": gen},
		"spec":       map[string]any{},
	}}
	st := map[string]any{"observedGeneration": observed}
	for k, v := range status {
		st[k] = v
	}
	var cs []any
	for _, c := range conds {
		cs = append(cs, c)
	}
	if len(cs) > 0 {
		st["conditions"] = cs
	}
	u.Object["status"] = st
	return u
}

func TestJudge(t *testing.T) {
	const rev = "main@sha1:abc"
	withSpec := func(u *unstructured.Unstructured, v any, path ...string) *unstructured.Unstructured {
		_ = unstructured.SetNestedField(u.Object, v, path...)
		return u
	}
	cases := []struct {
		name      string
		obj       *unstructured.Unstructured
		sourceRev string
		phase     Phase
		reason    string
		terminal  bool
		graced    bool
	}{
		{"ready", flux("Kustomization", "flux-system", "apps", 2, 2, map[string]any{"lastAppliedRevision": rev}, cond("Ready", "True", "ReconciliationSucceeded", "Applied")), rev, Ready, "ReconciliationSucceeded", false, false},
		{"ready but old generation", flux("Kustomization", "flux-system", "apps", 3, 2, nil, cond("Ready", "True", "ReconciliationSucceeded", "")), "", Progressing, "Progressing", false, false},
		{"ready but older revision applied", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAppliedRevision": "main@sha1:old"}, cond("Ready", "True", "ReconciliationSucceeded", "")), rev, Progressing, "RevisionNotApplied", false, false},
		{"no conditions", flux("GitRepository", "flux-system", "flux-system", 1, 0, nil), "", Progressing, "Pending", false, false},
		{"stalled", flux("Kustomization", "flux-system", "apps", 1, 1, nil, cond("Ready", "False", "InvalidPath", "x"), cond("Stalled", "True", "InvalidPath", "bad path")), "", Failed, "InvalidPath", true, false},
		{"build failed on current revision", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "BuildFailed", "kustomize build failed")), rev, Failed, "BuildFailed", true, false},
		{"build failed on old revision", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": "main@sha1:old"}, cond("Ready", "False", "BuildFailed", "kustomize build failed")), rev, Progressing, "BuildFailed", false, false},
		{"path not found", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x: no such file")), rev, Failed, "ArtifactFailed", true, false},
		{"apply refused on the current revision: immutable Deployment selector", flux("Kustomization", "flux-system", "apps", 2, 2, map[string]any{"lastAttemptedRevision": rev, "lastAppliedRevision": "main@sha1:old"}, cond("Ready", "False", "ReconciliationFailed", `Deployment/apps/fleet-app dry-run failed (Invalid): Deployment.apps "fleet-app" is invalid: spec.selector: Invalid value: {"matchLabels":{"app.kubernetes.io/name":"fleet-app","app.kubernetes.io/instance":"v2"}}: field is immutable`)), rev, Failed, "ReconciliationFailed", true, false},
		{"apply refused on the current revision: field not in the schema", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "ReconciliationFailed", `Deployment/apps/web dry-run failed (BadRequest): .spec.replica: field not declared in schema`)), rev, Failed, "ReconciliationFailed", true, false},
		{"apply refused on an older revision (a fix may be on its way)", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": "main@sha1:old"}, cond("Ready", "False", "ReconciliationFailed", `Deployment/apps/fleet-app dry-run failed (Invalid): Deployment.apps "fleet-app" is invalid: spec.selector: field is immutable`)), rev, Progressing, "ReconciliationFailed", false, false},
		{"apply failed on a namespace another Kustomization creates (heals)", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "ReconciliationFailed", `Deployment/apps/web not found: namespaces "apps" not found`)), rev, Progressing, "ReconciliationFailed", false, false},
		{"artifact download failed", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "ArtifactFailed", "failed to download archive")), rev, Progressing, "ArtifactFailed", false, false},
		{"dependency not ready", flux("Kustomization", "flux-system", "apps", 1, 1, nil, cond("Ready", "False", "DependencyNotReady", "dependency 'flux-system/infra' is not ready")), "", Progressing, "DependencyNotReady", false, false},
		{"health check failed", flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "HealthCheckFailed", "timeout")), rev, Progressing, "HealthCheckFailed", false, false},
		{"helm retries exceeded", flux("HelmRelease", "apps", "web", 1, 1, nil, cond("Ready", "False", "RetriesExceeded", "Failed to install after 1 attempt(s)")), "", Failed, "RetriesExceeded", true, false},
		{"helm install failed, no retries left", flux("HelmRelease", "apps", "web", 1, 1, map[string]any{"installFailures": int64(1)}, cond("Ready", "False", "InstallFailed", "timed out")), "", Failed, "InstallFailed", true, false},
		{"helm install failed, retries left", withSpec(flux("HelmRelease", "apps", "web", 1, 1, map[string]any{"installFailures": int64(1)}, cond("Ready", "False", "InstallFailed", "timed out")), int64(3), "spec", "install", "remediation", "retries"), "", Progressing, "InstallFailed", false, false},
		{"git auth failure is graced", flux("GitRepository", "flux-system", "flux-system", 1, 1, nil, cond("Ready", "False", "GitOperationFailed", "authentication required")), "", Progressing, "GitOperationFailed", false, true},
		{"helm index failure is graced", flux("HelmRepository", "flux-system", "bitnami", 1, 1, nil, cond("Ready", "False", "IndexationFailed", "dial tcp: lookup charts.example: no such host")), "", Progressing, "IndexationFailed", false, true},
		{"oci pull failing while retrying (no observedGeneration, Ready Unknown) is graced", flux("OCIRepository", "flux-system", "nginx-ingress", 1, 0, nil, cond("Ready", "Unknown", "Progressing", "reconciliation in progress"), cond("FetchFailed", "True", "ReadOperationFailed", "failed to pull artifact: dial tcp: lookup ghcr.example: no such host")), "", Progressing, "ReadOperationFailed", false, true},
		{"helm index fetch failed before first success is graced", flux("HelmRepository", "flux-system", "podinfo", 1, 0, nil, cond("Ready", "False", "Failed", "failed to fetch Helm repository index")), "", Progressing, "Failed", false, true},
		{"path not found, status.observedGeneration unset but the condition is current", flux("Kustomization", "flux-system", "apps", 1, 0, map[string]any{"lastAttemptedRevision": rev}, withGeneration(cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x: no such file"), 1)), rev, Failed, "ArtifactFailed", true, false},
		{"path not found before any attempt is graced", flux("Kustomization", "flux-system", "apps", 1, 0, nil, withGeneration(cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x: no such file"), 1)), rev, Progressing, "ArtifactFailed", false, true},
		{"static OCI HelmRepository (status emptied by source-controller)", staticHelmRepository(), "", Ready, "Current", false, false},
		{"fresh object, no status yet", noStatus(flux("HelmRepository", "flux-system", "podinfo", 1, 0, nil)), "", Progressing, "Pending", false, false},
		{"helm values rejected before any release is stored", flux("HelmRelease", "nginx", "nginx", 1, 1, map[string]any{"failures": int64(2)}, cond("Ready", "False", "InstallFailed", "Helm install failed for release nginx/nginx with chart nginx@0.1.0: values don't meet the specifications of the schema(s)")), "", Failed, "InstallFailed", true, false},
		{"helm install timed out with retries left is not final", withSpec(flux("HelmRelease", "apps", "web", 1, 1, map[string]any{"failures": int64(1), "installFailures": int64(1)}, cond("Ready", "False", "InstallFailed", "timeout waiting for")), int64(3), "spec", "install", "remediation", "retries"), "", Progressing, "InstallFailed", false, false},
		{"helm chart with no matching version is graced", flux("HelmChart", "flux-system", "redis-redis", 1, 1, nil, cond("Ready", "False", "ChartPullError", "could not locate a version matching provided version string >=9.0.0")), "", Progressing, "ChartPullError", false, true},
		{"helm chart version not found is graced", flux("HelmChart", "flux-system", "redis-redis", 1, 1, nil, cond("Ready", "False", "ChartPullFailed", "no 'redis' chart with version matching '>=9.0.0' found")), "", Progressing, "ChartPullFailed", false, true},
		{"helm release stalled after retries", flux("HelmRelease", "redis", "redis", 1, 1, nil, cond("Ready", "False", "InstallFailed", "x"), cond("Stalled", "True", "RetriesExceeded", "Failed to install after 1 attempt(s)")), "", Failed, "RetriesExceeded", true, false},
		{"suspended", withSpec(flux("Kustomization", "flux-system", "apps", 1, 1, nil), true, "spec", "suspend"), "", Ready, "Suspended", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Judge(tc.obj, tc.sourceRev)
			if v.Phase != tc.phase || v.Reason != tc.reason || v.Terminal != tc.terminal || v.Graced != tc.graced {
				t.Fatalf("got %+v (phase %s), want phase %s reason %s terminal %v graced %v", v, v.Phase, tc.phase, tc.reason, tc.terminal, tc.graced)
			}
		})
	}
}

func TestParseInventoryID(t *testing.T) {
	cases := []struct {
		id   string
		want ObjectRef
		err  bool
	}{
		{"apps_podinfo_apps_Deployment", ObjectRef{Namespace: "apps", Name: "podinfo", Group: "apps", Kind: "Deployment"}, false},
		{"apps_podinfo__Service", ObjectRef{Namespace: "apps", Name: "podinfo", Kind: "Service"}, false},
		{"_apps__Namespace", ObjectRef{Name: "apps", Kind: "Namespace"}, false},
		{"flux-system_infra_kustomize.toolkit.fluxcd.io_Kustomization", ObjectRef{Namespace: "flux-system", Name: "infra", Group: "kustomize.toolkit.fluxcd.io", Kind: "Kustomization"}, false},
		// RBAC names with colons: Flux escapes them as "__".
		{"_system__controller__kube-proxy_rbac.authorization.k8s.io_ClusterRole", ObjectRef{Name: "system:controller:kube-proxy", Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, false},
		{"bad", ObjectRef{}, true},
		{"a_b_c", ObjectRef{}, true},
		{"ns__apps_Deployment", ObjectRef{}, true},
	}
	for _, tc := range cases {
		got, err := ParseInventoryID(tc.id)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseInventoryID(%q) = %+v, %v; want %+v, err %v", tc.id, got, err, tc.want, tc.err)
		}
	}
}

func TestInventory(t *testing.T) {
	u := flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"inventory": map[string]any{"entries": []any{
		map[string]any{"id": "apps_web_apps_Deployment", "v": "v1"},
		map[string]any{"id": "garbage", "v": "v1"},
	}}})
	got, err := Inventory(u)
	if len(got) != 1 || got[0].String() != "Deployment/apps/web" || got[0].Version != "v1" {
		t.Fatalf("Inventory = %+v", got)
	}
	if err == nil || !strings.Contains(err.Error(), `"garbage"`) {
		t.Fatalf("Inventory error = %v, want it to name the entry that does not parse", err)
	}
}

func TestJudgeWorkload(t *testing.T) {
	dep := func(gen, observed, replicas, ready int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"namespace": "apps", "name": "web", "generation": gen},
			"spec":     map[string]any{"replicas": replicas},
			"status": map[string]any{"observedGeneration": observed, "replicas": replicas, "updatedReplicas": ready, "readyReplicas": ready, "availableReplicas": ready,
				"conditions": []any{map[string]any{"type": "Available", "status": "True"}, map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}}},
		}}
	}
	if v := JudgeWorkload(dep(1, 1, 2, 2)); v.Phase != Ready {
		t.Errorf("healthy deployment: %+v", v)
	}
	if v := JudgeWorkload(dep(1, 1, 2, 1)); v.Phase != Progressing {
		t.Errorf("rolling deployment: %+v", v)
	}
	if v := JudgeWorkload(dep(2, 1, 2, 2)); v.Phase != Progressing {
		t.Errorf("unobserved deployment: %+v", v)
	}
}

// TestJudgeRefusedApplyMessage: the verdict carries the API server's message
// as kustomize-controller reports it, without the empty change set that
// follows it, and names the revision.
func TestJudgeRefusedApplyMessage(t *testing.T) {
	const rev = "main@sha1:abc"
	msg := "Deployment/apps/fleet-app dry-run failed (Invalid): Deployment.apps \"fleet-app\" is invalid: spec.selector: Invalid value: {}: field is immutable\n"
	v := Judge(flux("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, cond("Ready", "False", "ReconciliationFailed", msg)), rev)
	want := "Deployment/apps/fleet-app dry-run failed (Invalid): Deployment.apps \"fleet-app\" is invalid: spec.selector: Invalid value: {}: field is immutable (revision main@sha1:abc)"
	if v.Message != want {
		t.Errorf("message %q\nwant    %q", v.Message, want)
	}
}
