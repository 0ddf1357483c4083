package fluxobj_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	. "github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj/fluxobjtest"
)

const hookFailed = "Helm install failed for release apps/podinfo with chart podinfo@6.9.2: failed post-install: 1 error occurred:\n\t* job podinfo-hook failed: BackoffLimitExceeded"

// failedRelease is HelmRelease apps/podinfo as helm-controller leaves it
// after its count-th counted failure of action: Released=False with the
// failure, and Ready saying what remediation did since.
func failedRelease(action string, count, retries int64, reason, msg string) *unstructured.Unstructured {
	u := fluxobjtest.Object("HelmRelease", "apps", "podinfo", 1, 1,
		map[string]any{action + "Failures": count, "failures": count, "lastAttemptedReleaseAction": action},
		fluxobjtest.Cond("Released", "False", reason, msg),
		fluxobjtest.Cond("Ready", "False", "UninstallSucceeded", "Helm uninstall succeeded for release apps/podinfo"))
	if retries != 0 {
		_ = unstructured.SetNestedField(u.Object, retries, "spec", action, "remediation", "retries")
	}
	return u
}

func helmFailure(t *testing.T, u *unstructured.Unstructured) HelmFailure {
	t.Helper()
	f, ok := HelmFailureOf(u)
	if !ok {
		t.Fatalf("HelmFailureOf(%s) found no counted failure in %v", RefOf(u), u.Object["status"])
	}
	return f
}

func TestHelmFailureOf(t *testing.T) {
	f := helmFailure(t, failedRelease("upgrade", 2, 3, "UpgradeFailed", "timed out"))
	want := HelmFailure{Action: "upgrade", Generation: 1, Count: 2, Retries: 3, Reason: "UpgradeFailed", Message: "timed out"}
	if f != want {
		t.Errorf("HelmFailureOf = %+v, want %+v", f, want)
	}

	// Ready is read when Released is missing (an object from before the
	// Released condition, or a fixture of one).
	u := fluxobjtest.Object("HelmRelease", "apps", "podinfo", 1, 1, map[string]any{"installFailures": int64(1)}, fluxobjtest.Cond("Ready", "False", "InstallFailed", hookFailed))
	if f := helmFailure(t, u); f.Action != "install" || f.Count != 1 || f.Message != hookFailed {
		t.Errorf("from Ready: %+v", f)
	}

	none := map[string]*unstructured.Unstructured{
		"failed before Helm stored a release (count 0)": fluxobjtest.Object("HelmRelease", "apps", "podinfo", 1, 1, map[string]any{"failures": int64(1)}, fluxobjtest.Cond("Released", "False", "InstallFailed", "values don't meet the specifications of the schema(s)")),
		"released":                           fluxobjtest.Object("HelmRelease", "apps", "podinfo", 1, 1, map[string]any{"installFailures": int64(1)}, fluxobjtest.Cond("Released", "True", "InstallSucceeded", "ok")),
		"failure of an older generation":     fluxobjtest.Object("HelmRelease", "apps", "podinfo", 2, 1, map[string]any{"installFailures": int64(1)}, fluxobjtest.WithGeneration(fluxobjtest.Cond("Released", "False", "InstallFailed", hookFailed), 1)),
		"not a HelmRelease":                  fluxobjtest.Object("Kustomization", "flux-system", "apps", 1, 1, map[string]any{"installFailures": int64(1)}, fluxobjtest.Cond("Ready", "False", "InstallFailed", "x")),
		"test failure (not install/upgrade)": fluxobjtest.Object("HelmRelease", "apps", "podinfo", 1, 1, map[string]any{"installFailures": int64(1)}, fluxobjtest.Cond("Released", "True", "InstallSucceeded", "ok"), fluxobjtest.Cond("Ready", "False", "TestFailed", "test hook failed")),
	}
	for name, u := range none {
		if f, ok := HelmFailureOf(u); ok {
			t.Errorf("%s: HelmFailureOf = %+v, want no counted failure", name, f)
		}
	}
}

func TestRepeatedHelmFailure(t *testing.T) {
	cases := []struct {
		name       string
		prev, last *unstructured.Unstructured
		// message is the verdict's whole message, "" for no verdict. It is
		// the user-facing contract of the fail-fast line (issue #19), so it
		// is spelled out here.
		reason, message string
	}{
		{"install hook fails twice, retries left",
			failedRelease("install", 1, 3, "InstallFailed", hookFailed), failedRelease("install", 2, 3, "InstallFailed", hookFailed),
			"InstallFailed", "install failed twice in a row with the same reason (attempt 2; 1 of 3 remediation retries used, spec.install.remediation.retries): " + hookFailed},
		{"upgrade times out twice, unlimited retries",
			failedRelease("upgrade", 2, -1, "UpgradeFailed", "context deadline exceeded"), failedRelease("upgrade", 3, -1, "UpgradeFailed", "context deadline exceeded"),
			"UpgradeFailed", "upgrade failed twice in a row with the same reason (attempt 3; spec.upgrade.remediation.retries -1: unlimited retries): context deadline exceeded"},
		{"different messages",
			failedRelease("install", 1, 3, "InstallFailed", hookFailed), failedRelease("install", 2, 3, "InstallFailed", "context deadline exceeded"), "", ""},
		{"first failure, remediation off",
			failedRelease("install", 1, 0, "InstallFailed", hookFailed), failedRelease("install", 1, 0, "InstallFailed", hookFailed), "", ""},
		{"a count the wait did not see",
			failedRelease("install", 1, 3, "InstallFailed", hookFailed), failedRelease("install", 3, 3, "InstallFailed", hookFailed), "", ""},
		{"install then upgrade",
			failedRelease("install", 1, 3, "InstallFailed", hookFailed), failedRelease("upgrade", 2, 3, "UpgradeFailed", hookFailed), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := RepeatedHelmFailure(helmFailure(t, tc.prev), helmFailure(t, tc.last))
			if tc.message == "" {
				if ok {
					t.Fatalf("got verdict %+v, want none", v)
				}
				return
			}
			if !ok || v.Phase != Failed || v.Reason != tc.reason || v.Message != tc.message || v.Terminal {
				t.Fatalf("got %+v (ok %v)\nwant phase Failed, not terminal, reason %s, message %q", v, ok, tc.reason, tc.message)
			}
		})
	}

	// A new desired state starts the counters again: a failure of the
	// generation before is no evidence.
	prev := failedRelease("install", 1, 3, "InstallFailed", hookFailed)
	last := failedRelease("install", 2, 3, "InstallFailed", hookFailed)
	last.SetGeneration(2)
	_ = unstructured.SetNestedField(last.Object, int64(2), "status", "observedGeneration")
	if v, ok := RepeatedHelmFailure(helmFailure(t, prev), helmFailure(t, last)); ok {
		t.Errorf("failures of generations 1 and 2 judged repeated: %+v", v)
	}
}
