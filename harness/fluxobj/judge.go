package fluxobj

import (
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Phase is where an object stands.
type Phase int

const (
	Progressing Phase = iota
	Ready
	Failed
)

func (p Phase) String() string {
	switch p {
	case Ready:
		return "Ready"
	case Failed:
		return "Failed"
	default:
		return "Progressing"
	}
}

// Verdict is the judgement on one object at one point in time.
type Verdict struct {
	Phase   Phase
	Reason  string
	Message string
	// Terminal marks a failure the controller itself gave up on (Stalled,
	// retries exhausted, build failed on the current revision).
	Terminal bool
	// Graced marks a failure that becomes fatal only once it has persisted
	// (network and credential errors can be transient while a git server or
	// registry starts).
	Graced bool
	// FailingSince is when a graced failure began, when the object says so.
	FailingSince time.Time
}

// Reasons that Flux controllers set but their API packages do not export.
const (
	// helm-controller's Stalled reason once remediation retries are used up.
	retriesExceededReason = "RetriesExceeded"
	// source-controller's HelmChart reasons when a chart cannot be fetched
	// or no version matches the range (internal/helm/chart/errors.go).
	chartPullFailedReason = "ChartPullFailed"
	chartPullErrorReason  = "ChartPullError"
)

// sourceFailureReasons are source Ready=False reasons that will not heal
// without a change to the fleet or its environment, once they persist.
var sourceFailureReasons = map[string]bool{
	sourcev1.GitOperationFailedReason:      true,
	sourcev1.AuthenticationFailedReason:    true,
	sourcev1.URLInvalidReason:              true,
	meta.InvalidURLReason:                  true,
	sourcev1.IndexationFailedReason:        true,
	sourcev1.ReadOperationFailedReason:     true,
	meta.FailedReason:                      true,
	sourcev1.OCIPullFailedReason:           true,
	sourcev1.OCILayerOperationFailedReason: true,
	chartPullFailedReason:                  true,
	chartPullErrorReason:                   true,
	sourcev1.VerificationError:             true,
	sourcev1.InvalidPathReason:             true,
}

// Condition returns the condition of type t of any object shaped like a
// Flux object, or nil.
func Condition(u *unstructured.Unstructured, t string) *metav1.Condition {
	return conditions.Get(conditions.UnstructuredGetter(u), t)
}

// IsReady reports whether a Flux object is Ready for the generation it has
// now (Judge's verdict, with no source revision to compare against).
func IsReady(u *unstructured.Unstructured) bool { return Judge(u, "").Phase == Ready }

// Judge judges one Flux object. sourceRev is the artifact revision of the
// object's source when known ("" otherwise); it decides whether a
// Kustomization failure refers to the newest revision and so cannot heal.
func Judge(u *unstructured.Unstructured, sourceRev string) Verdict {
	if u.GetDeletionTimestamp() != nil {
		return Verdict{Reason: "Terminating", Message: "object is being deleted"}
	}
	if s, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); s {
		return Verdict{Phase: Ready, Reason: meta.SuspendedReason, Message: "reconciliation is suspended"}
	}
	gen := u.GetGeneration()
	obs, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	current := gen == 0 || obs == gen
	if st := Condition(u, meta.StalledCondition); st != nil && st.Status == metav1.ConditionTrue && current {
		return Verdict{Phase: Failed, Terminal: true, Reason: nonEmpty(st.Reason, meta.StalledCondition), Message: st.Message}
	}
	ready := Condition(u, meta.ReadyCondition)
	if ready == nil {
		return judgeWithoutReady(u)
	}
	if v, failing := judgeSourceFailure(u, ready); failing {
		return v
	}
	// Controllers leave status.observedGeneration behind when a reconcile
	// fails (kustomize-controller on a missing path, for one), but stamp
	// the condition itself with the generation it judged.
	if !current && ready.ObservedGeneration != gen {
		return Verdict{Reason: meta.ProgressingReason, Message: fmt.Sprintf("observed generation %d, want %d (last Ready=%s %s)", obs, gen, ready.Status, ready.Reason)}
	}
	if ready.Status == metav1.ConditionTrue {
		return judgeReadyCondition(u, ready, sourceRev)
	}
	return judgeNotReady(u, ready, sourceRev)
}

