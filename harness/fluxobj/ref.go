package fluxobj

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ObjectRef names a Kubernetes object. Group and Version are optional where
// the Kind is unique among the kinds the caller deals with.
type ObjectRef struct {
	Group     string
	Version   string
	Kind      string
	Namespace string
	Name      string
}

// String renders the reference as the flux CLI does, "Kind/namespace/name"
// (or "Kind/name" when cluster-scoped): the one form every harness line,
// finding and error uses.
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Less orders references by kind, namespace and name.
func (r ObjectRef) Less(o ObjectRef) bool {
	if r.Kind != o.Kind {
		return r.Kind < o.Kind
	}
	if r.Namespace != o.Namespace {
		return r.Namespace < o.Namespace
	}
	return r.Name < o.Name
}

// GroupKind is the reference's group and kind.
func (r ObjectRef) GroupKind() schema.GroupKind {
	return schema.GroupKind{Group: r.Group, Kind: r.Kind}
}

// RefOf returns the reference of an object.
func RefOf(u *unstructured.Unstructured) ObjectRef {
	gvk := u.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// ParseInventoryID parses a Flux inventory entry id
// ("<namespace>_<name>_<group>_<kind>", colons in names escaped as "__")
// with cli-utils, the library kustomize-controller writes them with.
func ParseInventoryID(id string) (ObjectRef, error) {
	m, err := object.ParseObjMetadata(id)
	if err != nil {
		return ObjectRef{}, fmt.Errorf("parsing inventory id %q: %w", id, err)
	}
	if m.Name == "" || m.GroupKind.Kind == "" {
		return ObjectRef{}, fmt.Errorf("parsing inventory id %q: empty name or kind", id)
	}
	return ObjectRef{Group: m.GroupKind.Group, Kind: m.GroupKind.Kind, Namespace: m.Namespace, Name: m.Name}, nil
}

// Inventory returns the objects a Kustomization applied, from its
// status.inventory; entries that do not parse are returned in the error
// while the others are still returned.
func Inventory(u *unstructured.Unstructured) ([]ObjectRef, error) {
	entries, _, _ := unstructured.NestedSlice(u.Object, "status", "inventory", "entries")
	var out []ObjectRef
	var bad []string
	for _, e := range entries {
		m, _ := e.(map[string]any)
		id, _ := m["id"].(string)
		ref, err := ParseInventoryID(id)
		if err != nil {
			bad = append(bad, id)
			continue
		}
		ref.Version, _ = m["v"].(string)
		out = append(out, ref)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%s: inventory entries that do not parse: %q", RefOf(u), bad)
	}
	return out, nil
}

// SourceOf returns the source an object consumes: a Kustomization's or
// HelmChart's spec.sourceRef, a HelmRelease's spec.chartRef or its
// chart template's sourceRef. ok is false when it names none.
func SourceOf(u *unstructured.Unstructured) (ObjectRef, bool) {
	paths := [][]string{{"spec", "sourceRef"}, {"spec", "chartRef"}, {"spec", "chart", "spec", "sourceRef"}}
	for _, p := range paths {
		m, found, _ := unstructured.NestedStringMap(u.Object, p...)
		if !found || m["kind"] == "" || m["name"] == "" {
			continue
		}
		ref := ObjectRef{Kind: m["kind"], Namespace: m["namespace"], Name: m["name"]}
		if ref.Namespace == "" {
			ref.Namespace = u.GetNamespace()
		}
		if k, ok := KindOf(ref.Kind); ok {
			ref.Group, ref.Version = k.GVK.Group, k.GVK.Version
		}
		return ref, true
	}
	return ObjectRef{}, false
}

// ArtifactRevision returns a source's status.artifact.revision.
func ArtifactRevision(u *unstructured.Unstructured) string {
	rev, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "revision")
	return rev
}
