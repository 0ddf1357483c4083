package readiness

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// podTracker turns fluxobj's pod problems into failures: at once when the
// problem is certain (a crash loop in the restart history), else once it has
// lasted the grace period — counted from when the pod says it began, or
// from when the tracker first saw it.
//
// A pod created before the wait started belongs to what was there before
// the revision being waited for (a kept cluster, a published fix): the new
// revision may replace it within seconds, so none of its problems is
// certain and its grace is counted from the start of the wait.
type podTracker struct {
	grace   time.Duration
	started time.Time
	since   map[string]time.Time // key: pod UID/container/problem class
}

func newPodTracker(grace time.Duration, started time.Time) *podTracker {
	return &podTracker{grace: grace, started: started, since: map[string]time.Time{}}
}

// observe returns a failure once a problem of pod has lasted the grace
// period, and otherwise the time at which it would become one (zero when
// the pod is healthy).
func (t *podTracker) observe(pod *corev1.Pod, now time.Time) (*FailureError, time.Time) {
	prefix := string(pod.UID) + "/"
	current := map[string]bool{}
	var next time.Time
	// Creation times are whole seconds: a pod of the same second as the
	// start counts as new.
	earlier := pod.CreationTimestamp.Time.Before(t.started.Truncate(time.Second))
	for _, p := range fluxobj.PodProblems(pod) {
		key := prefix + p.Container + "/" + p.Reason
		current[key] = true
		since, ok := t.since[key]
		if !ok {
			since = now
			if !p.Since.IsZero() && p.Since.Before(now) {
				since = p.Since
			}
			if earlier && since.Before(t.started) {
				since = t.started
			}
			t.since[key] = since
		}
		if earlier {
			p.Certain = false
		}
		if waited := now.Sub(since); p.Certain || waited >= t.grace {
			msg := nonEmpty(p.Message, "no message")
			if !p.Certain {
				msg = fmt.Sprintf("%s (for %s)", msg, waited.Round(time.Second))
			}
			return &FailureError{
				Object:    fluxobj.PodRef(pod).String(),
				Reason:    p.Reason,
				Message:   msg,
				Container: p.Container,
				Image:     p.Image,
				Owner:     fluxobj.PodOwner(pod),
			}, time.Time{}
		}
		if d := since.Add(t.grace); next.IsZero() || d.Before(next) {
			next = d
		}
	}
	for key := range t.since {
		if strings.HasPrefix(key, prefix) && !current[key] {
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

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
