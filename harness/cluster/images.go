package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

// LoadImages loads local docker images into every node. One `docker save`
// stream carries all images, so layers they share are sent once, and it is
// fanned out to all nodes at the same time.
func (c *Cluster) LoadImages(ctx context.Context, images ...string) error {
	if len(images) == 0 {
		return nil
	}
	if c.existing {
		return c.errExisting("loading images " + strings.Join(images, ", "))
	}
	c.init()
	start := time.Now()
	nodeList, err := kindCall(ctx, "listing nodes of cluster "+c.Name, func() ([]nodes.Node, error) { return c.provider.ListInternalNodes(c.Name) })
	if err != nil {
		return fmt.Errorf("listing nodes of cluster %s: %w", c.Name, err)
	}
	if len(nodeList) == 0 {
		return fmt.Errorf("loading images into cluster %s: it has no nodes", c.Name)
	}
	missing, err := missingImages(ctx, nodeList, images)
	if err != nil {
		return fmt.Errorf("loading images into cluster %s: %w", c.Name, err)
	}
	if len(missing) == 0 {
		c.LoadTook, c.Loaded = time.Since(start), nil
		c.log.printf("cluster %s: images already present: %s (checked in %.1fs)", c.Name, strings.Join(images, " "), c.LoadTook.Seconds())
		return nil
	}
	if err := loadArchive(ctx, nodeList, missing); err != nil {
		return fmt.Errorf("loading images %s into cluster %s: %w", strings.Join(missing, ", "), c.Name, err)
	}
	c.LoadTook, c.Loaded = time.Since(start), missing
	c.log.printf("cluster %s: loaded %d image(s) in %.1fs: %s", c.Name, len(missing), c.LoadTook.Seconds(), strings.Join(missing, " "))
	return nil
}

// inspectImages prints "<image>\t<containerd image ID>" for every image
// argument, the ID empty when the node lacks it: one exec per node instead
// of one per image, since each exec costs a process start in the node.
const inspectImages = `for i in "$@"; do printf '%s\t%s\n' "$i" "$(crictl inspecti -o go-template --template '{{.status.id}}' "$i" 2>/dev/null)"; done`

// nodeImageIDs returns the containerd image ID of each image on node n,
// "" for those it lacks.
func nodeImageIDs(ctx context.Context, n nodes.Node, images []string) (map[string]string, error) {
	var out, stderr bytes.Buffer
	if err := n.CommandContext(ctx, "sh", append([]string{"-c", inspectImages, "sh"}, images...)...).SetStdout(&out).SetStderr(&stderr).Run(); err != nil {
		return nil, fmt.Errorf("listing images on node %s: %w (%s)", n, err, strings.TrimSpace(stderr.String()))
	}
	return parseImageIDs(out.String()), nil
}

// parseImageIDs reads inspectImages' output.
func parseImageIDs(out string) map[string]string {
	ids := map[string]string{}
	for line := range strings.Lines(out) {
		image, id, ok := strings.Cut(strings.TrimRight(line, "\n"), "\t")
		if ok {
			ids[image] = strings.TrimSpace(id)
		}
	}
	return ids
}

// missingImages returns the images some node lacks in the same version
// (same image ID) as the local docker engine, so a reused cluster does not
// receive the same gigabyte again. A node that cannot answer counts as lacking.
func missingImages(ctx context.Context, nodeList []nodes.Node, images []string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", append([]string{"image", "inspect", "--format", "{{.Id}}"}, images...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("images %s are not all in the local docker engine: %s", strings.Join(images, ", "), strings.TrimSpace(stderr.String()))
	}
	local := strings.Fields(string(out))
	if len(local) != len(images) {
		return nil, fmt.Errorf("docker image inspect of %d images answered %d IDs", len(images), len(local))
	}
	onNodes := make([]map[string]string, len(nodeList))
	for i, n := range nodeList {
		// A node that cannot answer lacks everything.
		onNodes[i], _ = nodeImageIDs(ctx, n, images)
	}
	var missing []string
	for i, img := range images {
		for _, ids := range onNodes {
			if ids[img] != local[i] {
				missing = append(missing, img)
				break
			}
		}
	}
	return missing, nil
}

var errNodeFinished = errors.New("node stopped reading the image archive")

func loadArchive(ctx context.Context, nodeList []nodes.Node, images []string) error {
	save := exec.CommandContext(ctx, "docker", append([]string{"save"}, images...)...)
	var stderr bytes.Buffer
	save.Stderr = &stderr
	out, err := save.StdoutPipe()
	if err != nil {
		return err
	}
	if err := save.Start(); err != nil {
		return fmt.Errorf("starting docker save: %w", err)
	}

	writers := make([]io.Writer, len(nodeList))
	pipes := make([]*io.PipeWriter, len(nodeList))
	readers := make([]*io.PipeReader, len(nodeList))
	nodeErrs := make([]error, len(nodeList))
	var wg sync.WaitGroup
	for i, n := range nodeList {
		pr, pw := io.Pipe()
		writers[i], pipes[i], readers[i] = pw, pw, pr
		wg.Go(func() {
			err := nodeutils.LoadImageArchive(n, pr)
			if err != nil {
				nodeErrs[i] = fmt.Errorf("node %s: %w", n.String(), err)
			}
			// Unblocks the fan-out if this node gave up early.
			_ = pr.CloseWithError(errNodeFinished)
		})
	}
	// A node that stops reading without exiting would block the fan-out
	// (and docker save behind it) for good: closing the pipes on ctx ends
	// both sides.
	stop := context.AfterFunc(ctx, func() {
		for i := range pipes {
			_ = pipes[i].CloseWithError(context.Cause(ctx))
			_ = readers[i].CloseWithError(context.Cause(ctx))
		}
	})
	defer stop()
	_, copyErr := io.Copy(io.MultiWriter(writers...), out)
	for _, pw := range pipes {
		_ = pw.CloseWithError(copyErr)
	}
	nodesDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(nodesDone)
	}()
	select {
	case <-nodesDone:
	case <-ctx.Done():
		// kind's import commands take no context; they end on the closed
		// pipe in the background.
		_ = save.Wait()
		return fmt.Errorf("interrupted while the nodes imported the archive: %w", context.Cause(ctx))
	}
	waitErr := save.Wait()
	if waitErr != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("docker save: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	if err := errors.Join(nodeErrs...); err != nil {
		return err
	}
	if copyErr != nil && !errors.Is(copyErr, errNodeFinished) {
		return fmt.Errorf("streaming image archive: %w", copyErr)
	}
	return nil
}
