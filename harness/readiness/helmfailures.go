package readiness

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// helmFailures is the wait's memory of one HelmRelease's counted failures:
// the newest and the one before it, each as first seen at its count. The
// informer caches keep only an object's latest state, and between two
// failures helm-controller remediates and retries, so the earlier failure's
// message survives only here.
type helmFailures struct {
	prev, last fluxobj.HelmFailure
}

// add records f. A new generation, another action or a counter that went
// down (helm-controller resets it for a new desired state) starts over; a
// count already recorded keeps its first message, the failure that counted.
func (h helmFailures) add(f fluxobj.HelmFailure) helmFailures {
	switch {
	case f.Generation != h.last.Generation || f.Action != h.last.Action || f.Count < h.last.Count:
		return helmFailures{last: f}
	case f.Count == h.last.Count:
		return h
	default:
		return helmFailures{prev: h.last, last: f}
	}
}

// recordHelmFailure remembers u's counted failure, if it reports one. It
// runs for every watch event, so that no count is missed between two
// evaluations, and under r.mu since those come from the informers'
// goroutines.
func (r *run) recordHelmFailure(u *unstructured.Unstructured) {
	f, ok := fluxobj.HelmFailureOf(u)
	if !ok {
		return
	}
	key := fluxobj.RefOf(u).String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.helmFailures == nil {
		r.helmFailures = map[string]helmFailures{}
	}
	r.helmFailures[key] = r.helmFailures[key].add(f)
}

// repeatedHelmFailure returns a failure when u, not Ready, failed its last
// two attempts at its current generation in the same way
// (fluxobj.RepeatedHelmFailure).
func (r *run) repeatedHelmFailure(key string, u *unstructured.Unstructured) *FailureError {
	r.recordHelmFailure(u)
	r.mu.Lock()
	h := r.helmFailures[key]
	r.mu.Unlock()
	if h.last.Generation != u.GetGeneration() {
		return nil
	}
	v, ok := fluxobj.RepeatedHelmFailure(h.prev, h.last)
	if !ok {
		return nil
	}
	return &FailureError{Object: key, Reason: v.Reason, Message: v.Message, Terminal: v.Terminal}
}
