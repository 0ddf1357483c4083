package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// fleetServerPackage is the in-cluster fleet server's command.
const fleetServerPackage = "./hack/fleetserver"

// fleetServerImage builds the in-cluster fleet server image,
// fleet-kit/fleet-server:<hash>: the Debian base image with Debian's git
// (its own artifact, so that an edit of the server's Go code rebuilds only
// the binary's layer) and the static binary of hack/fleetserver.
func (b *builder) fleetServerImage(ctx context.Context) error {
	h, err := b.hash("debian-git")
	if err != nil {
		return err
	}
	if ok, err := b.have(ctx, h, b.gitImage); err != nil {
		return err
	} else if !ok {
		b.log.printf("building %s: the Debian base image with Debian's git", b.gitImage)
		if err := b.recipe(ctx, "fleet-server-image", "build_git_image", b.gitImage, h); err != nil {
			return fmt.Errorf("building %s: %w", b.gitImage, err)
		}
	}
	sources, err := goSources(ctx, b.repo, b.env, fleetServerPackage)
	if err != nil {
		return err
	}
	if h, err = b.hash("fleet-server", sources); err != nil {
		return err
	}
	image := "fleet-kit/fleet-server:" + h
	b.out.serverImage = image
	if ok, err := b.have(ctx, h, image); ok || err != nil {
		return err
	}
	b.log.printf("building %s from %s", image, fleetServerPackage)
	if err := b.recipe(ctx, "fleet-server-image", "build_fleet_server_image", image, h, b.gitImage); err != nil {
		return fmt.Errorf("building %s: %w", image, err)
	}
	return nil
}

// goSourcesTemplate lists, per package of the main module that a build
// compiles, its directory and the files go build reads from it.
const goSourcesTemplate = `{{with .Module}}{{if .Main}}{{$.Dir}}` +
	`{{range $.GoFiles}} {{.}}{{end}}{{range $.EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`

// goSources digests what building pkg compiles of the repository: the Go
// and embedded files of every package of this module it depends on
// (go list -deps, with the kit's build settings), and go.mod and go.sum,
// which decide every other module. A test file or a package the command
// does not import changes nothing.
func goSources(ctx context.Context, repo string, env []string, pkg string) (string, error) {
	out, err := goCmd(ctx, repo, env, "list", "-deps", "-f", goSourcesTemplate, pkg)
	if err != nil {
		return "", fmt.Errorf("listing the Go sources of %s: %w", pkg, err)
	}
	files := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dir, err := filepath.Rel(repo, fields[0])
		if err != nil || strings.HasPrefix(dir, "..") {
			return "", fmt.Errorf("listing the Go sources of %s: package directory %s is outside the repository %s", pkg, fields[0], repo)
		}
		for _, f := range fields[1:] {
			files = append(files, filepath.ToSlash(filepath.Join(dir, f)))
		}
	}
	if len(files) == 2 {
		return "", fmt.Errorf("listing the Go sources of %s: go list names no package of this module", pkg)
	}
	return hashFiles(repo, files)
}
