package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// ExportLogs writes kind's node logs (journal, containerd, kubelet, pods)
// into dir. Logs that could not be gathered are listed in
// dir/collect-errors.txt rather than failing the whole export.
func (c *Cluster) ExportLogs(ctx context.Context, dir string) error {
	if c.existing {
		return c.errExisting("collecting node logs")
	}
	c.init()
	err := kindDo(ctx, "collecting logs of cluster "+c.Name, func() error { return c.provider.CollectLogs(c.Name, dir) })
	if err == nil {
		return nil
	}
	// kind gathers each log with its own command and reports every one that
	// failed (a node image without crictl, say); the rest are still worth
	// having, so only a collection that produced no node logs is an error.
	nodeDir := filepath.Join(dir, c.Name+"-control-plane")
	if _, statErr := os.Stat(nodeDir); statErr != nil || ctx.Err() != nil {
		return fmt.Errorf("collecting logs of cluster %s: %w", c.Name, err)
	}
	note := filepath.Join(dir, "collect-errors.txt")
	_ = os.WriteFile(note, []byte(err.Error()+"\n"), 0o644)
	c.log.printf("cluster %s: some logs could not be collected (see %s): %v", c.Name, note, err)
	return nil
}
