// Package kitprofile reads the offline kit's profile — the node image, kind
// config, Flux manifests, preloaded images and extra charts that a run
// without a registry uses — from the FLEET_* variables hack/kit/build.sh
// writes into profile.env, in one place for the harness and its tests.
package kitprofile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The profile's variables, as profile.env names them.
const (
	NodeImageVar      = "FLEET_NODE_IMAGE"
	KindConfigVar     = "FLEET_KIND_CONFIG"
	FluxManifestsVar  = "FLEET_FLUX_MANIFESTS"
	FluxComponentsVar = "FLEET_FLUX_COMPONENTS"
	PreloadImagesVar  = "FLEET_PRELOAD_IMAGES"
	ExtraChartsVar    = "FLEET_EXTRA_CHARTS"
)

// Profile is the offline kit profile. The zero value means "no kit": kind
// pulls its default node image and Flux is installed from its release.
type Profile struct {
	NodeImage string
	// KindConfigPath is the kind config file; KindConfig its contents.
	KindConfigPath string
	KindConfig     []byte
	// FluxManifests is the offline manifests directory install.Generate reads.
	FluxManifests string
	// FluxComponents are the controllers the kit built.
	FluxComponents []string
	// PreloadImages are loaded into every node (or already in its store).
	PreloadImages []string
	// ExtraCharts are chart directories outside the repository that the
	// chart server serves too (podinfo's, from its Go module).
	ExtraCharts []string
}

// FromEnv reads the profile from the environment. A variable that names a
// file or directory that does not exist is an error naming it.
func FromEnv() (Profile, error) {
	p := Profile{
		NodeImage:      strings.TrimSpace(os.Getenv(NodeImageVar)),
		KindConfigPath: strings.TrimSpace(os.Getenv(KindConfigVar)),
		FluxManifests:  strings.TrimSpace(os.Getenv(FluxManifestsVar)),
		FluxComponents: List(os.Getenv(FluxComponentsVar)),
		PreloadImages:  List(os.Getenv(PreloadImagesVar)),
		ExtraCharts:    List(os.Getenv(ExtraChartsVar)),
	}
	if p.KindConfigPath != "" {
		raw, err := os.ReadFile(p.KindConfigPath)
		if err != nil {
			return p, fmt.Errorf("%s: %w (run make offline-images)", KindConfigVar, err)
		}
		p.KindConfig = raw
	}
	if p.FluxManifests != "" {
		if _, err := os.Stat(filepath.Join(p.FluxManifests, "source-controller.yaml")); err != nil {
			return p, fmt.Errorf("%s=%s is not an offline manifests directory (run make offline-images): %w", FluxManifestsVar, p.FluxManifests, err)
		}
	}
	for _, dir := range p.ExtraCharts {
		if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
			return p, fmt.Errorf("%s: %s is not a chart directory (run make offline-images): %w", ExtraChartsVar, dir, err)
		}
	}
	return p, nil
}

// Offline reports whether the profile comes from the kit.
func (p Profile) Offline() bool { return p.FluxManifests != "" }

// Missing lists which of the kit's essential variables are unset.
func (p Profile) Missing() []string {
	var out []string
	if p.NodeImage == "" {
		out = append(out, NodeImageVar)
	}
	if p.KindConfigPath == "" {
		out = append(out, KindConfigVar)
	}
	if p.FluxManifests == "" {
		out = append(out, FluxManifestsVar)
	}
	return out
}

// FluxImages returns the Flux controller images of the preload list.
func (p Profile) FluxImages() []string {
	var images []string
	for _, img := range p.PreloadImages {
		if strings.HasPrefix(img, "ghcr.io/fluxcd/") {
			images = append(images, img)
		}
	}
	return images
}

// List splits a comma- or space-separated list, dropping empty items.
func List(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