// isSource reports whether u is of a source kind (GitRepository,
// HelmRepository, ...).
func isSource(u *unstructured.Unstructured) bool {
	k, ok := KindOf(u.GetKind())
	return ok && k.Source
}

// judgeSourceFailure tells a source whose fetch keeps failing apart from
// one making progress, before its generation is checked: source-controller
// leaves observedGeneration unset while a fetch keeps failing and flips
// Ready between Unknown and False on every retry, but its FetchFailed
// condition stays True throughout. failing is false when the verdict is
// left to the rest of Judge.
func judgeSourceFailure(u *unstructured.Unstructured, ready *metav1.Condition) (v Verdict, failing bool) {
	if !isSource(u) || ready.Status == metav1.ConditionTrue {
		return Verdict{}, false
	}
	if ff := Condition(u, sourcev1.FetchFailedCondition); ff != nil && ff.Status == metav1.ConditionTrue {
		return Verdict{Reason: nonEmpty(ff.Reason, sourcev1.FetchFailedCondition), Message: ff.Message, Graced: true, FailingSince: ff.LastTransitionTime.Time}, true
	}
	if ready.Status == metav1.ConditionFalse && sourceFailureReasons[ready.Reason] {
		return Verdict{Reason: ready.Reason, Message: ready.Message, Graced: true}, true
	}
	return Verdict{}, false
}

// judgeReadyCondition judges an object whose current Ready condition is
// True: a Kustomization is Ready only once it applied its source's newest
// revision.
func judgeReadyCondition(u *unstructured.Unstructured, ready *metav1.Condition, sourceRev string) Verdict {
	if u.GetKind() == kustomizev1.KustomizationKind && sourceRev != "" {
		applied, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
		if applied != sourceRev {
			return Verdict{Reason: "RevisionNotApplied", Message: fmt.Sprintf("applied %q, source has %q", applied, sourceRev)}
		}
	}
	return Verdict{Phase: Ready, Reason: ready.Reason, Message: ready.Message}
}

// judgeNotReady judges an object whose current Ready condition is not
// True: Progressing unless its kind's rules say the failure is final or
// graced.
func judgeNotReady(u *unstructured.Unstructured, ready *metav1.Condition, sourceRev string) Verdict {
	v := Verdict{Reason: nonEmpty(ready.Reason, "NotReady"), Message: ready.Message}
	switch {
	case u.GetKind() == kustomizev1.KustomizationKind:
		judgeKustomizationFailure(&v, u, ready, sourceRev)
	case u.GetKind() == helmv2.HelmReleaseKind:
		judgeHelmReleaseFailure(&v, u, ready)
	case isSource(u):
		v.Graced = sourceFailureReasons[ready.Reason]
	}
	return v
}

// judgeKustomizationFailure makes v final when the Kustomization failed on
// its source's newest revision in a way that retrying the same revision
// cannot heal, and graced when its path is missing before any attempt.
func judgeKustomizationFailure(v *Verdict, u *unstructured.Unstructured, ready *metav1.Condition, sourceRev string) {
	attempted, _, _ := unstructured.NestedString(u.Object, "status", "lastAttemptedRevision")
	onCurrent := attempted != "" && (sourceRev == "" || attempted == sourceRev)
	pathMissing := ready.Reason == meta.ArtifactFailedReason && strings.Contains(ready.Message, "path not found")
	rejected := ready.Reason == meta.ReconciliationFailedReason && apiServerRejected(ready.Message)
	switch {
	case onCurrent && (ready.Reason == meta.BuildFailedReason || pathMissing || rejected):
		v.Phase, v.Terminal = Failed, true
		// kustomize-controller ends an apply failure with a newline
		// and the partial change set, often empty.
		v.Message = fmt.Sprintf("%s (revision %s)", strings.TrimSpace(ready.Message), attempted)
	case pathMissing && attempted == "":
		// A missing path fails before any revision is attempted, so which
		// revision it refers to is unknown: fatal once it persists.
		v.Graced = true
	}
}

// judgeHelmReleaseFailure makes v final when helm-controller will not try
// again, or would retry the same chart and values in vain.
func judgeHelmReleaseFailure(v *Verdict, u *unstructured.Unstructured, ready *metav1.Condition) {
	switch {
	case ready.Reason == retriesExceededReason || helmRetriesExhausted(u, ready.Reason):
		v.Phase, v.Terminal = Failed, true
	case helmFailedBeforeRelease(u, ready.Reason):
		v.Phase, v.Terminal = Failed, true
		v.Message += " (Helm stored no release: the chart does not render with these values, so retrying cannot help)"
	}
}

