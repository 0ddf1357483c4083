package fleetenv

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"time"
)

// Available says whether this machine can run kind clusters at all: nil, or
// an error saying why not and what to do.
func Available(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("no Docker engine answers (docker info: %v: %s); start one, e.g. `make docker-engine`", err, bytes.TrimSpace(out))
	}
	return nil
}
