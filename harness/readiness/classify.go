package readiness

import (
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

type phase int

const (
	phaseProgressing phase = iota
	phaseReady
	phaseFailed
)

func (p phase) String() string {
	switch p {
	case phaseReady:
		return "Ready"
	case phaseFailed:
		return "Failed"
	default:
		return "Progressing"
	}
}

// verdict is the judgement on one object at one point in time.
type verdict struct {
	Phase    phase
	Reason   string
	Message  string
	Terminal bool
	// Graced marks a failure that becomes fatal only once it has persisted
	// for the source grace period (network and credential errors can be
	// transient while a git server or registry starts).
	Graced bool
	// FailingSince is when a graced failure began, when the object says so.
	FailingSince time.Time
}

// sourceFailureReasons are source Ready=False reasons that will not heal
// without a change to the fleet or its environment, once they persist.
var sourceFailureReasons = map[string]bool{
	"GitOperationFailed":              true,
	"AuthenticationFailed":            true,
	"URLInvalid":                      true,
	"InvalidURL":                      true,
	"IndexationFailed":                true,
	"ReadOperationFailed":             true,
	"Failed":                          true,
	"OCIArtifactPullFailed":           true,
	"OCIArtifactLayerOperationFailed": true,
	"ChartPullFailed":                 true,
	"VerificationFailed":              true,
	"InvalidPath":                     true,
}

var sourceKinds = map[string]bool{
	"GitRepository": true, "HelmRepository": true, "OCIRepository": true, "HelmChart": true, "Bucket": true,
}

// condition returns the condition of type t of any object shaped like a
// Flux object, or nil.
func condition(u *unstructured.Unstructured, t string) *metav1.Condition {
	return conditions.Get(conditions.UnstructuredGetter(u), t)
}

func refOf(u *unstructured.Unstructured) ObjectRef {
	gv := u.GroupVersionKind()
	return ObjectRef{Group: gv.Group, Version: gv.Version, Kind: gv.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// sourceRefOf returns the "Kind ns/name" of a Kustomization's or HelmChart's source.
func sourceRefOf(u *unstructured.Unstructured) (ObjectRef, bool) {
	kind, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "kind")
	name, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "name")
	if kind == "" || name == "" {
		return ObjectRef{}, false
	}
	ns, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "namespace")
	if ns == "" {
		ns = u.GetNamespace()
	}
	return ObjectRef{Group: fluxGroups[kind], Kind: kind, Namespace: ns, Name: name}, true
}

