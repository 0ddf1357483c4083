package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fluxRelease is one flux2 release as the kit builds it: the module's
// version and directory and the controller versions its manifests/bases
// bundle.
type fluxRelease struct {
	version, dir string
	controllers  map[string]string // controller → version
}

// readRelease downloads the flux2 module at version (a no-op when cached)
// and reads the versions of the controllers it bundles.
func (b *builder) readRelease(ctx context.Context, version string) (*fluxRelease, error) {
	dir, err := moduleDir(ctx, b.repo, b.env, flux2Module, version)
	if err != nil {
		return nil, err
	}
	rel := &fluxRelease{version: version, dir: dir, controllers: map[string]string{}}
	for _, c := range fluxControllers() {
		if rel.controllers[c], err = controllerVersion(dir, c); err != nil {
			return nil, err
		}
	}
	return rel, nil
}

// controllerImage is the image of a controller, tagged as flux2's manifests
// name it, so that the manifests find it in a node without a registry.
func controllerImage(controller, version string) string {
	return fmt.Sprintf("ghcr.io/fluxcd/%s:%s", controller, version)
}

// controllerImages returns the images of rel's controllers, each hashed as
// the artifact flux-controller/<controller> and recorded as key+controller.
// An image missing or out of date is built when build is set, else listed
// in missing.
func (b *builder) controllerImages(ctx context.Context, stage string, rel *fluxRelease, key string, build bool) (images, missing []string, err error) {
	for _, c := range fluxControllers() {
		v := rel.controllers[c]
		image := controllerImage(c, v)
		images = append(images, image)
		h, err := b.hashAs(key+c, "flux-controller/"+c, v)
		if err != nil {
			return nil, nil, err
		}
		if ok, err := b.have(ctx, h, image); err != nil {
			return nil, nil, err
		} else if ok {
			continue
		}
		if !build {
			missing = append(missing, image)
			continue
		}
		b.log.printf("building %s %s (cold: minutes)", c, v)
		start := time.Now()
		dir, err := moduleDir(ctx, b.repo, b.env, "github.com/fluxcd/"+c, v)
		if err != nil {
			return nil, nil, err
		}
		if err := b.recipe(ctx, stage, "build_flux_controller_image", c, v, dir, image, h); err != nil {
			return nil, nil, fmt.Errorf("building %s: %w", image, err)
		}
		b.log.printf("built %s in %s", image, time.Since(start).Round(time.Second))
	}
	return images, missing, nil
}

// manifests returns the offline manifests directory of rel, the artifact
// name (flux-manifests or flux-base-manifests) with its hash, and whether it
// is there. A missing directory is written when build is set, the same
// artifact's superseded directories removed once the profile is written.
func (b *builder) manifests(ctx context.Context, name string, rel *fluxRelease, napi string, build bool) (out string, ok bool, err error) {
	var pairs []string
	for _, c := range fluxControllers() {
		pairs = append(pairs, c+"="+rel.controllers[c])
	}
	h, err := b.hash(name, rel.version, napi, strings.Join(pairs, " "))
	if err != nil {
		return "", false, err
	}
	out = filepath.Join(b.kitDir, name+"-"+h)
	if _, err := os.Stat(filepath.Join(out, "rbac.yaml")); err == nil || b.hashOnly {
		b.supersede(func(context.Context) { b.pruneDirs(name+"-", out) })
		return out, true, nil
	}
	if !build {
		return out, false, nil
	}
	if err := b.writeManifests(ctx, name, out, rel, napi); err != nil {
		return "", false, err
	}
	b.supersede(func(context.Context) { b.pruneDirs(name+"-", out) })
	return out, true, nil
}

// writeManifests runs the manifests recipe for rel into a partial directory
// next to out and renames it, so that an interrupted build is never mistaken
// for a finished one.
func (b *builder) writeManifests(ctx context.Context, stage, out string, rel *fluxRelease, napi string) error {
	napiDir, err := moduleDir(ctx, b.repo, b.env, notificationModule, napi)
	if err != nil {
		return err
	}
	partial := fmt.Sprintf("%s.partial.%d", out, b.pid)
	args := []string{partial, rel.dir, napiDir}
	for _, c := range fluxControllers() {
		dir, err := moduleDir(ctx, b.repo, b.env, "github.com/fluxcd/"+c, rel.controllers[c])
		if err != nil {
			return err
		}
		args = append(args, c+"="+dir)
	}
	if err := b.recipe(ctx, stage, "build_flux_manifests", args...); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if err := os.Rename(partial, out); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}

// pruneDirs removes the kit directory's entries named prefix<hash> other
// than keep (none when keep is ""), never another build's unfinished one.
// It runs once the new profile is written, never while the old one still
// names what it removes.
func (b *builder) pruneDirs(prefix, keep string) {
	old, _ := filepath.Glob(filepath.Join(b.kitDir, prefix+"*"))
	for _, dir := range old {
		if dir == keep || strings.Contains(filepath.Base(dir), ".partial.") {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			b.log.printf("superseded %s left in place: %v", dir, err)
		}
	}
}

// requiredVersion is the version of module that the go.mod file at path
// requires, as go mod edit -json reads it.
func requiredVersion(ctx context.Context, repo string, env []string, path, module string) (string, error) {
	out, err := goCmd(ctx, repo, env, "mod", "edit", "-json", path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	var mod struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal([]byte(out), &mod); err != nil {
		return "", fmt.Errorf("reading %s: go mod edit -json: %w", path, err)
	}
	for _, r := range mod.Require {
		if r.Path == module {
			return r.Version, nil
		}
	}
	return "", fmt.Errorf("%s requires no %s", path, module)
}
