package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	kindcluster "sigs.k8s.io/kind/pkg/cluster"
)

// deleteNodes deletes kind cluster name's nodes and, when kind fails, the
// node containers it left (removeLeftNodes).
func deleteNodes(ctx context.Context, provider *kindcluster.Provider, name, kubeconfigPath string) error {
	err := kindDo(ctx, "deleting kind cluster "+name, func() error {
		// The explicit path matters: with "" kind edits the user's default kubeconfig.
		return provider.Delete(name, kubeconfigPath)
	})
	if err == nil || ctx.Err() != nil {
		return err
	}
	return removeLeftNodes(ctx, name, err)
}

// Delete deletes the cluster's nodes and its kubeconfig file, and releases
// the hold Create took. A Cluster built by hand (only Name set) holds its
// name for the deletion, so that it fails with a *HeldError instead of
// deleting a cluster a live run is using. When ctx ends first Delete returns
// at once with an error while kind finishes the deletion in the
// background. A node container the Docker engine will not remove is
// reported as an *EngineRefusedError.
func (c *Cluster) Delete(ctx context.Context) error {
	if c.existing {
		return fmt.Errorf("refusing to delete cluster %s (kubeconfig context %q): the harness did not create it", c.Name, c.Context)
	}
	c.init()
	c.mu.Lock()
	held := c.held
	c.mu.Unlock()
	if !held {
		dir, err := DefaultHoldDir(ctx)
		if err != nil {
			return fmt.Errorf("deleting kind cluster %s: %w", c.Name, err)
		}
		h, err := takeHold(dir, c.Name, holderInfo(Spec{Name: c.Name, WorkDir: filepath.Dir(c.KubeconfigPath)}, "", time.Now()))
		if err != nil {
			return fmt.Errorf("deleting kind cluster %s: %w", c.Name, err)
		}
		defer h.release()
	}
	start := time.Now()
	if err := deleteNodes(ctx, c.provider, c.Name, c.KubeconfigPath); err != nil {
		return fmt.Errorf("deleting kind cluster %s: %w", c.Name, err)
	}
	if err := removeIfExists(c.KubeconfigPath); err != nil {
		return err
	}
	c.mu.Lock()
	c.deleted = true
	if c.hold != nil {
		c.hold.release()
		c.hold = nil
		c.held = false
	}
	c.mu.Unlock()
	c.log.printf("cluster %s deleted in %.1fs", c.Name, time.Since(start).Seconds())
	return nil
}

func removeIfExists(path string) error {
	if path == "" {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}
