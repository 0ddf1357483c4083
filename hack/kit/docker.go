package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// hashLabel is the image label that carries the hash of the inputs an
// image was built from: an image is fresh when it equals the current hash.
const hashLabel = "io.flux-fleet.kit-hash"

// dockerTimeout bounds one docker CLI call of the kit's own (inspections,
// removals); the recipes have their own bound.
const dockerTimeout = 5 * time.Minute

// docker runs the docker CLI and returns its standard output, trimmed; a
// failure carries docker's own message.
func docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).Output()
	if err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// imageHash returns the hash label of a local image, "" when the image
// does not exist or has no such label.
func imageHash(ctx context.Context, image string) (string, error) {
	out, err := docker(ctx, "image", "inspect", "-f", fmt.Sprintf("{{index .Config.Labels %q}}", hashLabel), image)
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "no such image") {
			return "", nil
		}
		return "", fmt.Errorf("reading the hash label of %s: %w", image, err)
	}
	if out == "<no value>" {
		return "", nil
	}
	return out, nil
}

// fresh reports whether every image exists with the hash h.
func fresh(ctx context.Context, h string, images ...string) (bool, error) {
	for _, img := range images {
		got, err := imageHash(ctx, img)
		if err != nil || got != h {
			return false, err
		}
	}
	return true, nil
}

// imageID returns a local image's ID.
func imageID(ctx context.Context, image string) (string, error) {
	id, err := docker(ctx, "image", "inspect", "-f", "{{.Id}}", image)
	if err != nil {
		return "", fmt.Errorf("reading the ID of %s: %w", image, err)
	}
	return id, nil
}

// removeOtherTags removes the tags of repository other than keep: the node
// images a build superseded, which are large. An image still in use stays
// (docker refuses), as before.
func removeOtherTags(ctx context.Context, log *logger, repository, keep string) {
	out, err := docker(ctx, "images", repository, "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		log.printf("not removing superseded %s images: %v", repository, err)
		return
	}
	for _, img := range strings.Fields(out) {
		if img == keep {
			continue
		}
		if _, err := docker(ctx, "rmi", img); err != nil {
			log.printf("superseded %s left in place: %v", img, err)
			continue
		}
		log.printf("removed superseded %s", img)
	}
}

// pruneUntagged removes the kit's images that rebuilt ones left untagged.
func pruneUntagged(ctx context.Context, log *logger) {
	if _, err := docker(ctx, "image", "prune", "-f", "--filter", "label="+hashLabel); err != nil {
		log.printf("untagged kit images left in place: %v", err)
	}
}
