package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// kindClusterLabel is the label kind puts on every node container, naming
// its cluster.
const kindClusterLabel = "io.x-k8s.kind.cluster"

// EngineRefusedError is returned when the Docker engine will not remove a
// node container ("tried to kill container, but did not receive an exit
// event"): the engine's defect, which the harness can only report.
type EngineRefusedError struct {
	Container     string
	EngineMessage string
}

func (e *EngineRefusedError) Error() string {
	return fmt.Sprintf("the Docker engine refused to remove node container %s (the engine failed, not the harness): %s; retry with: docker rm -f %s",
		e.Container, e.EngineMessage, e.Container)
}

// dockerOutput runs the docker CLI and returns its output, or an error
// carrying what it said on stderr.
func dockerOutput(ctx context.Context, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// nodeContainerNames lists the node containers of cluster name, running or not.
func nodeContainerNames(ctx context.Context, name string) ([]string, error) {
	states, err := nodeContainerStates(ctx, name)
	names := make([]string, 0, len(states))
	for _, s := range states {
		n, _, _ := strings.Cut(s, " ")
		names = append(names, n)
	}
	return names, err
}

// removeLeftNodes runs after kind's delete of cluster name failed with
// kindErr: it removes the node containers still there itself, so that a
// container the engine will not remove is told apart from a harness error.
// No container left means the nodes are gone, whatever kind said.
func removeLeftNodes(ctx context.Context, name string, kindErr error) error {
	left, err := nodeContainerNames(ctx, name)
	if err != nil {
		return fmt.Errorf("%w (and then %v)", kindErr, err)
	}
	var errs []error
	for _, n := range left {
		if err := removeContainer(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeContainer runs docker rm -f -v on container; when that fails and
// the container is still there, the engine refused: *EngineRefusedError.
func removeContainer(ctx context.Context, container string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", "rm", "-f", "-v", container)
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("removing node container %s: %w", container, context.Cause(ctx))
	}
	if containerGone(ctx, container) {
		return nil
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = err.Error()
	}
	return &EngineRefusedError{Container: container, EngineMessage: msg}
}

// containerGone reports whether the engine says it has no such container.
func containerGone(ctx context.Context, container string) bool {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{.Id}}", container)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		return false
	}
	return strings.Contains(strings.ToLower(stderr.String()), "no such")
}
