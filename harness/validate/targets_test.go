package validate

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
)

// served and gone phrase the findings of checkTarget as a fleet author
// reads them; the tests spell every finding out.
func served(version, apiVersion, kind, controller, servedList, moveTo, minor string) string {
	return fmt.Sprintf("Flux %s does not serve %s %s (%s serves %s): move it to %s, as `flux migrate -f . --version=%s` would",
		version, apiVersion, kind, controller, servedList, moveTo, minor)
}

func gone(path, groupKind, at, in, version, servedList, fix string) string {
	return fmt.Sprintf("%s is gone from %s %s (only %s had it; Flux %s serves %s): %s", path, groupKind, at, in, version, servedList, fix)
}

func unsetVar(name, in, version string) string {
	return fmt.Sprintf("${%s} in %s has no value and no default: Flux %s substitutes strictly "+
		"(kustomize-controller v1.9.5, feature gate StrictPostBuildSubstitutions on by default), so the Kustomization fails to build; "+
		"set it in spec.postBuild.substitute (or a substituteFrom ConfigMap/Secret of the fleet) or write ${%s:=default}", name, in, version, name)
}

// oldAPIFindings are the findings on testdata/old-apis under Flux v of
// minor: those every Flux the table knows shares, plus the API versions
// (with their fields) that 2.8 and 2.9 no longer serve.
func oldAPIFindings(v, minor string, controllers map[string]string) []string {
	const (
		ks    = "staging: clusters/staging/kustomizations.yaml: Kustomization/flux-system/"
		hr    = "staging: clusters/staging/releases.yaml: HelmRelease/flux-system/"
		git   = "staging: clusters/staging/sources.yaml: GitRepository/flux-system/extra: "
		ksGK  = "kustomize.toolkit.fluxcd.io Kustomization"
		hrGK  = "helm.toolkit.fluxcd.io HelmRelease"
		gitGK = "source.toolkit.fluxcd.io GitRepository"
	)
	ksServed, hrServed := "v1", "v2"
	if minor == "2.7" {
		ksServed, hrServed = "v1, v1beta2", "v2, v2beta2"
	}
	validation := gone("spec.validation", ksGK, "v1", "v1beta1, v1beta2", v, ksServed, "delete it (unused since v1beta2, says its Go doc)")
	findings := []string{
		ks + "infra: " + validation,
		hr + "app: " + gone("spec.postRenderers[].kustomize.patchesJson6902", hrGK, "v2", "v2beta1, v2beta2", v, hrServed,
			"write each patch as an item of spec.postRenderers[].kustomize.patches (patch + target)"),
		hr + "legacy: " + served(v, "helm.toolkit.fluxcd.io/v2beta1", "HelmRelease", "helm-controller "+controllers["helm-controller"], hrServed, "helm.toolkit.fluxcd.io/v2", minor),
		hr + "legacy: " + gone("spec.chart.spec.valuesFile", hrGK, "v2", "v2beta1, v2beta2", v, hrServed, "list the file in spec.chart.spec.valuesFiles"),
		"staging: clusters/staging/notifications.yaml: Webhook/flux-system/nothing: Flux " + v +
			" serves no kind Webhook in notification.toolkit.fluxcd.io (its kinds there: Alert, Provider, Receiver)",
	}
	if minor == "2.7" {
		// Kustomization and GitRepository v1beta2 are still served, with
		// the fields they had.
		return findings
	}
	findings = append(findings,
		ks+"legacy: "+served(v, "kustomize.toolkit.fluxcd.io/v1beta2", "Kustomization", "kustomize-controller "+controllers["kustomize-controller"], "v1", "kustomize.toolkit.fluxcd.io/v1", minor),
		ks+"legacy: "+gone("spec.patchesStrategicMerge", ksGK, "v1", "v1beta1, v1beta2", v, "v1", "write each patch as an item of spec.patches"),
		ks+"legacy: "+validation,
		git+served(v, "source.toolkit.fluxcd.io/v1beta2", "GitRepository", "source-controller "+controllers["source-controller"], "v1", "source.toolkit.fluxcd.io/v1", minor),
		git+gone("spec.gitImplementation", gitGK, "v1", "v1beta1, v1beta2", v, "v1", "delete it (go-git is the only implementation, says its Go doc)"),
	)
	if minor == "2.9" {
		// notification v1beta2 was deprecated in 2.8 and is gone in 2.9.
		findings = append(findings, "staging: clusters/staging/notifications.yaml: Provider/flux-system/chat: "+
			served(v, "notification.toolkit.fluxcd.io/v1beta2", "Provider", "notification-controller "+controllers["notification-controller"],
				"v1beta3", "notification.toolkit.fluxcd.io/v1beta3", minor))
	}
	return findings
}

