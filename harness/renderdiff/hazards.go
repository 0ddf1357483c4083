package renderdiff

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The API server's words for the updates it refuses.
const (
	reasonImmutable   = "field is immutable: the API server refuses the update"
	reasonStatefulSet = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', " +
		"'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden: the API server refuses the update"
	reasonClaim = "spec is immutable after creation except resources.requests and volumeAttributesClassName: " +
		"the API server refuses the update"
)

// hazards predicts, for one environment, what the head does to a cluster
// running the base that the API server or Flux would refuse or regret.
func hazards(env string, base, head *envObjects) []Hazard {
	out := []Hazard{}
	users := usersOf(head)
	for _, r := range sortedRefs(base.objects, head.objects) {
		b, h := base.objects[r], head.objects[r]
		switch {
		case b != nil && h != nil:
			out = append(out, forced(immutableChanges(env, b, h), h, head)...)
		case b != nil:
			out = append(out, removedInUse(env, b, head, users)...)
		}
	}
	out = append(out, majorVersions(env, base, head)...)
	slices.SortStableFunc(out, func(a, b Hazard) int {
		return cmp.Or(strings.Compare(a.Object, b.Object), strings.Compare(a.Field, b.Field))
	})
	return out
}

// immutableField is a field the API server refuses to change once set.
type immutableField struct {
	path []string
	// unset is the value the API server defaults the field to.
	unset  any
	reason string
}

func immutableFields(kind string) []immutableField {
	switch kind {
	case "Deployment", "ReplicaSet", "DaemonSet":
		return []immutableField{{path: []string{"spec", "selector"}, reason: reasonImmutable}}
	case "StatefulSet":
		return []immutableField{
			{path: []string{"spec", "selector"}, reason: reasonStatefulSet},
			{path: []string{"spec", "serviceName"}, reason: reasonStatefulSet},
			{path: []string{"spec", "podManagementPolicy"}, unset: "OrderedReady", reason: reasonStatefulSet},
			{path: []string{"spec", "volumeClaimTemplates"}, reason: reasonStatefulSet},
		}
	case "Job":
		return []immutableField{
			{path: []string{"spec", "selector"}, reason: reasonImmutable},
			{path: []string{"spec", "template"}, reason: reasonImmutable},
		}
	case "PersistentVolumeClaim":
		return []immutableField{
			{path: []string{"spec", "accessModes"}, reason: reasonClaim},
			{path: []string{"spec", "storageClassName"}, reason: reasonClaim},
			{path: []string{"spec", "volumeMode"}, unset: "Filesystem", reason: reasonClaim},
			{path: []string{"spec", "volumeName"}, reason: reasonClaim},
			{path: []string{"spec", "selector"}, reason: reasonClaim},
			{path: []string{"spec", "dataSource"}, reason: reasonClaim},
		}
	}
	return nil
}

// immutableChanges lists the changes from b to h that the API server
// refuses on update.
func immutableChanges(env string, b, h *object) []Hazard {
	hazard := func(field, reason, baseValue, headValue string) Hazard {
		return Hazard{Env: env, Owner: h.owner.String(), Object: h.ref.String(), Field: field, Reason: reason, Base: baseValue, Head: headValue}
	}
	var out []Hazard
	for _, f := range immutableFields(h.ref.Kind) {
		bv, bok := valueAt(b.body, f.path)
		hv, hok := valueAt(h.body, f.path)
		if !bok {
			bv = f.unset
		}
		if !hok {
			hv = f.unset
		}
		if !reflect.DeepEqual(bv, hv) {
			out = append(out, hazard(strings.Join(f.path, "."), f.reason, describe(bv), describe(hv)))
		}
	}
	switch h.ref.Kind {
	case "PersistentVolumeClaim":
		out = append(out, claimShrinks(b, h, hazard)...)
	case "Service":
		out = append(out, serviceAddressChanges(b, h, hazard)...)
	}
	return out
}

// claimShrinks is a claim whose requested storage decreases.
func claimShrinks(b, h *object, hazard func(field, reason, base, head string) Hazard) []Hazard {
	path := []string{"spec", "resources", "requests", "storage"}
	bv, _ := valueAt(b.body, path)
	hv, _ := valueAt(h.body, path)
	bq, berr := resource.ParseQuantity(fmt.Sprint(bv))
	hq, herr := resource.ParseQuantity(fmt.Sprint(hv))
	if berr != nil || herr != nil || hq.Cmp(bq) >= 0 {
		return nil
	}
	return []Hazard{hazard(strings.Join(path, "."), "field can not be less than previous value: the API server refuses to shrink a claim",
		bq.String(), hq.String())}
}

