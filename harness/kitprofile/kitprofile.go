// Package kitprofile is the offline kit's profile — the node image, kind
// config, Flux manifests, preloaded images and extra charts that a run
// without a registry uses, the in-cluster fleet server image, and the base
// Flux when the kit built one — as one type that the kit (go run ./hack/kit)
// writes to profile.env and the harness reads back with Load, from the one
// path E2E_KIT names.
package kitprofile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The profile's variables, as profile.env names them.
const (
	NodeImageVar = "FLEET_NODE_IMAGE"
	// NodeImageBareVar is the node image without the baked-in images (what
	// hack/bench compares the preloaded node image against).
	NodeImageBareVar  = "FLEET_NODE_IMAGE_BARE"
	KindConfigVar     = "FLEET_KIND_CONFIG"
	FluxManifestsVar  = "FLEET_FLUX_MANIFESTS"
	FluxComponentsVar = "FLEET_FLUX_COMPONENTS"
	PreloadImagesVar  = "FLEET_PRELOAD_IMAGES"
	ExtraChartsVar    = "FLEET_EXTRA_CHARTS"
	// ServerImageVar is the in-cluster fleet server image (hack/fleetserver),
	// for clusters that cannot reach this machine's git and chart servers.
	ServerImageVar = "FLEET_SERVER_IMAGE"
	// The base Flux: an older flux2 release's controllers and manifests,
	// present only when the kit was asked for one (go run ./hack/kit
	// -flux-base VERSION), so that a run can install it and upgrade from it.
	FluxBaseVersionVar   = "FLEET_FLUX_BASE_VERSION"
	FluxBaseManifestsVar = "FLEET_FLUX_BASE_MANIFESTS"
	FluxBaseImagesVar    = "FLEET_FLUX_BASE_IMAGES"
)

// KitDirVar overrides the kit directory (see DefaultDir): where hack/kit
// builds and caches, not something the harness reads.
const KitDirVar = "FLEET_KIT_DIR"

// PathVar names the profile file the harness reads (what
// go run ./hack/kit -print prints): one path instead of the variables the
// file holds.
const PathVar = "E2E_KIT"

// ProfileFile is the profile's file name in the kit directory.
const ProfileFile = "profile.env"

// Profile is the offline kit profile. The zero value means "no kit": kind
// pulls its default node image and Flux is installed from its release.
type Profile struct {
	NodeImage string
	// NodeImageBare is NodeImage without the images baked into its
	// containerd store.
	NodeImageBare string
	// KindConfigPath is the kind config file; KindConfig its contents
	// (read, never written, by this package).
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
	// FleetServerImage is the in-cluster fleet server image (read it with
	// ServerImage); not baked into the node image, since clusters the
	// harness did not create lack it anyway.
	FleetServerImage string
	// BaseFlux is the base Flux the kit built (read it with FluxBase), the
	// zero FluxSet when none.
	BaseFlux FluxSet
}

// FluxSet is one Flux release as the kit built it: the flux2 version, the
// offline manifests directory install.Generate reads for it, and its
// controller images, tagged as those manifests name them.
type FluxSet struct {
	Version, Manifests string
	Images             []string
}

// variable is one profile variable and the Profile field it fills.
type variable struct {
	name   string
	scalar func(*Profile) *string
	list   func(*Profile) *[]string
}

// variables lists the profile's variables in the order profile.env holds them.
func variables() []variable {
	return []variable{
		{name: NodeImageVar, scalar: func(p *Profile) *string { return &p.NodeImage }},
		{name: NodeImageBareVar, scalar: func(p *Profile) *string { return &p.NodeImageBare }},
		{name: KindConfigVar, scalar: func(p *Profile) *string { return &p.KindConfigPath }},
		{name: FluxManifestsVar, scalar: func(p *Profile) *string { return &p.FluxManifests }},
		{name: FluxComponentsVar, list: func(p *Profile) *[]string { return &p.FluxComponents }},
		{name: PreloadImagesVar, list: func(p *Profile) *[]string { return &p.PreloadImages }},
		{name: ExtraChartsVar, list: func(p *Profile) *[]string { return &p.ExtraCharts }},
		{name: ServerImageVar, scalar: func(p *Profile) *string { return &p.FleetServerImage }},
		{name: FluxBaseVersionVar, scalar: func(p *Profile) *string { return &p.BaseFlux.Version }},
		{name: FluxBaseManifestsVar, scalar: func(p *Profile) *string { return &p.BaseFlux.Manifests }},
		{name: FluxBaseImagesVar, list: func(p *Profile) *[]string { return &p.BaseFlux.Images }},
	}
}

