package validate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	sourcev1beta2 "github.com/fluxcd/source-controller/api/v1beta2"
	"k8s.io/apimachinery/pkg/runtime/schema"
	sigsjson "sigs.k8s.io/json"
)

// fluxKinds lists the Flux API versions the Go modules in go.mod define, and
// a constructor for each kind. Whether a Flux release serves them is the
// business of checkTarget (fluxapis.go), not of decoding.
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
// is an error naming the field path. Objects without a Go type here (other
// groups, versions no longer defined) return (nil, nil): checkTarget judges
// their API version. A field that an older API version had is left to
// checkTarget too, which says what replaced it.
func decodeFlux(apiVersion, kind string, data []byte) (any, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	if !strictGroups[gv.Group] {
		return nil, nil
	}
	newObj, ok := fluxKinds[gv][kind]
	if !ok {
		return nil, nil
	}
	obj := newObj()
	strictErrs, err := sigsjson.UnmarshalStrict(data, obj, sigsjson.DisallowUnknownFields, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return nil, fmt.Errorf("does not decode as %s %s: %w", apiVersion, kind, err)
	}
	var msgs []string
	for _, e := range strictErrs {
		if !isMovedField(gv.Group, kind, e.Error()) {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) > 0 {
		return nil, fmt.Errorf("%s %s: %s (misspelled or not in this API version)", apiVersion, kind, strings.Join(msgs, "; "))
	}
	return obj, nil
}

// isMovedField reports whether a strict decoding error is about a field of
// movedFields, e.g. `unknown field "spec.postRenderers[0].kustomize.patchesJson6902"`.
func isMovedField(group, kind, msg string) bool {
	field, ok := strings.CutPrefix(msg, `unknown field "`)
	if !ok {
		return false
	}
	field = strings.TrimSuffix(field, `"`)
	field = listIndexRe.ReplaceAllString(field, "[]")
	return slices.ContainsFunc(movedFields, func(m movedField) bool {
		return m.Group == group && m.Kind == kind && m.Path == field
	})
}

var listIndexRe = regexp.MustCompile(`\[\d+\]`)
