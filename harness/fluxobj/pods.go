package fluxobj

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodProblem is one thing wrong with a pod: a container that cannot start,
// keeps crashing or never becomes ready, or the pod itself unschedulable.
type PodProblem struct {
	// Container is empty for a problem of the pod itself.
	Container string
	Image     string
	// Reason is the container's waiting/terminated reason (ImagePullBackOff,
	// CrashLoopBackOff, ...), "NotReady" for a running container whose
	// readiness probe does not pass, or the pod's (Unschedulable).
	Reason   string
	Message  string
	Restarts int32
	// Since is when the problem began, when the pod says so; zero when only
	// the observer can tell (a waiting state has no timestamp).
	Since time.Time
	// Certain marks a problem that needs no grace period: the container's
	// restart history already shows repeated non-zero exits.
	Certain bool
	// Logs: the container ran at least once; PreviousLogs: the previous
	// instance's logs are the ones that explain the problem.
	Logs, PreviousLogs bool
}

// stuckWaitingReasons are container waiting reasons that do not heal by
// waiting once they persist.
var stuckWaitingReasons = []string{
	"ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
	"CreateContainerConfigError", "CreateContainerError",
}

const crashLoopReason = "CrashLoopBackOff"

// ImagePullReason names every image pull failure: kubelet alternates
// ErrImagePull and ImagePullBackOff on each retry of the same failure.
const ImagePullReason = "ImagePullBackOff"

// NotReadyReason marks a running container whose readiness probe does not pass.
const NotReadyReason = "NotReady"

// PodProblems judges a pod: every problem it has now, healthy and completed
// pods having none. The readiness wait turns problems into failures after a
// grace period (at once when Certain); diagnostics print them.
func PodProblems(pod *corev1.Pod) []PodProblem {
	if pod.Status.Phase == corev1.PodSucceeded {
		return nil
	}
	var out []PodProblem
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			out = append(out, PodProblem{Reason: nonEmpty(c.Reason, corev1.PodReasonUnschedulable), Message: c.Message, Since: c.LastTransitionTime.Time})
		}
	}
	for _, cs := range pod.Status.InitContainerStatuses {
		if p, ok := containerProblem(cs, true); ok {
			out = append(out, p)
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if p, ok := containerProblem(cs, false); ok {
			out = append(out, p)
		}
	}
	if len(out) == 0 && pod.Status.Phase == corev1.PodFailed {
		out = append(out, PodProblem{Reason: nonEmpty(pod.Status.Reason, "Failed"), Message: pod.Status.Message})
	}
	return out
}

func containerProblem(cs corev1.ContainerStatus, init bool) (PodProblem, bool) {
	p := PodProblem{Container: cs.Name, Image: cs.Image, Restarts: cs.RestartCount}
	last := cs.LastTerminationState.Terminated
	crashedBefore := last != nil && last.ExitCode != 0 && cs.RestartCount > 0
	switch {
	case cs.State.Waiting != nil && cs.State.Waiting.Reason == crashLoopReason,
		cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
		p.Reason = crashLoopReason
		if t := cs.State.Terminated; t != nil {
			// The first exit is just an exit; from the second on it is a loop.
			if cs.RestartCount == 0 {
				p.Reason = nonEmpty(t.Reason, "Error")
			}
			p.Since, last = t.FinishedAt.Time, t
		}
		p.Message = strings.TrimSpace(fmt.Sprintf("last exit code %d (%s), %d restarts", exitCode(last), terminatedReason(last), cs.RestartCount))
		if cs.State.Waiting != nil && cs.State.Waiting.Message != "" {
			p.Message += "; " + cs.State.Waiting.Message
		}
		// Two non-zero exits in a row: the container crashes at start, and
		// kubelet's growing back-off only delays the next proof of it.
		// (One crash alone may be a dependency not up yet.)
		if cs.State.Terminated != nil {
			p.Certain = cs.RestartCount >= 1
		} else {
			p.Certain = crashedBefore && cs.RestartCount >= 2
		}
		p.Logs, p.PreviousLogs = true, cs.State.Terminated == nil
	case cs.State.Waiting != nil && slices.Contains(stuckWaitingReasons, cs.State.Waiting.Reason):
		p.Reason, p.Message = cs.State.Waiting.Reason, cs.State.Waiting.Message
		if p.Reason == "ErrImagePull" {
			p.Reason = ImagePullReason
		}
	case !init && cs.State.Running != nil && !cs.Ready:
		p.Reason, p.Since, p.Logs = NotReadyReason, cs.State.Running.StartedAt.Time, true
		p.Message = fmt.Sprintf("running since %s but not ready", cs.State.Running.StartedAt.UTC().Format("15:04:05"))
		if crashedBefore {
			p.Message += fmt.Sprintf(" (%d restarts, last exit code %d)", cs.RestartCount, last.ExitCode)
			p.PreviousLogs = true
		}
	default:
		return p, false
	}
	p.Message = strings.TrimSpace(p.Message)
	return p, true
}

func exitCode(t *corev1.ContainerStateTerminated) int32 {
	if t == nil {
		return 0
	}
	return t.ExitCode
}

func terminatedReason(t *corev1.ContainerStateTerminated) string {
	if t == nil || t.Reason == "" {
		return "Error"
	}
	return t.Reason
}

// PodOwner names the workload owning a pod ("Deployment/ns/name"),
// resolving ReplicaSets to their Deployment through the pod-template-hash
// naming convention.
func PodOwner(pod *corev1.Pod) string {
	for _, o := range pod.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if h := pod.Labels["pod-template-hash"]; o.Kind == "ReplicaSet" && h != "" && strings.HasSuffix(o.Name, "-"+h) {
			return ObjectRef{Group: "apps", Kind: "Deployment", Namespace: pod.Namespace, Name: strings.TrimSuffix(o.Name, "-"+h)}.String()
		}
		return ObjectRef{Kind: o.Kind, Namespace: pod.Namespace, Name: o.Name}.String()
	}
	return ""
}

// PodRef is the reference of a pod.
func PodRef(pod *corev1.Pod) ObjectRef {
	return ObjectRef{Version: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}
}

// IsSystemNamespace reports whether ns holds the kind node's own pods,
// which the fleet does not manage.
func IsSystemNamespace(ns string) bool {
	switch ns {
	case "kube-system", "kube-public", "kube-node-lease", "local-path-storage":
		return true
	}
	return false
}