// FromEnv reads the profile file $E2E_KIT names (relative to the working
// directory); unset, the profile's variables themselves, as a shell or a CI
// env file that loaded profile.env has them, so that test helpers not yet
// handed E2E_KIT keep working. A variable that names a file or directory
// that does not exist is an error naming it.
func FromEnv() (Profile, error) {
	if path := strings.TrimSpace(os.Getenv(PathVar)); path != "" {
		return Load(path)
	}
	p, _, err := parse(os.Getenv)
	return p, err
}

// Load reads a profile.env file the way a shell sourcing it would see it,
// with the same checks as FromEnv. Every error names the file, and the line
// when one line is at fault.
func Load(path string) (Profile, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Profile{}, fmt.Errorf("kit profile %s does not exist (build the kit: go run ./hack/kit)", path)
	}
	if err != nil {
		return Profile{}, fmt.Errorf("reading the kit profile: %w", err)
	}
	known := map[string]bool{}
	for _, v := range variables() {
		known[v.name] = true
	}
	vals := map[string]string{}
	lines := map[string]int{}
	err = scanAssignments(path, raw, func(line int, name, value string) error {
		if !known[name] {
			// Quoted: a stray blank, a byte order mark or binary would not show.
			return fmt.Errorf("unknown variable %q", name)
		}
		if err := checkWord(value); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		vals[name], lines[name] = value, line
		return nil
	})
	if err != nil {
		return Profile{}, err
	}
	p, bad, err := parse(func(name string) string { return vals[name] })
	if err != nil {
		return p, fmt.Errorf("%s:%d: %w", path, lines[bad], err)
	}
	return p, nil
}

// parse fills a profile from the variables get returns: the one reading
// shared by FromEnv and Load. An error comes with the variable at fault, so
// that Load can name its line.
func parse(get func(string) string) (p Profile, bad string, err error) {
	for _, v := range variables() {
		if v.scalar != nil {
			*v.scalar(&p) = strings.TrimSpace(get(v.name))
		} else {
			*v.list(&p) = List(get(v.name))
		}
	}
	if p.KindConfigPath != "" {
		raw, err := os.ReadFile(p.KindConfigPath)
		if err != nil {
			return p, KindConfigVar, fmt.Errorf("%s: %w (run make offline-images)", KindConfigVar, err)
		}
		p.KindConfig = raw
	}
	if p.FluxManifests != "" {
		if _, err := os.Stat(filepath.Join(p.FluxManifests, "source-controller.yaml")); err != nil {
			return p, FluxManifestsVar, fmt.Errorf("%s=%s is not an offline manifests directory (run make offline-images): %w", FluxManifestsVar, p.FluxManifests, err)
		}
	}
	for _, dir := range p.ExtraCharts {
		if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
			return p, ExtraChartsVar, fmt.Errorf("%s: %s is not a chart directory (run make offline-images): %w", ExtraChartsVar, dir, err)
		}
	}
	if bad, err := p.BaseFlux.check(); err != nil {
		return p, bad, err
	}
	return p, "", nil
}

// check accepts no base Flux, or a whole one: a version, a manifests
// directory that exists and images. A partial set would install a Flux that
// the kit did not build. bad is a variable that is set, so that Load can
// name a line; the error names the one missing.
func (s FluxSet) check() (bad string, err error) {
	vars := []struct {
		name string
		set  bool
	}{{FluxBaseVersionVar, s.Version != ""}, {FluxBaseManifestsVar, s.Manifests != ""}, {FluxBaseImagesVar, len(s.Images) > 0}}
	for _, v := range vars {
		if v.set && bad == "" {
			bad = v.name
		}
	}
	if bad == "" {
		return "", nil
	}
	for _, v := range vars {
		if !v.set {
			return bad, fmt.Errorf("%s is unset while the base Flux's other variables are set: a base Flux needs %s, %s and %s (run go run ./hack/kit -flux-base VERSION)",
				v.name, FluxBaseVersionVar, FluxBaseManifestsVar, FluxBaseImagesVar)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Manifests, "source-controller.yaml")); err != nil {
		return FluxBaseManifestsVar, fmt.Errorf("%s=%s is not an offline manifests directory (run go run ./hack/kit -flux-base %s): %w", FluxBaseManifestsVar, s.Manifests, s.Version, err)
	}
	return "", nil
}

