package validate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	sourcev1beta2 "github.com/fluxcd/source-controller/api/v1beta2"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// builtinNamespaces exist on every cluster; flux-system is created by the
// Flux install.
var builtinNamespaces = map[string]bool{
	"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true, fluxobj.Namespace: true,
}

// clusterScoped lists the built-in cluster-scoped kinds that kustomize may
// still give a namespace to; their namespace is not checked.
var clusterScoped = map[string]bool{
	"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true,
	"PersistentVolume": true, "StorageClass": true, "PriorityClass": true, "IngressClass": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true, "APIService": true,
	"RuntimeClass": true, "CSIDriver": true, "Node": true, "ValidatingAdmissionPolicy": true,
	"ValidatingAdmissionPolicyBinding": true,
}

type checker struct {
	env      *Env
	findings []Finding
}

func (c *checker) add(o *Object, format string, args ...any) {
	c.findings = append(c.findings, Finding{Env: c.env.Name, File: o.File, Object: o.Ref, Reason: fmt.Sprintf(format, args...)})
}

// checkEnv runs the graph checks on one built environment.
func checkEnv(env *Env) []Finding {
	c := &checker{env: env}
	namespaces := c.namespaces()
	ksDeps := map[ObjectRef][]ObjectRef{}
	hrDeps := map[ObjectRef][]ObjectRef{}
	for _, o := range env.Objects {
		switch t := o.Typed.(type) {
		case *kustomizev1.Kustomization:
			c.source(o, "spec.sourceRef", t.Spec.SourceRef.Kind, t.Spec.SourceRef.Namespace, t.Spec.SourceRef.Name,
				[]string{sourcev1.GitRepositoryKind, sourcev1.OCIRepositoryKind, sourcev1.BucketKind, sourcev1.ExternalArtifactKind})
			for _, d := range t.Spec.DependsOn {
				ksDeps[o.Ref] = append(ksDeps[o.Ref], c.dependency(o, kustomizev1.KustomizationKind, d.Namespace, d.Name))
			}
			if t.Spec.TargetNamespace != "" && !namespaces[t.Spec.TargetNamespace] {
				c.add(o, "spec.targetNamespace %q is not created by this environment (add a Namespace object)", t.Spec.TargetNamespace)
			}
		case *helmv2.HelmRelease:
			c.helmRelease(o, t, namespaces)
			for _, d := range t.Spec.DependsOn {
				hrDeps[o.Ref] = append(hrDeps[o.Ref], c.dependency(o, helmv2.HelmReleaseKind, d.Namespace, d.Name))
			}
		case *sourcev1.HelmChart:
			c.source(o, "spec.sourceRef", t.Spec.SourceRef.Kind, o.Ref.Namespace, t.Spec.SourceRef.Name,
				[]string{sourcev1.HelmRepositoryKind, sourcev1.GitRepositoryKind, sourcev1.BucketKind})
		case *sourcev1beta2.HelmChart:
			c.source(o, "spec.sourceRef", t.Spec.SourceRef.Kind, o.Ref.Namespace, t.Spec.SourceRef.Name,
				[]string{sourcev1.HelmRepositoryKind, sourcev1.GitRepositoryKind, sourcev1.BucketKind})
		}
		if o.Ref.Namespace != "" && !clusterScoped[o.Ref.Kind] && !namespaces[o.Ref.Namespace] {
			c.add(o, "namespace %q is never created in this environment (no Namespace object, no HelmRelease createNamespace)", o.Ref.Namespace)
		}
	}
	c.cycles(ksDeps)
	c.cycles(hrDeps)
	return c.findings
}

// namespaces returns every namespace the environment can count on.
func (c *checker) namespaces() map[string]bool {
	ns := map[string]bool{}
	for n := range builtinNamespaces {
		ns[n] = true
	}
	for _, o := range c.env.Objects {
		if o.Ref.Kind == "Namespace" {
			ns[o.Ref.Name] = true
		}
		if hr, ok := o.Typed.(*helmv2.HelmRelease); ok && hr.Spec.Install != nil && hr.Spec.Install.CreateNamespace {
			ns[releaseNamespace(hr)] = true
		}
	}
	return ns
}

func releaseNamespace(hr *helmv2.HelmRelease) string {
	if hr.Spec.TargetNamespace != "" {
		return hr.Spec.TargetNamespace
	}
	return hr.Namespace
}

