package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
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

// removeSuperseded removes prev, an image this kit directory's previous
// profile named, now that the new profile names cur in its place. Only
// what this kit recorded goes: the repository's other tags may be another
// kit directory's on the same engine. An image in use stays (docker refuses).
func removeSuperseded(ctx context.Context, log *logger, prev, cur string) {
	if prev == "" || prev == cur {
		return
	}
	repo := repository(prev)
	if repo != repository(cur) {
		// Not a build of the same image: nothing says this kit replaced it.
		log.printf("not removing %s: the new profile names %s instead, from another repository", prev, cur)
		return
	}
	log.printf("removing %s: superseded in this kit's profile by %s", prev, cur)
	if _, err := docker(ctx, "rmi", prev); err != nil {
		log.printf("superseded %s left in place: %v", prev, err)
	}
	logOtherTags(ctx, log, repo, prev, cur)
}

// logOtherTags says how many of repository's tags besides mine were left
// alone, so that disk use on a shared engine is explained, not a mystery.
func logOtherTags(ctx context.Context, log *logger, repo string, mine ...string) {
	out, err := docker(ctx, "images", repo, "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		log.printf("not counting the other %s images: %v", repo, err)
		return
	}
	n := 0
	for _, img := range strings.Fields(out) {
		if !slices.Contains(mine, img) && !strings.HasSuffix(img, ":<none>") {
			n++
		}
	}
	if n > 0 {
		log.printf("left %d other %s image(s) alone: this kit's profile never named them (other kit directories' or older)", n, repo)
	}
}

// repository is image without its tag.
func repository(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i]
	}
	return image
}

// pruneUntagged removes the kit's images that rebuilt ones left untagged.
func pruneUntagged(ctx context.Context, log *logger) {
	if _, err := docker(ctx, "image", "prune", "-f", "--filter", "label="+hashLabel); err != nil {
		log.printf("untagged kit images left in place: %v", err)
	}
}
