package validate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// API groups of the Flux controllers whose served versions the table below
// knows; objects of other groups are not judged by Flux version.
const (
	sourceGroup       = "source.toolkit.fluxcd.io"
	kustomizeGroup    = "kustomize.toolkit.fluxcd.io"
	helmGroup         = "helm.toolkit.fluxcd.io"
	notificationGroup = "notification.toolkit.fluxcd.io"
	imageGroup        = "image.toolkit.fluxcd.io"
)

// servedKind is one Flux kind as one Flux minor serves it.
type servedKind struct {
	Group, Kind string
	// Controller is the Flux controller whose CRD defines the kind.
	Controller string
	// Served lists the API versions the controller's CRD serves.
	Served []string
	// Latest is the version `flux migrate` moves the kind to.
	Latest string
}

// fluxRelease is what one Flux minor serves. Flux removes API versions in
// minors (flux migrate keys its table by minor too), so one table holds for
// every patch release of the minor.
type fluxRelease struct {
	// Minor is "2.9" for every v2.9.x.
	Minor string
	// Flux2 is the flux2 release the entries were read from.
	Flux2 string
	// Controllers maps each controller to the version Flux2 bundles (its
	// manifests/bases/<controller>/kustomization.yaml).
	Controllers map[string]string
	// APIModuleOnly names the controllers whose own module the Go module
	// proxy refuses at the bundled version: their served versions were read
	// from their api module, and the entry's comments say where else from.
	APIModuleOnly []string
	// StrictSubstitution is the default of kustomize-controller's feature
	// gate StrictPostBuildSubstitutions at the bundled version.
	StrictSubstitution bool
	Kinds              []servedKind
}

