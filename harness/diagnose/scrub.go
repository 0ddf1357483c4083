package diagnose

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flux-fleet/flux-fleet/harness/record"
)

// Helm's schema and template errors quote a rejected value, and
// helm-controller copies them into conditions, events and its log: what
// controllers say about Flux objects is scrubbed of the values those objects
// carry (record.Scrubbers) as soon as it is read, before anything truncates
// it and so cuts a value in two.

// listFluxScrubbed is listFlux with each object's status scrubbed (copies;
// spec.values stay for the caller to redact), and the environment's
// scrubbers; nil scrubbers with raw.
func (c *clients) listFluxScrubbed(ctx context.Context, raw bool) ([]*unstructured.Unstructured, *record.Scrubbers, []error) {
	objs, errs := c.listFlux(ctx)
	if raw {
		return objs, nil, errs
	}
	s := record.NewScrubbers(objs)
	out := make([]*unstructured.Unstructured, len(objs))
	for i, u := range objs {
		out[i] = u.DeepCopy()
		if st, ok := out[i].Object["status"]; ok {
			ref := keyOf(u)
			out[i].Object["status"] = mapStrings(st, func(text string) string { return s.Object(ref, text) })
		}
	}
	return out, s, errs
}

// mapStrings applies f to every string of a JSON-like tree, in place.
func mapStrings(v any, f func(string) string) any {
	switch n := v.(type) {
	case string:
		return f(n)
	case map[string]any:
		for k, child := range n {
			n[k] = mapStrings(child, f)
		}
		return n
	case []any:
		for i, child := range n {
			n[i] = mapStrings(child, f)
		}
		return n
	default:
		return v
	}
}

// scrubEvents scrubs each event's message in place with the scrubber of the
// object it is about.
func scrubEvents(s *record.Scrubbers, items []corev1.Event) {
	for i := range items {
		e := &items[i]
		e.Message = s.Object(refKey(e.InvolvedObject.Kind, e.InvolvedObject.Namespace, e.InvolvedObject.Name), e.Message)
	}
}
