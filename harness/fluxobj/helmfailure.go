package fluxobj

import (
	"fmt"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// HelmFailure is the newest counted install or upgrade failure of a
// HelmRelease, as one snapshot of its status records it. A wait that keeps
// the failure of every count it sees can tell a failure that repeats itself
// (RepeatedHelmFailure) long before helm-controller's remediation retries
// run out.
type HelmFailure struct {
	// Action is "install" or "upgrade" (status.lastAttemptedReleaseAction).
	Action string
	// Generation is the object's generation: the counters start again for
	// every new desired state.
	Generation int64
	// Count is status.installFailures or status.upgradeFailures: the number
	// of failed attempts Helm stored a release for.
	Count int64
	// Retries is spec.<action>.remediation.retries (0 when unset, negative
	// for unlimited): helm-controller makes Retries+1 attempts in all.
	Retries int64
	// RetryOnFailure is set when spec.<action>.strategy.name is
	// RetryOnFailure: retries without remediation, every retryInterval.
	RetryOnFailure bool
	// Reason and Message are those of the Released condition (or Ready,
	// when Released is missing) that reported this failure.
	Reason  string
	Message string
}

// HelmFailureOf returns the counted install or upgrade failure u's status
// reports for its current generation, if any. The Released condition is
// read first: helm-controller writes it with the counter in the same patch,
// and remediation (an uninstall or rollback) does not overwrite it, while
// Ready then reports the remediation.
func HelmFailureOf(u *unstructured.Unstructured) (HelmFailure, bool) {
	if u.GetKind() != helmv2.HelmReleaseKind {
		return HelmFailure{}, false
	}
	c := Condition(u, helmv2.ReleasedCondition)
	if !isCountedFailure(c) {
		c = Condition(u, meta.ReadyCondition)
	}
	if !isCountedFailure(c) || (c.ObservedGeneration != 0 && c.ObservedGeneration != u.GetGeneration()) {
		return HelmFailure{}, false
	}
	f := HelmFailure{Action: "install", Generation: u.GetGeneration(), Reason: c.Reason, Message: strings.TrimSpace(c.Message)}
	counter := "installFailures"
	if c.Reason == helmv2.UpgradeFailedReason {
		f.Action, counter = "upgrade", "upgradeFailures"
	}
	f.Count, _, _ = unstructured.NestedInt64(u.Object, "status", counter)
	if f.Count == 0 {
		// Failed before Helm stored a release: not counted, and judged by
		// helmFailedBeforeRelease instead.
		return HelmFailure{}, false
	}
	f.Retries, _, _ = unstructured.NestedInt64(u.Object, "spec", f.Action, "remediation", "retries")
	strategy, _, _ := unstructured.NestedString(u.Object, "spec", f.Action, "strategy", "name")
	f.RetryOnFailure = strategy == string(helmv2.ActionStrategyRetryOnFailure)
	return f, true
}

func isCountedFailure(c *metav1.Condition) bool {
	return c != nil && c.Status == metav1.ConditionFalse &&
		(c.Reason == helmv2.InstallFailedReason || c.Reason == helmv2.UpgradeFailedReason)
}

// RepeatedHelmFailure judges two failures of one HelmRelease seen in turn:
// when the attempt that failed last (Count 2 or more) failed with exactly
// the reason and message of the attempt before it, for the same desired
// state, the next retry would too (a hook Job that exits non-zero, an image
// that does not exist, a probe that never passes), so the wait need not sit
// out the remaining retries and their remediations. Different reasons, a
// first failure, or a gap in the counts the wait saw are not judged.
func RepeatedHelmFailure(prev, last HelmFailure) (Verdict, bool) {
	if last.Count < 2 || prev.Count != last.Count-1 || prev.Action != last.Action ||
		prev.Generation != last.Generation || prev.Reason != last.Reason || prev.Message != last.Message {
		return Verdict{}, false
	}
	return Verdict{
		Phase:   Failed,
		Reason:  last.Reason,
		Message: fmt.Sprintf("%s failed twice in a row with the same reason (%s): %s", last.Action, last.retriesUsed(), last.Message),
	}, true
}

// retriesUsed says how far helm-controller is through its retries, and
// where their number comes from.
func (f HelmFailure) retriesUsed() string {
	attempts := fmt.Sprintf("attempt %d", f.Count)
	switch {
	case f.RetryOnFailure:
		return fmt.Sprintf("%s; spec.%s.strategy RetryOnFailure retries without limit", attempts, f.Action)
	case f.Retries < 0:
		return fmt.Sprintf("%s; spec.%s.remediation.retries %d: unlimited retries", attempts, f.Action, f.Retries)
	default:
		return fmt.Sprintf("%s; %d of %d remediation retries used, spec.%s.remediation.retries", attempts, f.Count-1, f.Retries, f.Action)
	}
}