// fluxReleases is derived from the sources named on each entry, all in the
// Go module cache; TestFluxReleasesMatchModuleSources re-derives it. 2.7 is
// the offline kit's base Flux, 2.9 go.mod's.
// Served versions: the controllers' config/crd/bases/<group>_<plural>.yaml
// where the module cache holds the controller, else the controller's api
// module at the version flux2's go.mod requires, whose root types marked
// +kubebuilder:skipversion are left out of the CRD. Latest: flux2 v2.9.5
// cmd/flux/migrate.go latestAPIVersions (flux27LatestAPIVersions for 2.7-2.9).
var fluxReleases = []fluxRelease{
	{
		Minor: "2.9", Flux2: "v2.9.5",
		Controllers: map[string]string{
			"source-controller": "v1.9.5", "kustomize-controller": "v1.9.5", "helm-controller": "v1.6.4",
			"notification-controller": "v1.9.4", "image-reflector-controller": "v1.2.5", "image-automation-controller": "v1.2.5",
		},
		APIModuleOnly: []string{"notification-controller", "image-reflector-controller", "image-automation-controller"},
		// kustomize-controller v1.9.5 internal/features/features.go:
		// StrictPostBuildSubstitutions: true ("opt-out from v1.9").
		StrictSubstitution: true,
		Kinds: []servedKind{
			// source-controller v1.9.5 config/crd/bases/source.toolkit.fluxcd.io_*.yaml
			{sourceGroup, "Bucket", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "ExternalArtifact", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "GitRepository", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "HelmChart", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "HelmRepository", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "OCIRepository", "source-controller", []string{"v1"}, "v1"},
			// kustomize-controller v1.9.5 config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml
			{kustomizeGroup, "Kustomization", "kustomize-controller", []string{"v1"}, "v1"},
			// helm-controller v1.6.4 config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml
			{helmGroup, "HelmRelease", "helm-controller", []string{"v2"}, "v2"},
			// notification-controller/api v1.9.4: v1beta1 and v1beta2 *_types.go +kubebuilder:skipversion
			{notificationGroup, "Alert", "notification-controller", []string{"v1beta3"}, "v1beta3"},
			{notificationGroup, "Provider", "notification-controller", []string{"v1beta3"}, "v1beta3"},
			{notificationGroup, "Receiver", "notification-controller", []string{"v1"}, "v1"},
			// image-reflector-controller/api v1.2.5: v1beta1 and v1beta2 +kubebuilder:skipversion
			{imageGroup, "ImagePolicy", "image-reflector-controller", []string{"v1"}, "v1"},
			{imageGroup, "ImageRepository", "image-reflector-controller", []string{"v1"}, "v1"},
			// image-automation-controller/api v1.2.5: v1beta1 and v1beta2 +kubebuilder:skipversion
			{imageGroup, "ImageUpdateAutomation", "image-automation-controller", []string{"v1"}, "v1"},
		},
	},
	{
		Minor: "2.8", Flux2: "v2.8.0",
		Controllers: map[string]string{
			"source-controller": "v1.8.0", "kustomize-controller": "v1.8.0", "helm-controller": "v1.5.0",
			"notification-controller": "v1.8.0", "image-reflector-controller": "v1.1.0", "image-automation-controller": "v1.1.0",
		},
		APIModuleOnly: []string{"kustomize-controller", "helm-controller",
			"notification-controller", "image-reflector-controller", "image-automation-controller"},
		// kustomize-controller v1.8.0 is refused, so the gate is read from
		// v1.9.5 internal/features/features.go: "opt-out from v1.9", so v1.8
		// substitutes leniently.
		StrictSubstitution: false,
		Kinds: []servedKind{
			// source-controller v1.8.0 config/crd/bases/source.toolkit.fluxcd.io_*.yaml
			{sourceGroup, "Bucket", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "ExternalArtifact", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "GitRepository", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "HelmChart", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "HelmRepository", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "OCIRepository", "source-controller", []string{"v1"}, "v1"},
			// kustomize-controller/api v1.8.0: v1beta1 and v1beta2 +kubebuilder:skipversion
			{kustomizeGroup, "Kustomization", "kustomize-controller", []string{"v1"}, "v1"},
			// helm-controller/api v1.5.0: v2beta1 and v2beta2 +kubebuilder:skipversion
			{helmGroup, "HelmRelease", "helm-controller", []string{"v2"}, "v2"},
			// notification-controller/api v1.8.0: v1beta1 +kubebuilder:skipversion, v1beta2 deprecated but served
			{notificationGroup, "Alert", "notification-controller", []string{"v1beta2", "v1beta3"}, "v1beta3"},
			{notificationGroup, "Provider", "notification-controller", []string{"v1beta2", "v1beta3"}, "v1beta3"},
			{notificationGroup, "Receiver", "notification-controller", []string{"v1", "v1beta2"}, "v1"},
			// image-reflector-controller/api v1.1.0: v1beta1 +kubebuilder:skipversion, v1beta2 deprecated but served
			{imageGroup, "ImagePolicy", "image-reflector-controller", []string{"v1", "v1beta2"}, "v1"},
			{imageGroup, "ImageRepository", "image-reflector-controller", []string{"v1", "v1beta2"}, "v1"},
			// image-automation-controller/api v1.1.0: v1beta1 +kubebuilder:skipversion, v1beta2 deprecated but served
			{imageGroup, "ImageUpdateAutomation", "image-automation-controller", []string{"v1", "v1beta2"}, "v1"},
		},
	},
	{
		Minor: "2.7", Flux2: "v2.7.3",
		Controllers: map[string]string{
			"source-controller": "v1.7.3", "kustomize-controller": "v1.7.2", "helm-controller": "v1.4.3",
			"notification-controller": "v1.7.4", "image-reflector-controller": "v1.0.3", "image-automation-controller": "v1.0.3",
		},
		APIModuleOnly: []string{"notification-controller", "image-reflector-controller", "image-automation-controller"},
		// kustomize-controller v1.7.2 internal/features/features.go:
		// StrictPostBuildSubstitutions: false ("opt-in from v1.3").
		StrictSubstitution: false,
		Kinds: []servedKind{
			// source-controller v1.7.3 config/crd/bases/source.toolkit.fluxcd.io_*.yaml: v1beta2 deprecated but served
			{sourceGroup, "Bucket", "source-controller", []string{"v1", "v1beta2"}, "v1"},
			{sourceGroup, "ExternalArtifact", "source-controller", []string{"v1"}, "v1"},
			{sourceGroup, "GitRepository", "source-controller", []string{"v1", "v1beta2"}, "v1"},
			{sourceGroup, "HelmChart", "source-controller", []string{"v1", "v1beta2"}, "v1"},
			{sourceGroup, "HelmRepository", "source-controller", []string{"v1", "v1beta2"}, "v1"},
			{sourceGroup, "OCIRepository", "source-controller", []string{"v1", "v1beta2"}, "v1"},
			// kustomize-controller v1.7.2 config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml: v1beta2 deprecated but served
			{kustomizeGroup, "Kustomization", "kustomize-controller", []string{"v1", "v1beta2"}, "v1"},
			// helm-controller v1.4.3 config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml: v2beta2 deprecated but served
			{helmGroup, "HelmRelease", "helm-controller", []string{"v2", "v2beta2"}, "v2"},
			// notification-controller/api v1.7.4: v1beta1 +kubebuilder:skipversion, v1beta2 deprecated but served
			{notificationGroup, "Alert", "notification-controller", []string{"v1beta2", "v1beta3"}, "v1beta3"},
			{notificationGroup, "Provider", "notification-controller", []string{"v1beta2", "v1beta3"}, "v1beta3"},
			{notificationGroup, "Receiver", "notification-controller", []string{"v1", "v1beta2"}, "v1"},
			// image-reflector-controller/api v1.0.3: v1beta1 +kubebuilder:skipversion, v1beta2 deprecated but served
			{imageGroup, "ImagePolicy", "image-reflector-controller", []string{"v1", "v1beta2"}, "v1"},
			{imageGroup, "ImageRepository", "image-reflector-controller", []string{"v1", "v1beta2"}, "v1"},
			// image-automation-controller/api v1.0.3: v1beta1 +kubebuilder:skipversion, v1beta2 deprecated but served
			{imageGroup, "ImageUpdateAutomation", "image-automation-controller", []string{"v1", "v1beta2"}, "v1"},
		},
	},
}