// classifyFlux judges one Flux object. sourceRev is the artifact revision of
// the object's source when known ("" otherwise); it decides whether a
// Kustomization failure refers to the newest revision and so cannot heal.
func classifyFlux(u *unstructured.Unstructured, sourceRev string) verdict {
	if u.GetDeletionTimestamp() != nil {
		return verdict{Reason: "Terminating", Message: "object is being deleted"}
	}
	if s, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); s {
		return verdict{Phase: phaseReady, Reason: "Suspended", Message: "reconciliation is suspended"}
	}
	gen := u.GetGeneration()
	obs, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	current := gen == 0 || obs == gen

	if st := condition(u, "Stalled"); st != nil && st.Status == metav1.ConditionTrue && current {
		return verdict{Phase: phaseFailed, Terminal: true, Reason: nonEmpty(st.Reason, "Stalled"), Message: st.Message}
	}
	ready := condition(u, "Ready")
	if ready == nil {
		return verdict{Reason: "Pending", Message: "no Ready condition yet (controller has not reconciled it)"}
	}
	// source-controller leaves observedGeneration unset while a fetch keeps
	// failing and flips Ready between Unknown and False on every retry; its
	// FetchFailed condition stays True throughout, so it tells a persisting
	// fetch failure (registry or chart repository unreachable) apart from
	// progress.
	if sourceKinds[u.GetKind()] && ready.Status != metav1.ConditionTrue {
		if ff := condition(u, "FetchFailed"); ff != nil && ff.Status == metav1.ConditionTrue {
			return verdict{Reason: nonEmpty(ff.Reason, "FetchFailed"), Message: ff.Message, Graced: true, FailingSince: ff.LastTransitionTime.Time}
		}
		if ready.Status == metav1.ConditionFalse && sourceFailureReasons[ready.Reason] {
			return verdict{Reason: ready.Reason, Message: ready.Message, Graced: true}
		}
	}
	// Controllers leave status.observedGeneration behind when a reconcile
	// fails (kustomize-controller on a missing path, for one), but stamp
	// the condition itself with the generation it judged.
	current = current || ready.ObservedGeneration == gen
	if !current {
		return verdict{Reason: "Progressing", Message: fmt.Sprintf("observed generation %d, want %d (last Ready=%s %s)", obs, gen, ready.Status, ready.Reason)}
	}
	if ready.Status == metav1.ConditionTrue {
		if u.GetKind() == "Kustomization" && sourceRev != "" {
			applied, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
			if applied != sourceRev {
				return verdict{Reason: "RevisionNotApplied", Message: fmt.Sprintf("applied %q, source has %q", applied, sourceRev)}
			}
		}
		return verdict{Phase: phaseReady, Reason: ready.Reason, Message: ready.Message}
	}

	v := verdict{Reason: nonEmpty(ready.Reason, "NotReady"), Message: ready.Message}
	switch kind := u.GetKind(); {
	case kind == "Kustomization":
		attempted, _, _ := unstructured.NestedString(u.Object, "status", "lastAttemptedRevision")
		onCurrent := attempted != "" && (sourceRev == "" || attempted == sourceRev)
		pathMissing := ready.Reason == "ArtifactFailed" && strings.Contains(ready.Message, "path not found")
		switch {
		case onCurrent && (ready.Reason == "BuildFailed" || pathMissing):
			v.Phase, v.Terminal = phaseFailed, true
			v.Message = fmt.Sprintf("%s (revision %s)", ready.Message, attempted)
		case pathMissing && attempted == "":
			// A missing path fails before any revision is attempted, so which
			// revision it refers to is unknown: fatal once it persists.
			v.Graced = true
		}
	case kind == "HelmRelease":
		if ready.Reason == "RetriesExceeded" || helmRetriesExhausted(u, ready.Reason) {
			v.Phase, v.Terminal = phaseFailed, true
		}
	case sourceKinds[kind]:
		v.Graced = sourceFailureReasons[ready.Reason]
	}
	return v
}

// helmRetriesExhausted reports whether an install/upgrade failure has used up
// the remediation retries (default 0: the first failure is final).
func helmRetriesExhausted(u *unstructured.Unstructured, reason string) bool {
	var action, counter string
	switch reason {
	case "InstallFailed":
		action, counter = "install", "installFailures"
	case "UpgradeFailed":
		action, counter = "upgrade", "upgradeFailures"
	default:
		return false
	}
	retries, _, _ := unstructured.NestedInt64(u.Object, "spec", action, "remediation", "retries")
	failures, _, _ := unstructured.NestedInt64(u.Object, "status", counter)
	return retries >= 0 && failures > retries
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// artifactRevision returns status.artifact.revision of a source.
func artifactRevision(u *unstructured.Unstructured) string {
	rev, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "revision")
	return rev
}

// ParseInventoryID parses a Flux inventory entry id,
// "<namespace>_<name>_<group>_<kind>" (namespace empty for cluster-scoped
// objects, group empty for the core group).
func ParseInventoryID(id string) (ObjectRef, error) {
	parts := strings.Split(id, "_")
	if len(parts) != 4 || parts[1] == "" || parts[3] == "" {
		return ObjectRef{}, fmt.Errorf("parsing inventory id %q: want <namespace>_<name>_<group>_<kind>", id)
	}
	return ObjectRef{Namespace: parts[0], Name: parts[1], Group: parts[2], Kind: parts[3]}, nil
}

// inventoryOf returns the parsed inventory of a Kustomization; malformed
// entries are skipped (they cannot be waited on anyway).
func inventoryOf(u *unstructured.Unstructured) []ObjectRef {
	entries, _, _ := unstructured.NestedSlice(u.Object, "status", "inventory", "entries")
	var out []ObjectRef
	for _, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		id, _ := m["id"].(string)
		ref, err := ParseInventoryID(id)
		if err != nil {
			continue
		}
		ref.Version, _ = m["v"].(string)
		out = append(out, ref)
	}
	return out
}

