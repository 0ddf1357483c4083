package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
)

// requestTimeout bounds every request of the clients the waits poll with,
// so that one request to an API server that hangs cannot use up a wait.
const requestTimeout = 15 * time.Second

// KubeconfigPath is where Create writes the cluster's kubeconfig.
func (s Spec) KubeconfigPath() string {
	dir := s.WorkDir
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, s.Name+".kubeconfig")
}

// clientsetFromKubeconfig is boundedClientset for a kubeconfig's content.
func clientsetFromKubeconfig(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(kubeconfig))
	if err != nil {
		return nil, fmt.Errorf("parsing its kubeconfig: %w", err)
	}
	return boundedClientset(cfg)
}

// boundedClientset is a client of the cluster cfg reaches whose every
// request is bounded by requestTimeout; cfg itself is left as it is.
func boundedClientset(cfg *rest.Config) (*kubernetes.Clientset, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = requestTimeout
	return kubernetes.NewForConfig(cfg)
}

// writeKubeconfig writes the external kubeconfig of kind cluster name to
// path itself, replacing what kind merged, so the file holds exactly this
// cluster with mode 0600. It returns the REST config the file describes.
func writeKubeconfig(ctx context.Context, provider *kindcluster.Provider, name, path string) (*rest.Config, error) {
	raw, err := kindCall(ctx, "reading kubeconfig of cluster "+name, func() (string, error) { return provider.KubeConfig(name, false) })
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig of cluster %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating kubeconfig directory for %s: %w", name, err)
	}
	// A new 0600 file renamed over path: whatever stood there, a link to
	// someone's file included, is replaced, never written through.
	if err := privatefile.Write(path, []byte(raw)); err != nil {
		return nil, fmt.Errorf("kubeconfig of cluster %s: %w", name, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing kubeconfig of cluster %s: %w", name, err)
	}
	return cfg, nil
}