// movedField is a field that older API versions of a kind had and later
// ones do not: an object at (or moved to) a version without it has the API
// server drop or refuse it.
type movedField struct {
	Group, Kind string
	// Path is the field path; "[]" steps into every item of a list.
	Path string
	// In lists the API versions whose schema had the field.
	In []string
	// Fix says what to write instead.
	Fix string
}

// movedFields lists the fields later API versions dropped. Each was read
// from the old version's Go type in the controller's api module (go.mod's
// version); a served version's CRD schema has it exactly when In names the
// version, which TestMovedFieldsMatchSchemas checks for every entry above.
var movedFields = []movedField{
	{helmGroup, "HelmRelease", "spec.chart.spec.valuesFile", []string{"v2beta1", "v2beta2"},
		"list the file in spec.chart.spec.valuesFiles"},
	{helmGroup, "HelmRelease", "spec.postRenderers[].kustomize.patchesStrategicMerge", []string{"v2beta1", "v2beta2"},
		"write each patch as an item of spec.postRenderers[].kustomize.patches"},
	{helmGroup, "HelmRelease", "spec.postRenderers[].kustomize.patchesJson6902", []string{"v2beta1", "v2beta2"},
		"write each patch as an item of spec.postRenderers[].kustomize.patches (patch + target)"},
	{kustomizeGroup, "Kustomization", "spec.validation", []string{"v1beta1", "v1beta2"},
		"delete it (unused since v1beta2, says its Go doc)"},
	{kustomizeGroup, "Kustomization", "spec.patchesStrategicMerge", []string{"v1beta1", "v1beta2"},
		"write each patch as an item of spec.patches"},
	{kustomizeGroup, "Kustomization", "spec.patchesJson6902", []string{"v1beta1", "v1beta2"},
		"write each patch as an item of spec.patches (patch + target)"},
	{sourceGroup, "GitRepository", "spec.gitImplementation", []string{"v1beta1", "v1beta2"},
		"delete it (go-git is the only implementation, says its Go doc)"},
	{sourceGroup, "GitRepository", "spec.accessFrom", []string{"v1beta1", "v1beta2"},
		"delete it (never implemented, says its Go doc)"},
	{sourceGroup, "HelmChart", "spec.accessFrom", []string{"v1beta1", "v1beta2"},
		"delete it (never implemented, says its Go doc)"},
	{sourceGroup, "Bucket", "spec.accessFrom", []string{"v1beta1", "v1beta2"},
		"delete it (never implemented, says its Go doc)"},
	{sourceGroup, "HelmChart", "spec.valuesFile", []string{"v1beta1", "v1beta2"},
		"list the file in spec.valuesFiles"},
}

var fluxVersionRe = regexp.MustCompile(`^v?(\d+)\.(\d+)(\.\d+)?(-[0-9A-Za-z.-]+)?$`)

// releaseFor returns the table of the minor of version ("v2.9.5", "2.8").
func releaseFor(version string) (*fluxRelease, error) {
	m := fluxVersionRe.FindStringSubmatch(version)
	if m == nil {
		return nil, fmt.Errorf("Flux version %q is not a release version like v2.9.5", version)
	}
	minor := m[1] + "." + m[2]
	known := make([]string, 0, len(fluxReleases))
	for i := range fluxReleases {
		if fluxReleases[i].Minor == minor {
			return &fluxReleases[i], nil
		}
		known = append(known, fluxReleases[i].Minor)
	}
	return nil, fmt.Errorf("Flux %s: the offline tier knows the APIs of Flux %s only (harness/validate/fluxapis.go lists them)",
		version, strings.Join(known, ", "))
}

func (r *fluxRelease) kind(group, kind string) *servedKind {
	for i := range r.Kinds {
		if r.Kinds[i].Group == group && r.Kinds[i].Kind == kind {
			return &r.Kinds[i]
		}
	}
	return nil
}

func (r *fluxRelease) knowsGroup(group string) bool {
	return slices.ContainsFunc(r.Kinds, func(k servedKind) bool { return k.Group == group })
}

// splitAPIVersion splits "group/version"; the core group has no slash.
func splitAPIVersion(apiVersion string) (group, version string) {
	if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
		return apiVersion[:i], apiVersion[i+1:]
	}
	return "", apiVersion
}
