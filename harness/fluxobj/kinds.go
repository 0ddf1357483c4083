// Package fluxobj is what the harness knows about the objects it waits on,
// in one place under every step: the Flux kinds (taken from the controllers'
// API packages), object references and Kustomization inventories, the one
// Ready/Stalled judgement, the one pod-health judgement, and the API clients
// of one environment.
package fluxobj

import (
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind is one Flux kind the harness watches.
type Kind struct {
	GVK schema.GroupVersionKind
	// Resource is the plural resource name of the kind's CRD.
	Resource string
	// Source kinds produce artifacts that Kustomizations, HelmCharts and
	// HelmReleases consume.
	Source bool
}

// GVR is the kind's group, version and resource.
func (k Kind) GVR() schema.GroupVersionResource { return k.GVK.GroupVersion().WithResource(k.Resource) }

// GroupKind is the kind's group and kind.
func (k Kind) GroupKind() schema.GroupKind { return k.GVK.GroupKind() }

// Kinds lists the Flux kinds the harness watches, sources first and roots
// (Kustomization, HelmRelease) after them, the order a reader follows.
// Adding a kind here reaches the wait, the diagnostics, the sync and the
// e2e checks.
func Kinds() []Kind {
	return []Kind{
		{GVK: sourcev1.GroupVersion.WithKind(sourcev1.GitRepositoryKind), Resource: "gitrepositories", Source: true},
		{GVK: sourcev1.GroupVersion.WithKind(sourcev1.OCIRepositoryKind), Resource: "ocirepositories", Source: true},
		{GVK: sourcev1.GroupVersion.WithKind(sourcev1.HelmRepositoryKind), Resource: "helmrepositories", Source: true},
		{GVK: sourcev1.GroupVersion.WithKind(sourcev1.HelmChartKind), Resource: "helmcharts", Source: true},
		{GVK: sourcev1.GroupVersion.WithKind(sourcev1.BucketKind), Resource: "buckets", Source: true},
		{GVK: kustomizev1.GroupVersion.WithKind(kustomizev1.KustomizationKind), Resource: "kustomizations"},
		{GVK: helmv2.GroupVersion.WithKind(helmv2.HelmReleaseKind), Resource: "helmreleases"},
	}
}

// KindOf returns the Flux kind named kind.
func KindOf(kind string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.GVK.Kind == kind {
			return k, true
		}
	}
	return Kind{}, false
}

// IsFluxGroup reports whether an API group belongs to Flux.
func IsFluxGroup(group string) bool {
	for _, k := range Kinds() {
		if k.GVK.Group == group {
			return true
		}
	}
	return false
}

// The objects every synced cluster has: Flux's namespace, and the
// GitRepository and Kustomization the sync creates there (named like the
// namespace, as flux bootstrap names them).
const (
	Namespace = "flux-system"
	SyncName  = "flux-system"
)

// SyncKustomization is the root Kustomization the sync creates.
func SyncKustomization() ObjectRef {
	return ObjectRef{Group: kustomizev1.GroupVersion.Group, Version: kustomizev1.GroupVersion.Version, Kind: kustomizev1.KustomizationKind, Namespace: Namespace, Name: SyncName}
}

// SyncSource is the GitRepository the sync creates.
func SyncSource() ObjectRef {
	return ObjectRef{Group: sourcev1.GroupVersion.Group, Version: sourcev1.GroupVersion.Version, Kind: sourcev1.GitRepositoryKind, Namespace: Namespace, Name: SyncName}
}
