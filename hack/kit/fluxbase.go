package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// baseFlux is the base Flux of this run: an older flux2 release whose
// controllers and manifests the kit builds next to the current ones, for
// tests that install it and upgrade from it.
type baseFlux struct {
	version string // flux2 version asked for (-flux-base) or kept
	// keep is set when the base comes from the previous profile: a run
	// without -flux-base keeps it when it is still current, never builds it.
	keep    bool
	release *fluxRelease // nil when there is no base (or it was dropped)
	napi    string       // notification-controller/api version the release requires
}

// fluxVersionPattern is a flux2 release version: the module path
// github.com/fluxcd/flux2/v2 holds v2 releases only.
var fluxVersionPattern = regexp.MustCompile(`^v2\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// checkFluxVersion accepts "" (no base Flux) or a flux2 release version.
func checkFluxVersion(v string) error {
	if v == "" || fluxVersionPattern.MatchString(v) {
		return nil
	}
	return fmt.Errorf("%q is not a flux2 release version such as v2.8.0", v)
}

// fluxBaseStages builds the base Flux: its controller images, hashed as the
// artifacts flux-controller/<controller> (one image per version, whichever
// release bundles it), and its manifests directory.
func fluxBaseStages() []stage {
	return []stage{
		{name: "flux-base-controllers", lane: workloadsLane, run: (*builder).fluxBaseControllers},
		{name: "flux-base-manifests", lane: workloadsLane, run: (*builder).fluxBaseManifests, artifacts: []artifact{
			{name: "flux-base-manifests", recipes: []string{"build_flux_manifests"}, files: []string{"hack/kit/fluxmanifests"},
				inputs: []string{flux2Module, notificationModule, "controllers"}},
		}},
	}
}

// resolveBase reads the base release asked for and, unless only hashing,
// downloads every module its build needs, so that a version the module
// proxy does not serve fails at once, naming each module, before anything
// is built.
func (b *builder) resolveBase(ctx context.Context) error {
	rel, napi, err := b.readBaseRelease(ctx, b.base.version)
	if err != nil {
		return fmt.Errorf("base Flux %s: %w", b.base.version, err)
	}
	if !b.hashOnly {
		var errs []error
		for _, c := range fluxControllers() {
			if _, err := moduleDir(ctx, b.repo, b.env, "github.com/fluxcd/"+c, rel.controllers[c]); err != nil {
				errs = append(errs, err)
			}
		}
		if _, err := moduleDir(ctx, b.repo, b.env, notificationModule, napi); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("base Flux %s: the kit cannot build it:\n%w", b.base.version, err)
		}
	}
	b.base.release, b.base.napi = rel, napi
	return nil
}

// readBaseRelease reads a flux2 release and the notification-controller API
// version it requires (its CRDs are generated from that module).
func (b *builder) readBaseRelease(ctx context.Context, version string) (*fluxRelease, string, error) {
	rel, err := b.readRelease(ctx, version)
	if err != nil {
		return nil, "", err
	}
	napi, err := requiredVersion(ctx, b.repo, b.env, filepath.Join(rel.dir, "go.mod"), notificationModule)
	if err != nil {
		return nil, "", err
	}
	return rel, napi, nil
}

// keepBase takes the base Flux the current profile names, if any, to be
// kept when it is still current. Nothing here fails the build: a profile
// that cannot be read or a release that cannot be resolved only means no
// base Flux, which the log says.
func (b *builder) keepBase(ctx context.Context) {
	path := filepath.Join(b.kitDir, kitprofile.ProfileFile)
	p, err := kitprofile.Load(path)
	if err != nil {
		return
	}
	set, ok := p.FluxBase()
	if !ok {
		return
	}
	rel, napi, err := b.readBaseRelease(ctx, set.Version)
	if err != nil {
		b.log.printf("the base Flux %s leaves the profile: %v (build it again: go run ./hack/kit -flux-base %s)", set.Version, err, set.Version)
		return
	}
	b.base = baseFlux{version: set.Version, keep: true, release: rel, napi: napi}
}

// dropBase leaves the base Flux out of the profile this run writes, saying
// why and how to build it again.
func (b *builder) dropBase(reason string) {
	b.log.printf("the base Flux %s leaves the profile: %s (build it again: go run ./hack/kit -flux-base %s)", b.base.version, reason, b.base.version)
	b.base.release = nil
	b.out.base = kitprofile.FluxSet{}
	b.supersede(func(context.Context) { b.pruneDirs("flux-base-manifests-", "") })
}

func (b *builder) fluxBaseControllers(ctx context.Context) error {
	if b.base.release == nil {
		return nil
	}
	images, missing, err := b.controllerImages(ctx, "flux-base-controllers", b.base.release, "flux-base-controller/", !b.base.keep)
	if err != nil {
		return fmt.Errorf("base Flux %s: %w", b.base.version, err)
	}
	if len(missing) > 0 {
		b.dropBase("its images " + strings.Join(missing, ", ") + " are missing or out of date")
		return nil
	}
	b.out.base = kitprofile.FluxSet{Version: b.base.version, Images: images}
	return nil
}

func (b *builder) fluxBaseManifests(ctx context.Context) error {
	if b.base.release == nil {
		return nil
	}
	out, ok, err := b.manifests(ctx, "flux-base-manifests", b.base.release, b.base.napi, !b.base.keep)
	if err != nil {
		return fmt.Errorf("base Flux %s: %w", b.base.version, err)
	}
	if !ok {
		b.dropBase("its manifests directory " + out + " is missing or out of date")
		return nil
	}
	b.out.base.Manifests = out
	return nil
}
