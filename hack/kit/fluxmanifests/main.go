// Command fluxmanifests writes the offline manifests directory that
// flux2's manifestgen/install.Generate reads instead of downloading a release:
// rbac.yaml, policies.yaml and one <controller>.yaml per controller, built
// from the flux2 module's manifests/ and each controller module's config/.
//
// The release assets the flux2 bases point at (<c>.crds.yaml and
// <c>.deployment.yaml) are rendered locally from the controller module, so the
// result matches what `flux install` would apply for that flux2 version.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/fluxcd/flux2/v2/pkg/manifestgen/kustomization"
)

type controllerDirs map[string]string

func (c controllerDirs) String() string { return fmt.Sprint(map[string]string(c)) }
func (c controllerDirs) Set(v string) error {
	name, dir, ok := strings.Cut(v, "=")
	if !ok || name == "" || dir == "" {
		return fmt.Errorf("want NAME=DIR, got %q", v)
	}
	c[name] = dir
	return nil
}

func main() {
	fluxDir := flag.String("flux", "", "directory of the github.com/fluxcd/flux2/v2 module")
	outDir := flag.String("out", "", "directory to write the manifests into")
	controllers := controllerDirs{}
	flag.Var(controllers, "controller", "NAME=DIR of a controller module (repeatable)")
	flag.Parse()
	if *fluxDir == "" || *outDir == "" || len(controllers) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*fluxDir, *outDir, controllers); err != nil {
		fmt.Fprintln(os.Stderr, "fluxmanifests:", err)
		os.Exit(1)
	}
}

func run(fluxDir, outDir string, controllers controllerDirs) error {
	manifests := filepath.Join(fluxDir, "manifests")
	for _, name := range []string{"rbac", "policies"} {
		if err := buildTo(manifests, filepath.Join(manifests, name), filepath.Join(outDir, name+".yaml")); err != nil {
			return err
		}
	}
	for name, dir := range controllers {
		if err := buildController(manifests, name, dir, outDir); err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
	}
	return nil
}

// releaseAsset matches the release-URL resources of a flux2 base.
var releaseAsset = regexp.MustCompile(`(?m)^(\s*-\s*)https://\S+/(\S+\.(crds|deployment)\.yaml)\s*$`)

func buildController(manifests, name, controllerDir, outDir string) error {
	work, err := os.MkdirTemp("", "fluxmanifests-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	base := filepath.Join(work, name)
	if err := os.CopyFS(base, os.DirFS(filepath.Join(manifests, "bases", name))); err != nil {
		return fmt.Errorf("copying the flux2 base: %w", err)
	}
	config := filepath.Join(controllerDir, "config")
	rendered := map[string]string{
		name + ".crds.yaml":       filepath.Join(config, "crd"),
		name + ".deployment.yaml": filepath.Join(config, "manager"),
	}
	for file, src := range rendered {
		if err := buildTo(config, src, filepath.Join(base, file)); err != nil {
			return err
		}
	}
	kfile := filepath.Join(base, "kustomization.yaml")
	k, err := os.ReadFile(kfile)
	if err != nil {
		return err
	}
	if n := len(releaseAsset.FindAll(k, -1)); n != 2 {
		return fmt.Errorf("%s: expected 2 release-asset resources, found %d", kfile, n)
	}
	k = releaseAsset.ReplaceAll(k, []byte("${1}${2}"))
	if err := os.WriteFile(kfile, k, 0o644); err != nil {
		return err
	}
	return buildTo(work, base, filepath.Join(outDir, name+".yaml"))
}

func buildTo(root, dir, out string) error {
	data, err := kustomization.BuildWithRoot(root, dir)
	if err != nil {
		return fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}
