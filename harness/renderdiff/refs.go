package renderdiff

import (
	"fmt"
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/preflight"
)

// reference is one object naming another: the field holding the name.
type reference struct {
	target ref
	field  string
}

// referencesOf lists the objects an object needs to exist in its
// environment: an Ingress's backend Services and TLS Secrets, a workload's
// ConfigMaps, Secrets, PersistentVolumeClaims and ServiceAccount, a Flux
// object's sources, valuesFrom and dependencies. Optional references
// (optional: true) are left out.
func referencesOf(o *object) []reference {
	switch o.ref.Kind {
	case "Ingress":
		return ingressReferences(o)
	case "HelmRelease":
		return helmReleaseReferences(o)
	case "Kustomization", "HelmChart":
		spec := mapAt(o.body, "spec")
		out := sourceReference(o, mapAt(spec, "sourceRef"), "spec.sourceRef")
		return append(out, dependsOn(o, spec, o.ref.Kind)...)
	}
	if path := preflight.PodSpecPath(o.ref.Kind); path != nil {
		return podReferences(o, preflight.PodSpec(o.body), strings.Join(path, "."))
	}
	return nil
}

func ingressReferences(o *object) []reference {
	spec := mapAt(o.body, "spec")
	local := func(kind, name, field string) []reference {
		if name == "" {
			return nil
		}
		return []reference{{target: ref{Kind: kind, Namespace: o.ref.Namespace, Name: name}, field: field}}
	}
	out := local("Service", stringAt(spec, "defaultBackend", "service", "name"), "spec.defaultBackend.service.name")
	for i, rule := range listAt(spec, "rules") {
		for j, p := range listAt(asMap(rule), "http", "paths") {
			out = append(out, local("Service", stringAt(asMap(p), "backend", "service", "name"),
				fmt.Sprintf("spec.rules[%d].http.paths[%d].backend.service.name", i, j))...)
		}
	}
	for i, tls := range listAt(spec, "tls") {
		out = append(out, local("Secret", stringAt(asMap(tls), "secretName"), fmt.Sprintf("spec.tls[%d].secretName", i))...)
	}
	return out
}

// podReferences lists what a pod spec (at prefix in its object) mounts,
// reads into its environment, pulls with and runs as.
func podReferences(o *object, pod map[string]any, prefix string) []reference {
	var out []reference
	add := func(kind, name, field string, optional any) {
		if name != "" && optional != true {
			out = append(out, reference{target: ref{Kind: kind, Namespace: o.ref.Namespace, Name: name}, field: prefix + "." + field})
		}
	}
	for i, v := range listAt(pod, "volumes") {
		vol, at := asMap(v), fmt.Sprintf("volumes[%d].", i)
		add("ConfigMap", stringAt(vol, "configMap", "name"), at+"configMap.name", mapAt(vol, "configMap")["optional"])
		add("Secret", stringAt(vol, "secret", "secretName"), at+"secret.secretName", mapAt(vol, "secret")["optional"])
		add("PersistentVolumeClaim", stringAt(vol, "persistentVolumeClaim", "claimName"), at+"persistentVolumeClaim.claimName", nil)
		for j, s := range listAt(vol, "projected", "sources") {
			src, at := asMap(s), fmt.Sprintf("%sprojected.sources[%d].", at, j)
			add("ConfigMap", stringAt(src, "configMap", "name"), at+"configMap.name", mapAt(src, "configMap")["optional"])
			add("Secret", stringAt(src, "secret", "name"), at+"secret.name", mapAt(src, "secret")["optional"])
		}
	}
	for _, list := range []string{"initContainers", "containers"} {
		for i, c := range listAt(pod, list) {
			at := fmt.Sprintf("%s[%d].", list, i)
			for j, e := range listAt(asMap(c), "env") {
				from, at := mapAt(asMap(e), "valueFrom"), fmt.Sprintf("%senv[%d].valueFrom.", at, j)
				add("ConfigMap", stringAt(from, "configMapKeyRef", "name"), at+"configMapKeyRef.name", mapAt(from, "configMapKeyRef")["optional"])
				add("Secret", stringAt(from, "secretKeyRef", "name"), at+"secretKeyRef.name", mapAt(from, "secretKeyRef")["optional"])
			}
			for j, e := range listAt(asMap(c), "envFrom") {
				src, at := asMap(e), fmt.Sprintf("%senvFrom[%d].", at, j)
				add("ConfigMap", stringAt(src, "configMapRef", "name"), at+"configMapRef.name", mapAt(src, "configMapRef")["optional"])
				add("Secret", stringAt(src, "secretRef", "name"), at+"secretRef.name", mapAt(src, "secretRef")["optional"])
			}
		}
	}
	for i, s := range listAt(pod, "imagePullSecrets") {
		add("Secret", stringAt(asMap(s), "name"), fmt.Sprintf("imagePullSecrets[%d].name", i), nil)
	}
	// "default" is created by the cluster in every namespace.
	if sa := stringAt(pod, "serviceAccountName"); sa != "default" {
		add("ServiceAccount", sa, "serviceAccountName", nil)
	}
	return out
}