// serviceAddressChanges are the clusterIP and type changes the API server
// refuses: a set address changed (headless "None" included), an allocated
// one replaced, or a headless Service made a NodePort or LoadBalancer.
// ExternalName Services have no address, and a change to or from that type
// clears or allocates one.
func serviceAddressChanges(b, h *object, hazard func(field, reason, base, head string) Hazard) []Hazard {
	bType, hType := serviceType(b), serviceType(h)
	if bType == "ExternalName" || hType == "ExternalName" {
		return nil
	}
	bs, hs := stringAt(b.body, "spec", "clusterIP"), stringAt(h.body, "spec", "clusterIP")
	switch {
	case bs != "" && hs != "" && bs != hs:
		return []Hazard{hazard("spec.clusterIP", reasonImmutable, bs, hs)}
	case bs == "" && hs != "":
		return []Hazard{hazard("spec.clusterIP", reasonImmutable+" (unless it is the address the cluster allocated)", "allocated by the cluster", hs)}
	case bs == "None" && hs == "" && (hType == "NodePort" || hType == "LoadBalancer"):
		return []Hazard{hazard("spec.type", "the cluster keeps clusterIP None (immutable), which a "+hType+" Service may not have: the API server refuses the update",
			"type "+bType+", clusterIP None", "type "+hType)}
	}
	return nil
}

func serviceType(o *object) string {
	if t := stringAt(o.body, "spec", "type"); t != "" {
		return t
	}
	return "ClusterIP"
}

// forced notes, on the hazards of one object, that Flux re-creates the
// object instead of updating it: the Kustomization that applies it has
// spec.force, or the object the kustomize.toolkit.fluxcd.io/force annotation.
func forced(hs []Hazard, h *object, head *envObjects) []Hazard {
	owner := head.objects[h.owner]
	byOwner := owner != nil && owner.ref.Kind == "Kustomization" && mapAt(owner.body, "spec")["force"] == true
	byAnnotation := stringAt(h.body, "metadata", "annotations", "kustomize.toolkit.fluxcd.io/force") == "enabled"
	if !byOwner && !byAnnotation {
		return hs
	}
	for i := range hs {
		hs[i].Reason += "; forced: Flux deletes and re-creates the object (its pods, claims or data go with it)"
	}
	return hs
}

// removedInUse is an object the head removes while something that stays
// still needs it; a Namespace still holding objects and a CRD (its custom
// resources are deleted with it) always count.
func removedInUse(env string, b *object, head *envObjects, users map[ref][]use) []Hazard {
	var using []string
	for _, u := range users[b.ref] {
		using = append(using, fmt.Sprintf("%s (%s)", u.by, u.field))
	}
	reason := "removed while still in use: Flux prunes it and what uses it breaks"
	switch b.ref.Kind {
	case "Namespace":
		for _, r := range sortedRefs(head.objects, head.objects) {
			if r.Namespace == b.ref.Name {
				using = append(using, r.String())
			}
		}
		reason = "namespace removed while objects stay in it: deleting it deletes them"
	case "CustomResourceDefinition":
		using = append(using, customResourcesOf(b, head)...)
		reason = "CRD removed: every custom resource of it is deleted with it"
		if len(using) == 0 {
			using = []string{"no custom resource of it in the fleet"}
		}
	}
	if len(using) == 0 {
		return nil
	}
	return []Hazard{{Env: env, Owner: b.owner.String(), Object: b.ref.String(), Reason: reason,
		Base: "applied by " + b.owner.String(), Head: "gone; still used by " + listUpTo(using, 5)}}
}

// customResourcesOf lists the head's objects of the kind a CRD defines.
func customResourcesOf(crd *object, head *envObjects) []string {
	spec := mapAt(crd.body, "spec")
	group, kind := stringAt(spec, "group"), stringAt(spec, "names", "kind")
	var out []string
	for _, r := range sortedRefs(head.objects, head.objects) {
		apiVersion, _ := head.objects[r].body["apiVersion"].(string)
		if r.Kind == kind && strings.HasPrefix(apiVersion, group+"/") {
			out = append(out, r.String())
		}
	}
	return out
}

// majorVersions are the HelmReleases whose chart moves to another major
// version, where a chart may break its values or objects.
func majorVersions(env string, base, head *envObjects) []Hazard {
	var out []Hazard
	for _, r := range sortedRefs(base.releases, head.releases) {
		b, h := base.releases[r], head.releases[r]
		if b == nil || h == nil {
			continue
		}
		bv, berr := semver.NewVersion(b.version)
		hv, herr := semver.NewVersion(h.version)
		if berr != nil || herr != nil || bv.Major() == hv.Major() {
			continue
		}
		owner := ""
		if o := head.objects[r]; o != nil {
			owner = o.owner.String()
		}
		out = append(out, Hazard{Env: env, Owner: owner, Object: r.String(), Field: "chart",
			Reason: "chart moves to another major version: its values and objects may change incompatibly (read its upgrade notes)",
			Base:   b.chart + " " + b.version, Head: h.chart + " " + h.version})
	}
	return out
}

// valueAt follows a path of map keys.
func valueAt(m map[string]any, path []string) (any, bool) {
	v, ok := any(m), true
	for _, p := range path {
		if v, ok = asMap(v)[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// describe renders a field's value for a hazard line: compact JSON, cut
// short when long.
func describe(v any) string {
	if v == nil {
		return "(unset)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const limit = 200
	if s := string(b); len(s) > limit {
		return s[:limit] + "…"
	}
	return string(b)
}

// listUpTo joins items, naming at most n and counting the rest.
func listUpTo(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