func (c *checker) helmRelease(o *Object, hr *helmv2.HelmRelease, namespaces map[string]bool) {
	switch {
	case hr.Spec.Chart == nil && hr.Spec.ChartRef == nil:
		c.add(o, "needs spec.chart or spec.chartRef")
	case hr.Spec.Chart != nil && hr.Spec.ChartRef != nil:
		c.add(o, "spec.chart and spec.chartRef are mutually exclusive")
	case hr.Spec.Chart != nil:
		ref := hr.Spec.Chart.Spec.SourceRef
		c.source(o, "spec.chart.spec.sourceRef", ref.Kind, ref.Namespace, ref.Name,
			[]string{sourcev1.HelmRepositoryKind, sourcev1.GitRepositoryKind, sourcev1.BucketKind})
	default:
		ref := hr.Spec.ChartRef
		c.source(o, "spec.chartRef", ref.Kind, ref.Namespace, ref.Name,
			[]string{sourcev1.OCIRepositoryKind, sourcev1.HelmChartKind, sourcev1.ExternalArtifactKind})
	}
	if target := hr.Spec.TargetNamespace; target != "" && !namespaces[target] {
		c.add(o, "spec.targetNamespace %q is never created in this environment (add a Namespace object or spec.install.createNamespace: true)", target)
	}
}

// source checks that a source reference names a kind it may name and an
// object of this environment.
func (c *checker) source(o *Object, field, kind, namespace, name string, kinds []string) {
	if namespace == "" {
		namespace = o.Ref.Namespace
	}
	ref := ObjectRef{Kind: kind, Namespace: namespace, Name: name}
	if !slices.Contains(kinds, kind) {
		c.add(o, "%s kind %q is not one of %s", field, kind, strings.Join(kinds, ", "))
		return
	}
	if c.env.Object(ref) == nil {
		c.add(o, "%s %s is not defined in this environment%s", field, ref, c.similar(ref))
	}
}

func (c *checker) dependency(o *Object, kind, namespace, name string) ObjectRef {
	if namespace == "" {
		namespace = o.Ref.Namespace
	}
	ref := ObjectRef{Kind: kind, Namespace: namespace, Name: name}
	if c.env.Object(ref) == nil {
		c.add(o, "spec.dependsOn %s is not defined in this environment%s: %s would wait for it forever", ref, c.similar(ref), o.Ref.Kind)
	}
	return ref
}

// similar suggests an object of the same kind and name in another
// namespace, the usual cause of a dangling reference.
func (c *checker) similar(ref ObjectRef) string {
	var names []string
	for _, o := range c.env.Objects {
		if o.Ref.Kind == ref.Kind && o.Ref.Name == ref.Name && o.Ref != ref {
			names = append(names, o.Ref.String())
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (did you mean " + strings.Join(names, " or ") + "?)"
}

// cycles reports each dependency cycle once, on its smallest member.
func (c *checker) cycles(deps map[ObjectRef][]ObjectRef) {
	const (
		unvisited = iota
		active
		done
	)
	state := map[ObjectRef]int{}
	var stack []ObjectRef
	reported := map[string]bool{}
	var visit func(n ObjectRef)
	visit = func(n ObjectRef) {
		state[n] = active
		stack = append(stack, n)
		next := append([]ObjectRef(nil), deps[n]...)
		sort.Slice(next, func(i, j int) bool { return next[i].Less(next[j]) })
		for _, m := range next {
			switch state[m] {
			case active:
				i := slices.Index(stack, m)
				cycle := append([]ObjectRef(nil), stack[i:]...)
				c.reportCycle(cycle, reported)
			case unvisited:
				if _, ok := deps[m]; ok || c.env.Object(m) != nil {
					visit(m)
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	keys := make([]ObjectRef, 0, len(deps))
	for k := range deps {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Less(keys[j]) })
	for _, k := range keys {
		if state[k] == unvisited {
			visit(k)
		}
	}
}

func (c *checker) reportCycle(cycle []ObjectRef, reported map[string]bool) {
	// Rotate so the smallest member leads: one report per cycle.
	min := 0
	for i := range cycle {
		if cycle[i].Less(cycle[min]) {
			min = i
		}
	}
	cycle = append(cycle[min:], cycle[:min]...)
	names := make([]string, 0, len(cycle)+1)
	for _, r := range cycle {
		names = append(names, r.Namespace+"/"+r.Name)
	}
	names = append(names, names[0])
	key := strings.Join(names, ",")
	if reported[key] {
		return
	}
	reported[key] = true
	o := c.env.Object(cycle[0])
	c.add(o, "spec.dependsOn forms a cycle: %s; none of them will ever reconcile", strings.Join(names, " -> "))
}