// Write writes the profile to path as profile.env: a generated-file header
// and one NAME=value line per variable, values unquoted so that both a
// shell (set -a; . profile.env) and a CI env file ($GITHUB_ENV) read them
// as they are. It writes a temporary file next to path and renames it, so a
// reader never sees half a profile. A value a shell would split or expand
// is an error naming its variable.
func (p Profile) Write(path string) error {
	if missing := p.Missing(); len(missing) > 0 {
		return fmt.Errorf("writing the kit profile %s: %s unset", path, strings.Join(missing, ", "))
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Offline kit profile, generated by go run ./hack/kit on %s: do not edit.\n", time.Now().UTC().Format(time.RFC3339))
	buf.WriteString("# Hand it to the harness as one path: E2E_KIT=<this file> go test ./e2e\n")
	for _, v := range variables() {
		var value string
		if v.scalar != nil {
			value = *v.scalar(&p)
			if err := checkWord(value); err != nil {
				return fmt.Errorf("writing the kit profile %s: %s: %w", path, v.name, err)
			}
		} else {
			items := *v.list(&p)
			for _, item := range items {
				if err := checkWord(item); err != nil || strings.Contains(item, ",") || item == "" {
					return fmt.Errorf("writing the kit profile %s: %s: item %q cannot be listed in a comma-separated word", path, v.name, item)
				}
			}
			value = strings.Join(items, ",")
		}
		fmt.Fprintf(&buf, "%s=%s\n", v.name, value)
	}
	return WriteFileAtomic(path, buf.Bytes())
}

// WriteFileAtomic writes data to a temporary file in path's directory and
// renames it to path, so that a concurrent reader (another run sharing the
// kit directory) never sees half a file.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// checkWord accepts a value a shell reads unquoted as one word, unchanged:
// image references, absolute paths (module cache paths included) and lists
// of them.
func checkWord(s string) error {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("_-./:,@+=%!", r):
		case r == '~' && i > 0:
		default:
			return fmt.Errorf("value %q holds %q, which a shell would not read unquoted", s, r)
		}
	}
	return nil
}

// DefaultDir is the kit directory: $FLEET_KIT_DIR, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/flux-fleet/kit, made absolute.
func DefaultDir() (string, error) {
	dir := os.Getenv(KitDirVar)
	if dir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("locating the kit directory (%s and XDG_CACHE_HOME unset): %w", KitDirVar, err)
			}
			cache = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(cache, "flux-fleet", "kit")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("locating the kit directory %s: %w", dir, err)
	}
	return abs, nil
}

// ProfilePath is profile.env in DefaultDir.
func ProfilePath() (string, error) {
	dir, err := DefaultDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, ProfileFile), nil
}

// Offline reports whether the profile comes from the kit.
func (p Profile) Offline() bool { return p.FluxManifests != "" }

// ServerImage is the in-cluster fleet server image the kit built, "" when
// the kit has none (a profile written before the kit built one).
func (p Profile) ServerImage() string { return p.FleetServerImage }

// FluxBase is the base Flux the kit built, if any.
func (p Profile) FluxBase() (FluxSet, bool) {
	return p.BaseFlux, p.BaseFlux.Version != ""
}

// Missing lists which of the kit's essential variables are unset. The
// server image and the base Flux are not essential: only runs with
// in-cluster servers or a base Flux need them, and they say so themselves.
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

// CheckWhole reports a profile the harness cannot run offline from (see
// Missing): an error naming path and what is missing, and how to rebuild.
// Load does not check it, since hack/kit reads an old profile to rebuild it.
func (p Profile) CheckWhole(path string) error {
	missing := p.Missing()
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("kit profile %s has no %s: it is empty, truncated or not the kit's (rebuild the kit: go run ./hack/kit)", path, strings.Join(missing, ", "))
}

// Unset lists which of the named profile variables have no value in p, in
// the order given; a name that is no profile variable is listed too, since
// nothing can set it.
func (p Profile) Unset(names ...string) []string {
	var out []string
	for _, name := range names {
		if !p.has(name) {
			out = append(out, name)
		}
	}
	return out
}

func (p Profile) has(name string) bool {
	for _, v := range variables() {
		switch {
		case v.name != name:
		case v.scalar != nil:
			return *v.scalar(&p) != ""
		default:
			return len(*v.list(&p)) > 0
		}
	}
	return false
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
