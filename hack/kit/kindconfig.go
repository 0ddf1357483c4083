package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// kindConfig is the kind config that goes with the kit's node image.
func kindConfig(nodeImage string) []byte {
	return fmt.Appendf(nil, `# kind config for the offline node image (written by go run ./hack/kit).
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  # The node image carries a bridge CNI config; kindnetd is not available offline.
  disableDefaultCNI: true
nodes:
  - role: control-plane
    image: %s
kubeadmConfigPatches:
  - |
    kind: InitConfiguration
    nodeRegistration:
      ignorePreflightErrors:
        - SystemVerification
  - |
    kind: KubeletConfiguration
    # This kind of host runs cgroup v1, which kubelet 1.37 refuses by default.
    failCgroupV1: false
`, nodeImage)
}

// writeAtomic writes data next to path and renames it into place, so that
// a concurrent reader (another engineer's run) never sees half a file.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	if err := errors.Join(werr, tmp.Close(), os.Chmod(tmp.Name(), 0o644)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