func helmReleaseReferences(o *object) []reference {
	spec := mapAt(o.body, "spec")
	out := sourceReference(o, mapAt(spec, "chart", "spec", "sourceRef"), "spec.chart.spec.sourceRef")
	out = append(out, sourceReference(o, mapAt(spec, "chartRef"), "spec.chartRef")...)
	for i, v := range listAt(spec, "valuesFrom") {
		from := asMap(v)
		if name := stringAt(from, "name"); name != "" && from["optional"] != true {
			out = append(out, reference{target: ref{Kind: stringAt(from, "kind"), Namespace: o.ref.Namespace, Name: name},
				field: fmt.Sprintf("spec.valuesFrom[%d]", i)})
		}
	}
	return append(out, dependsOn(o, spec, "HelmRelease")...)
}

// sourceReference is a Flux cross-namespace reference: the referrer's
// namespace unless it names another.
func sourceReference(o *object, sourceRef map[string]any, field string) []reference {
	kind, name := stringAt(sourceRef, "kind"), stringAt(sourceRef, "name")
	if kind == "" || name == "" {
		return nil
	}
	ns := stringAt(sourceRef, "namespace")
	if ns == "" {
		ns = o.ref.Namespace
	}
	return []reference{{target: ref{Kind: kind, Namespace: ns, Name: name}, field: field}}
}

// dependsOn lists spec.dependsOn: objects of the referrer's own kind.
func dependsOn(o *object, spec map[string]any, kind string) []reference {
	var out []reference
	for i, d := range listAt(spec, "dependsOn") {
		dep := asMap(d)
		target := map[string]any{"kind": kind, "name": dep["name"], "namespace": dep["namespace"]}
		out = append(out, sourceReference(o, target, fmt.Sprintf("spec.dependsOn[%d]", i))...)
	}
	return out
}

// usersOf indexes the references of every object of an environment by the
// object they name.
func usersOf(env *envObjects) map[ref][]use {
	out := map[ref][]use{}
	for _, o := range env.objects {
		for _, r := range referencesOf(o) {
			out[r.target] = append(out[r.target], use{by: o.ref, field: r.field})
		}
	}
	return out
}

// use is an object that names another, and where.
type use struct {
	by    ref
	field string
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// mapAt follows a path of map keys; nil where it ends.
func mapAt(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = asMap(m[p])
	}
	return m
}

func stringAt(m map[string]any, path ...string) string {
	s, _ := mapAt(m, path[:len(path)-1]...)[path[len(path)-1]].(string)
	return s
}

func listAt(m map[string]any, path ...string) []any {
	l, _ := mapAt(m, path[:len(path)-1]...)[path[len(path)-1]].([]any)
	return l
}
