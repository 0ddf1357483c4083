package fluxobj_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	. "github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj/fluxobjtest"
)

func noStatus(u *unstructured.Unstructured) *unstructured.Unstructured {
	delete(u.Object, "status")
	return u
}

// staticHelmRepository is an OCI HelmRepository as source-controller leaves
// it: spec intact, status emptied, never reconciled again.
func staticHelmRepository() *unstructured.Unstructured {
	u := noStatus(fluxobjtest.Object("HelmRepository", "flux-system", "bitnami", 1, 0, nil))
	u.Object["spec"] = map[string]any{"type": "oci", "url": "oci://registry.example/charts"}
	u.Object["status"] = map[string]any{}
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
		{"ready", fluxobjtest.Object("Kustomization", "flux-system", "apps", 2, 2, map[string]any{"lastAppliedRevision": rev}, fluxobjtest.Cond("Ready", "True", "ReconciliationSucceeded", "Applied")), rev, Ready, "ReconciliationSucceeded", false, false},
		{"ready but old generation", fluxobjtest.Object("Kustomization", "flux-system", "apps", 3, 2, nil, fluxobjtest.Cond("Ready", "True", "ReconciliationSucceeded", "")), "", Progressing, "Progressing", false, false},
		{"ready but older revision applied", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAppliedRevision": "main@sha1:old"}, fluxobjtest.Cond("Ready", "True", "ReconciliationSucceeded", "")), rev, Progressing, "RevisionNotApplied", false, false},
		{"no conditions", fluxobjtest.Object("GitRepository", "flux-system", "flux-system", 1, 0, nil), "", Progressing, "Pending", false, false},
		{"stalled", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "InvalidPath", "x"), fluxobjtest.Cond("Stalled", "True", "InvalidPath", "bad path")), "", Failed, "InvalidPath", true, false},
		{"build failed on current revision", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.Cond("Ready", "False", "BuildFailed", "kustomize build failed")), rev, Failed, "BuildFailed", true, false},
		{"build failed on old revision", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": "main@sha1:old"}, fluxobjtest.Cond("Ready", "False", "BuildFailed", "kustomize build failed")), rev, Progressing, "BuildFailed", false, false},
		{"path not found", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.Cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x: no such file")), rev, Failed, "ArtifactFailed", true, false},
		{"apply refused on the current revision: immutable Deployment selector", fluxobjtest.Object("Kustomization", "flux-system", "apps", 2, 2, map[string]any{"lastAttemptedRevision": rev, "lastAppliedRevision": "main@sha1:old"}, fluxobjtest.Cond("Ready", "False", "ReconciliationFailed", `Deployment/apps/fleet-app dry-run failed (Invalid): Deployment.apps "fleet-app" is invalid: spec.selector: Invalid value: {"matchLabels":{"app.kubernetes.io/name":"fleet-app","app.kubernetes.io/instance":"v2"}}: field is immutable`)), rev, Failed, "ReconciliationFailed", true, false},
		{"apply refused on the current revision: field not in the schema", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.Cond("Ready", "False", "ReconciliationFailed", `Deployment/apps/web dry-run failed (BadRequest): .spec.replica: field not declared in schema`)), rev, Failed, "ReconciliationFailed", true, false},
		{"apply refused on an older revision (a fix may be on its way)", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": "main@sha1:old"}, fluxobjtest.Cond("Ready", "False", "ReconciliationFailed", `Deployment/apps/fleet-app dry-run failed (Invalid): Deployment.apps "fleet-app" is invalid: spec.selector: field is immutable`)), rev, Progressing, "ReconciliationFailed", false, false},
		{"apply failed on a namespace another Kustomization creates (heals)", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.Cond("Ready", "False", "ReconciliationFailed", `Deployment/apps/web not found: namespaces "apps" not found`)), rev, Progressing, "ReconciliationFailed", false, false},
		{"artifact download failed", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.Cond("Ready", "False", "ArtifactFailed", "failed to download archive")), rev, Progressing, "ArtifactFailed", false, false},
		{"dependency not ready", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "DependencyNotReady", "dependency 'flux-system/infra' is not ready")), "", Progressing, "DependencyNotReady", false, false},
		{"health check failed", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.Cond("Ready", "False", "HealthCheckFailed", "timeout")), rev, Progressing, "HealthCheckFailed", false, false},
		{"helm retries exceeded", fluxobjtest.Object("HelmRelease", "apps", "web", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "RetriesExceeded", "Failed to install after 1 attempt(s)")), "", Failed, "RetriesExceeded", true, false},
		{"helm install failed, no retries left", fluxobjtest.Object("HelmRelease", "apps", "web", 1, 1, map[string]any{"installFailures": int64(1)}, fluxobjtest.Cond("Ready", "False", "InstallFailed", "timed out")), "", Failed, "InstallFailed", true, false},
		{"helm install failed, retries left", withSpec(fluxobjtest.Object("HelmRelease", "apps", "web", 1, 1, map[string]any{"installFailures": int64(1)}, fluxobjtest.Cond("Ready", "False", "InstallFailed", "timed out")), int64(3), "spec", "install", "remediation", "retries"), "", Progressing, "InstallFailed", false, false},
		{"git auth failure is graced", fluxobjtest.Object("GitRepository", "flux-system", "flux-system", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "GitOperationFailed", "authentication required")), "", Progressing, "GitOperationFailed", false, true},
		{"helm index failure is graced", fluxobjtest.Object("HelmRepository", "flux-system", "bitnami", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "IndexationFailed", "dial tcp: lookup charts.example: no such host")), "", Progressing, "IndexationFailed", false, true},
		{"oci pull failing while retrying (no observedGeneration, Ready Unknown) is graced", fluxobjtest.Object("OCIRepository", "flux-system", "nginx-ingress", 1, 0, nil, fluxobjtest.Cond("Ready", "Unknown", "Progressing", "reconciliation in progress"), fluxobjtest.Cond("FetchFailed", "True", "ReadOperationFailed", "failed to pull artifact: dial tcp: lookup ghcr.example: no such host")), "", Progressing, "ReadOperationFailed", false, true},
		{"helm index fetch failed before first success is graced", fluxobjtest.Object("HelmRepository", "flux-system", "podinfo", 1, 0, nil, fluxobjtest.Cond("Ready", "False", "Failed", "failed to fetch Helm repository index")), "", Progressing, "Failed", false, true},
		{"path not found, status.observedGeneration unset but the condition is current", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 0, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.WithGeneration(fluxobjtest.Cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x: no such file"), 1)), rev, Failed, "ArtifactFailed", true, false},
		{"path not found before any attempt is graced", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 0, nil, fluxobjtest.WithGeneration(fluxobjtest.Cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x: no such file"), 1)), rev, Progressing, "ArtifactFailed", false, true},
		{"static OCI HelmRepository (status emptied by source-controller)", staticHelmRepository(), "", Ready, "Current", false, false},
		{"fresh object, no status yet", noStatus(fluxobjtest.Object("HelmRepository", "flux-system", "podinfo", 1, 0, nil)), "", Progressing, "Pending", false, false},
		{"helm values rejected before any release is stored", fluxobjtest.Object("HelmRelease", "nginx", "nginx", 1, 1, map[string]any{"failures": int64(2)}, fluxobjtest.Cond("Ready", "False", "InstallFailed", "Helm install failed for release nginx/nginx with chart nginx@0.1.0: values don't meet the specifications of the schema(s)")), "", Failed, "InstallFailed", true, false},
		{"helm install timed out with retries left is not final", withSpec(fluxobjtest.Object("HelmRelease", "apps", "web", 1, 1, map[string]any{"failures": int64(1), "installFailures": int64(1)}, fluxobjtest.Cond("Ready", "False", "InstallFailed", "timeout waiting for")), int64(3), "spec", "install", "remediation", "retries"), "", Progressing, "InstallFailed", false, false},
		{"helm chart with no matching version is graced", fluxobjtest.Object("HelmChart", "flux-system", "redis-redis", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "ChartPullError", "could not locate a version matching provided version string >=9.0.0")), "", Progressing, "ChartPullError", false, true},
		{"helm chart version not found is graced", fluxobjtest.Object("HelmChart", "flux-system", "redis-redis", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "ChartPullFailed", "no 'redis' chart with version matching '>=9.0.0' found")), "", Progressing, "ChartPullFailed", false, true},
		{"helm release stalled after retries", fluxobjtest.Object("HelmRelease", "redis", "redis", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "InstallFailed", "x"), fluxobjtest.Cond("Stalled", "True", "RetriesExceeded", "Failed to install after 1 attempt(s)")), "", Failed, "RetriesExceeded", true, false},
		{"suspended", withSpec(fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, nil), true, "spec", "suspend"), "", Ready, "Suspended", false, false},
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
	u := fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"inventory": map[string]any{"entries": []any{
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
	v := Judge(fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.Cond("Ready", "False", "ReconciliationFailed", msg)), rev)
	want := "Deployment/apps/fleet-app dry-run failed (Invalid): Deployment.apps \"fleet-app\" is invalid: spec.selector: Invalid value: {}: field is immutable (revision main@sha1:abc)"
	if v.Message != want {
		t.Errorf("message %q\nwant    %q", v.Message, want)
	}
}