func TestTargetFindings(t *testing.T) {
	v27 := map[string]string{"kustomize-controller": "v1.7.2", "helm-controller": "v1.4.3", "source-controller": "v1.7.3"}
	v28 := map[string]string{"kustomize-controller": "v1.8.0", "helm-controller": "v1.5.0", "source-controller": "v1.8.0"}
	v29 := map[string]string{"kustomize-controller": "v1.9.5", "helm-controller": "v1.6.4", "source-controller": "v1.9.5", "notification-controller": "v1.9.4"}
	cases := []struct {
		fleet    string
		versions []string
		want     []string
	}{
		{"old-apis", []string{"v2.7.3"}, oldAPIFindings("v2.7.3", "2.7", v27)},
		{"old-apis", []string{"v2.8.0"}, oldAPIFindings("v2.8.0", "2.8", v28)},
		{"old-apis", []string{"v2.9.5"}, oldAPIFindings("v2.9.5", "2.9", v29)},
		// Lenient substitution in 2.7 and 2.8: the same fleet is clean.
		{"strict-vars", []string{"v2.7.3"}, nil},
		{"strict-vars", []string{"v2.8.0"}, nil},
		{"strict-vars", []string{"v2.9.5"}, []string{
			"staging: apps/settings.yaml: Kustomization/flux-system/apps: " + unsetVar("team_owner", "ConfigMap/flux-system/settings", "v2.9.5"),
			"staging: apps/settings.yaml: Kustomization/flux-system/apps: " + unsetVar("tier", "ConfigMap/flux-system/settings", "v2.9.5"),
		}},
		// Base and target: the findings of both, each naming its Flux.
		{"strict-vars", []string{"v2.8.0", "v2.9.5"}, []string{
			"staging: apps/settings.yaml: Kustomization/flux-system/apps: " + unsetVar("team_owner", "ConfigMap/flux-system/settings", "v2.9.5"),
			"staging: apps/settings.yaml: Kustomization/flux-system/apps: " + unsetVar("tier", "ConfigMap/flux-system/settings", "v2.9.5"),
		}},
		// The offline base and go.mod's target: a field the base's served
		// v1beta2 still has is a finding of the target only.
		{"old-apis", []string{"v2.7.3", "v2.9.5"}, append(oldAPIFindings("v2.7.3", "2.7", v27), oldAPIFindings("v2.9.5", "2.9", v29)...)},
	}
	for _, tc := range cases {
		t.Run(tc.fleet+"@"+strings.Join(tc.versions, ","), func(t *testing.T) {
			res, err := ValidateWith(context.Background(), filepath.Join("testdata", tc.fleet), Options{FluxVersions: tc.versions})
			if err != nil {
				t.Fatalf("ValidateWith: %v", err)
			}
			if !slices.Equal(res.FluxVersions, tc.versions) {
				t.Errorf("checked against %v, want %v", res.FluxVersions, tc.versions)
			}
			var got []string
			for _, f := range res.Findings {
				got = append(got, f.String())
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			slices.Sort(got)
			for _, w := range want {
				if !slices.Contains(got, w) {
					t.Errorf("missing finding:\n%s", w)
				}
			}
			for _, g := range got {
				if !slices.Contains(want, g) {
					t.Errorf("unexpected finding:\n%s", g)
				}
			}
		})
	}
}

// The substitution the offline tier keeps is the lenient one (what the
// base Flux applies), with escapes and opted-out objects left alone.
func TestStrictVarsBuildLikeTheController(t *testing.T) {
	fleet, err := LoadWith(context.Background(), filepath.Join("testdata", "strict-vars"), Options{FluxVersions: []string{"v2.9.5"}})
	if err != nil {
		t.Fatal(err)
	}
	env := fleet.Env("staging")
	data := func(name string) map[string]any {
		o := env.Object(ObjectRef{Kind: "ConfigMap", Namespace: "flux-system", Name: name})
		if o == nil {
			t.Fatalf("ConfigMap %s not built", name)
		}
		d, _ := o.Raw["data"].(map[string]any)
		return d
	}
	settings := data("settings")
	// An unset variable becomes empty, which YAML reads as null.
	for key, want := range map[string]any{
		"greeting": "hello", "region": "eu-west", "owner": nil, "size": "small", "literal": "${kept_literally}", "tier": nil,
	} {
		if settings[key] != want {
			t.Errorf("settings %s = %#v, want %#v", key, settings[key], want)
		}
	}
	if got := data("opted-out-annotation")["script"]; got != "echo ${not_substituted}" {
		t.Errorf("annotated opt-out substituted: %q", got)
	}
	if got := data("opted-out-label")["script"]; got != "echo ${not_substituted_either}" {
		t.Errorf("labeled opt-out substituted: %q", got)
	}
	// Its values live in a Secret the fleet does not hold: left as written.
	if got := data("external-settings")["endpoint"]; got != "${from_the_secret}" {
		t.Errorf("external-settings endpoint = %q, want it left as written", got)
	}
}

// A Flux version without a table, or not a version at all, is refused
// before anything is built: the fleet directory is never read.
func TestUnknownFluxVersionRefused(t *testing.T) {
	for v, want := range map[string]string{
		"v2.6.0": "Flux v2.6.0: the offline tier knows the APIs of Flux 2.9, 2.8, 2.7 only",
		"v3.0.0": "Flux v3.0.0: the offline tier knows the APIs of Flux 2.9, 2.8, 2.7 only",
		"latest": `Flux version "latest" is not a release version like v2.9.5`,
	} {
		_, err := ValidateWith(context.Background(), "testdata/does-not-exist", Options{FluxVersions: []string{v}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Flux %q: error %v, want one saying %q", v, err, want)
		}
	}
}

// The default target is the Flux the harness installs, and the table knows it.
func TestDefaultTargetIsGoModFlux(t *testing.T) {
	want, err := fluxinstall.FluxVersion()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := releaseFor(want); err != nil {
		t.Fatalf("go.mod's Flux %s has no API table: %v", want, err)
	}
	res, err := Validate(context.Background(), filepath.Join("testdata", "strict-vars"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.FluxVersions, []string{want}) {
		t.Errorf("Validate checked against %v, want go.mod's [%s]", res.FluxVersions, want)
	}
}

func TestHasPath(t *testing.T) {
	obj := map[string]any{"spec": map[string]any{
		"chart":         map[string]any{"spec": map[string]any{"valuesFile": "a.yaml"}},
		"postRenderers": []any{map[string]any{"kustomize": map[string]any{}}, map[string]any{"kustomize": map[string]any{"patchesJson6902": []any{}}}},
	}}
	for path, want := range map[string]bool{
		"spec.chart.spec.valuesFile":                           true,
		"spec.chart.spec.valuesFiles":                          false,
		"spec.postRenderers[].kustomize.patchesJson6902":       true,
		"spec.postRenderers[].kustomize.patchesStrategicMerge": false,
		"spec.chart.spec.valuesFile.deeper":                    false,
		"spec.chart[].spec":                                    false,
	} {
		if got := hasPath(obj, strings.Split(path, ".")); got != want {
			t.Errorf("hasPath(%s) = %v, want %v", path, got, want)
		}
	}
}

func TestMovedFieldErrorsAreLeftToTheTargetCheck(t *testing.T) {
	for msg, want := range map[string]bool{
		`unknown field "spec.postRenderers[3].kustomize.patchesJson6902"`: true,
		`unknown field "spec.validation"`:                                 true,
		`unknown field "spec.validations"`:                                false,
		`duplicate field "spec.validation"`:                               false,
	} {
		if got := isMovedField(helmGroup, "HelmRelease", msg) || isMovedField(kustomizeGroup, "Kustomization", msg); got != want {
			t.Errorf("isMovedField(%s) = %v, want %v", msg, got, want)
		}
	}
}
