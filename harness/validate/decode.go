package validate

import (
	"fmt"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	sourcev1beta2 "github.com/fluxcd/source-controller/api/v1beta2"
	"k8s.io/apimachinery/pkg/runtime/schema"
	sigsjson "sigs.k8s.io/json"
)

// fluxKinds lists the Flux API versions the installed controllers serve and
// a constructor for each kind; anything else in a Flux group is an error
// (e.g. helm.toolkit.fluxcd.io/v2beta1, removed in Flux 2.3+).
var fluxKinds = map[schema.GroupVersion]map[string]func() any{
	sourcev1.GroupVersion: {
		sourcev1.GitRepositoryKind:    func() any { return &sourcev1.GitRepository{} },
		sourcev1.HelmRepositoryKind:   func() any { return &sourcev1.HelmRepository{} },
		sourcev1.HelmChartKind:        func() any { return &sourcev1.HelmChart{} },
		sourcev1.BucketKind:           func() any { return &sourcev1.Bucket{} },
		sourcev1.OCIRepositoryKind:    func() any { return &sourcev1.OCIRepository{} },
		sourcev1.ExternalArtifactKind: func() any { return &sourcev1.ExternalArtifact{} },
	},
	sourcev1beta2.GroupVersion: {
		sourcev1beta2.GitRepositoryKind:  func() any { return &sourcev1beta2.GitRepository{} },
		sourcev1beta2.HelmRepositoryKind: func() any { return &sourcev1beta2.HelmRepository{} },
		sourcev1beta2.HelmChartKind:      func() any { return &sourcev1beta2.HelmChart{} },
		sourcev1beta2.BucketKind:         func() any { return &sourcev1beta2.Bucket{} },
		sourcev1beta2.OCIRepositoryKind:  func() any { return &sourcev1beta2.OCIRepository{} },
	},
	kustomizev1.GroupVersion: {
		kustomizev1.KustomizationKind: func() any { return &kustomizev1.Kustomization{} },
	},
	helmv2.GroupVersion: {
		helmv2.HelmReleaseKind: func() any { return &helmv2.HelmRelease{} },
	},
}

// strictGroups are the Flux API groups whose objects must decode into the
// typed APIs above. Other Flux groups (notification, image automation) are
// not checked field by field.
var strictGroups = map[string]bool{
	sourcev1.GroupVersion.Group:    true,
	kustomizev1.GroupVersion.Group: true,
	helmv2.GroupVersion.Group:      true,
}

// decodeFlux decodes a Flux object strictly: an unknown or duplicated field
// is an error naming the field path. Non-Flux objects return (nil, nil).
func decodeFlux(apiVersion, kind string, data []byte) (any, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	if !strictGroups[gv.Group] {
		return nil, nil
	}
	kinds, ok := fluxKinds[gv]
	if !ok {
		return nil, fmt.Errorf("apiVersion %q is not served by this Flux version (use %s)", apiVersion, servedVersions(gv.Group))
	}
	newObj, ok := kinds[kind]
	if !ok {
		return nil, fmt.Errorf("kind %q does not exist in %s", kind, apiVersion)
	}
	obj := newObj()
	strictErrs, err := sigsjson.UnmarshalStrict(data, obj, sigsjson.DisallowUnknownFields, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return nil, fmt.Errorf("does not decode as %s %s: %w", apiVersion, kind, err)
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("%s %s: %s (misspelled or not in this API version)", apiVersion, kind, strings.Join(msgs, "; "))
	}
	return obj, nil
}

func servedVersions(group string) string {
	var vs []string
	for gv := range fluxKinds {
		if gv.Group == group {
			vs = append(vs, gv.String())
		}
	}
	if len(vs) == 0 {
		return "a served version"
	}
	if len(vs) > 1 && vs[0] > vs[1] {
		vs[0], vs[1] = vs[1], vs[0]
	}
	return strings.Join(vs, " or ")
}