// TestJudgeMessages pins the exact verdict texts the wait prints and the
// diagnosis shows, one case per branch of Judge that writes its own text.
func TestJudgeMessages(t *testing.T) {
	const rev = "main@sha1:abc"
	terminating := fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, nil, fluxobjtest.Cond("Ready", "True", "ReconciliationSucceeded", "Applied"))
	terminating.SetDeletionTimestamp(&metav1.Time{Time: time.Date(2026, 11, 25, 22, 41, 7, 0, time.UTC)})
	suspended := fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "BuildFailed", "x"))
	_ = unstructured.SetNestedField(suspended.Object, true, "spec", "suspend")
	fetchFailed := fluxobjtest.Object("OCIRepository", "flux-system", "podinfo", 1, 0, nil, fluxobjtest.Cond("Ready", "Unknown", "Progressing", "reconciliation in progress"), fluxobjtest.Cond("FetchFailed", "True", "", "failed to pull artifact"))
	cases := []struct {
		name      string
		obj       *unstructured.Unstructured
		sourceRev string
		want      Verdict
	}{
		{"terminating", terminating, rev, Verdict{Phase: Progressing, Reason: "Terminating", Message: "object is being deleted"}},
		{"suspended wins over a failure", suspended, rev, Verdict{Phase: Ready, Reason: "Suspended", Message: "reconciliation is suspended"}},
		{"stalled without reason", fluxobjtest.Object("HelmRelease", "apps", "web", 1, 1, nil, fluxobjtest.Cond("Stalled", "True", "", "gave up")), "", Verdict{Phase: Failed, Terminal: true, Reason: "Stalled", Message: "gave up"}},
		{"fetch failing: the FetchFailed condition speaks, with its start", fetchFailed, "", Verdict{Reason: "FetchFailed", Message: "failed to pull artifact", Graced: true, FailingSince: time.Date(2026, 11, 25, 22, 41, 7, 0, time.UTC)}},
		{"old generation", fluxobjtest.Object("HelmRelease", "apps", "web", 3, 2, nil, fluxobjtest.Cond("Ready", "False", "InstallFailed", "x")), "", Verdict{Reason: "Progressing", Message: "observed generation 2, want 3 (last Ready=False InstallFailed)"}},
		{"older revision applied", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAppliedRevision": "main@sha1:old"}, fluxobjtest.Cond("Ready", "True", "ReconciliationSucceeded", "Applied")), rev, Verdict{Reason: "RevisionNotApplied", Message: `applied "main@sha1:old", source has "main@sha1:abc"`}},
		{"not ready without reason", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "", "no reason given")), rev, Verdict{Reason: "NotReady", Message: "no reason given"}},
		{"path not found on the current revision names it", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.Cond("Ready", "False", "ArtifactFailed", "kustomization path not found: stat /tmp/x\n")), rev, Verdict{Phase: Failed, Terminal: true, Reason: "ArtifactFailed", Message: "kustomization path not found: stat /tmp/x (revision main@sha1:abc)"}},
		{"build failed with no source revision known: the attempted one counts", fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"lastAttemptedRevision": rev}, fluxobjtest.Cond("Ready", "False", "BuildFailed", "kustomize build failed")), "", Verdict{Phase: Failed, Terminal: true, Reason: "BuildFailed", Message: "kustomize build failed (revision main@sha1:abc)"}},
		{"helm upgrade failed with retries used up", func() *unstructured.Unstructured {
			u := fluxobjtest.Object("HelmRelease", "apps", "web", 1, 1, map[string]any{"upgradeFailures": int64(2), "failures": int64(2)}, fluxobjtest.Cond("Ready", "False", "UpgradeFailed", "timed out"))
			_ = unstructured.SetNestedField(u.Object, int64(1), "spec", "upgrade", "remediation", "retries")
			return u
		}(), "", Verdict{Phase: Failed, Terminal: true, Reason: "UpgradeFailed", Message: "timed out"}},
		{"helm upgrade failed before any release", fluxobjtest.Object("HelmRelease", "apps", "web", 1, 1, map[string]any{"failures": int64(1)}, fluxobjtest.Cond("Ready", "False", "UpgradeFailed", "values invalid")), "", Verdict{Phase: Failed, Terminal: true, Reason: "UpgradeFailed", Message: "values invalid (Helm stored no release: the chart does not render with these values, so retrying cannot help)"}},
		{"helm other failure stays progressing", fluxobjtest.Object("HelmRelease", "apps", "web", 1, 1, map[string]any{"failures": int64(1)}, fluxobjtest.Cond("Ready", "False", "ArtifactFailed", "chart not ready")), "", Verdict{Reason: "ArtifactFailed", Message: "chart not ready"}},
		{"source with a reason that heals is not graced", fluxobjtest.Object("GitRepository", "flux-system", "flux-system", 1, 1, nil, fluxobjtest.Cond("Ready", "False", "Progressing", "cloning")), "", Verdict{Reason: "Progressing", Message: "cloning"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Judge(tc.obj, tc.sourceRev)
			// Times compare by instant: a parsed time carries its own location.
			sameSince := got.FailingSince.Equal(tc.want.FailingSince)
			got.FailingSince, tc.want.FailingSince = time.Time{}, time.Time{}
			if got != tc.want || !sameSince {
				t.Fatalf("got  %+v\nwant %+v", Judge(tc.obj, tc.sourceRev), tc.want)
			}
		})
	}
}