// apiServerRejected reports whether a Kustomization's apply failure is the
// API server refusing an object as invalid — an immutable field changed (a
// Deployment's selector, a Service's clusterIP, a Job's template), a value
// out of range, a field the schema does not have. kustomize-controller
// reports it as ReconciliationFailed and retries every retryInterval, but
// the same revision is refused the same way each time. Other apply failures
// (a namespace or CRD that another Kustomization has yet to create, an
// unreachable webhook) can heal and stay Progressing. The message is pkg/ssa's
// DryRunErr: "<Kind/ns/name> dry-run failed (<API reason>): <API message>".
func apiServerRejected(msg string) bool {
	return strings.Contains(msg, " dry-run failed (Invalid): ") ||
		strings.Contains(msg, " dry-run failed (BadRequest): ") ||
		strings.Contains(msg, "field is immutable")
}

// judgeWithoutReady judges a Flux object that has no Ready condition the way
// kustomize-controller's health check does, with kstatus: source-controller
// turns an OCI HelmRepository into a static object with an empty status
// that is never reconciled again, and Flux counts it healthy.
func judgeWithoutReady(u *unstructured.Unstructured) Verdict {
	res, err := status.Compute(u)
	if err != nil {
		return Verdict{Reason: "Unknown", Message: err.Error()}
	}
	if res.Status == status.CurrentStatus && len(conditionsOf(u)) == 0 && hasStatus(u) {
		return Verdict{Phase: Ready, Reason: "Current", Message: "no conditions: counted healthy as kstatus and kustomize-controller count it"}
	}
	return Verdict{Reason: "Pending", Message: "no Ready condition yet (the controller has not reconciled it)"}
}

// hasStatus reports whether a controller has written the status at all: an
// object fresh from the API server has none, and is not yet judged.
func hasStatus(u *unstructured.Unstructured) bool {
	_, found := u.Object["status"]
	return found
}

func conditionsOf(u *unstructured.Unstructured) []any {
	c, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	return c
}

// helmRetriesExhausted reports whether an install/upgrade failure has used up
// the remediation retries (default 0: the first failure is final).
func helmRetriesExhausted(u *unstructured.Unstructured, reason string) bool {
	var action, counter string
	switch reason {
	case helmv2.InstallFailedReason:
		action, counter = "install", "installFailures"
	case helmv2.UpgradeFailedReason:
		action, counter = "upgrade", "upgradeFailures"
	default:
		return false
	}
	retries, _, _ := unstructured.NestedInt64(u.Object, "spec", action, "remediation", "retries")
	failures, _, _ := unstructured.NestedInt64(u.Object, "status", counter)
	return retries >= 0 && failures > retries
}

// helmFailedBeforeRelease reports whether an install/upgrade failed before
// Helm stored a release: helm-controller then counts the failure in
// status.failures but not in install/upgradeFailures, and retries the same
// chart with the same values forever. Such failures (values rejected by the
// chart's schema, a template that does not render) are deterministic.
func helmFailedBeforeRelease(u *unstructured.Unstructured, reason string) bool {
	var counter string
	switch reason {
	case helmv2.InstallFailedReason:
		counter = "installFailures"
	case helmv2.UpgradeFailedReason:
		counter = "upgradeFailures"
	default:
		return false
	}
	failures, _, _ := unstructured.NestedInt64(u.Object, "status", "failures")
	stored, _, _ := unstructured.NestedInt64(u.Object, "status", counter)
	return failures > 0 && stored == 0
}

// JudgeWorkload judges any other object (Deployment, StatefulSet, Job, ...)
// with kstatus.
func JudgeWorkload(u *unstructured.Unstructured) Verdict {
	res, err := status.Compute(u)
	if err != nil {
		return Verdict{Reason: "Unknown", Message: err.Error()}
	}
	switch res.Status {
	case status.CurrentStatus:
		return Verdict{Phase: Ready, Reason: string(status.CurrentStatus), Message: res.Message}
	case status.FailedStatus:
		return Verdict{Phase: Failed, Terminal: true, Reason: string(status.FailedStatus), Message: res.Message}
	default:
		return Verdict{Reason: string(res.Status), Message: res.Message}
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
