// Package fluxobjtest builds Flux objects with a given status for the
// harness's unit tests: the shapes controllers write, without a cluster.
package fluxobjtest

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// Cond is a status condition as controllers write it.
func Cond(t, status, reason, msg string) map[string]any {
	return map[string]any{"type": t, "status": status, "reason": reason, "message": msg, "lastTransitionTime": "2026-11-25T22:41:07Z"}
}

// WithGeneration stamps a condition with the generation it judged.
func WithGeneration(c map[string]any, gen int64) map[string]any {
	c["observedGeneration"] = gen
	return c
}

// Object is a Flux object of kind at generation gen, whose status has
// observedGeneration observed, the given fields and conditions.
func Object(kind, ns, name string, gen, observed int64, status map[string]any, conds ...map[string]any) *unstructured.Unstructured {
	k, ok := fluxobj.KindOf(kind)
	if !ok {
		panic("unknown Flux kind " + kind)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": k.GVK.GroupVersion().String(),
		"kind":       kind,
		"metadata":   map[string]any{"namespace": ns, "name": name, "generation": gen},
		"spec":       map[string]any{},
	}}
	st := map[string]any{"observedGeneration": observed}
	for key, v := range status {
		st[key] = v
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