// classifyWorkload judges a workload with kstatus.
func classifyWorkload(u *unstructured.Unstructured) verdict {
	res, err := status.Compute(u)
	if err != nil {
		return verdict{Reason: "Unknown", Message: err.Error()}
	}
	switch res.Status {
	case status.CurrentStatus:
		return verdict{Phase: phaseReady, Reason: "Current", Message: res.Message}
	case status.FailedStatus:
		return verdict{Phase: phaseFailed, Terminal: true, Reason: "Failed", Message: res.Message}
	default:
		return verdict{Reason: string(res.Status), Message: res.Message}
	}
}

// badWaitingReasons are container waiting reasons that do not heal on their
// own once they persist.
var badWaitingReasons = map[string]bool{
	"ImagePullBackOff":           true,
	"ErrImagePull":               true,
	"ErrImageNeverPull":          true,
	"CrashLoopBackOff":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"InvalidImageName":           true,
}

// IsStuckWaitingReason reports whether a container waiting reason (such as
// ImagePullBackOff or CrashLoopBackOff) does not heal by waiting: every
// wait in the harness gives up on it after its grace period.
func IsStuckWaitingReason(reason string) bool { return badWaitingReasons[reason] }

type podProblem struct {
	Container string
	Image     string
	Reason    string
	Message   string
}

// podProblems lists the containers of a pod stuck in a bad waiting state.
func podProblems(pod *corev1.Pod) []podProblem {
	var out []podProblem
	statuses := append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		w := cs.State.Waiting
		if w == nil || !badWaitingReasons[w.Reason] {
			continue
		}
		msg := w.Message
		if w.Reason == "CrashLoopBackOff" && cs.LastTerminationState.Terminated != nil {
			t := cs.LastTerminationState.Terminated
			msg = fmt.Sprintf("last exit code %d (%s), %d restarts; %s", t.ExitCode, t.Reason, cs.RestartCount, msg)
		}
		out = append(out, podProblem{Container: cs.Name, Image: cs.Image, Reason: w.Reason, Message: strings.TrimSpace(msg)})
	}
	return out
}

// podOwner names the workload owning a pod, resolving ReplicaSets to their
// Deployment through the pod-template-hash naming convention.
func podOwner(pod *corev1.Pod) string {
	for _, o := range pod.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if o.Kind == "ReplicaSet" {
			if h := pod.Labels["pod-template-hash"]; h != "" && strings.HasSuffix(o.Name, "-"+h) {
				return "Deployment " + pod.Namespace + "/" + strings.TrimSuffix(o.Name, "-"+h)
			}
		}
		return o.Kind + " " + pod.Namespace + "/" + o.Name
	}
	return ""
}

// podTracker remembers since when each container has been in a bad waiting
// state, so a failure is reported only once it outlasts the grace period.
type podTracker struct {
	grace time.Duration
	since map[string]time.Time // key: pod UID/container
}

func newPodTracker(grace time.Duration) *podTracker {
	return &podTracker{grace: grace, since: map[string]time.Time{}}
}

// observe returns a failure once a container of pod has been stuck for the
// grace period, and otherwise the time at which it would become one (zero
// when the pod is healthy).
func (t *podTracker) observe(pod *corev1.Pod, now time.Time) (*FailureError, time.Time) {
	prefix := string(pod.UID) + "/"
	stuck := map[string]bool{}
	var next time.Time
	for _, p := range podProblems(pod) {
		key := prefix + p.Container
		stuck[key] = true
		since, ok := t.since[key]
		if !ok {
			since = now
			t.since[key] = now
		}
		if waited := now.Sub(since); waited >= t.grace {
			return &FailureError{
				Object:    "Pod " + pod.Namespace + "/" + pod.Name,
				Reason:    p.Reason,
				Message:   fmt.Sprintf("%s (stuck for %s)", nonEmpty(p.Message, "no message"), waited.Round(time.Second)),
				Container: p.Container,
				Image:     p.Image,
				Owner:     podOwner(pod),
			}, time.Time{}
		}
		if d := since.Add(t.grace); next.IsZero() || d.Before(next) {
			next = d
		}
	}
	for key := range t.since {
		if strings.HasPrefix(key, prefix) && !stuck[key] {
			delete(t.since, key)
		}
	}
	return nil, next
}

// forget drops pods that no longer exist.
func (t *podTracker) forget(alive map[string]bool) {
	for key := range t.since {
		uid, _, _ := strings.Cut(key, "/")
		if !alive[uid] {
			delete(t.since, key)
		}
	}
}
