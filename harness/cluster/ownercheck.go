package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// wantMarker is the marker a cluster made from spec carries: hashes of the
// config as given (before the labels are added) and of the node images.
func wantMarker(ctx context.Context, spec Spec, cfg *v1alpha4.Cluster) (marker, error) {
	ch, err := configHash(cfg)
	if err != nil {
		return marker{}, fmt.Errorf("hashing the kind config of cluster %s: %w", spec.Name, err)
	}
	run := labelValue(spec.RunID)
	if run == "" {
		run = NewRunID()
	}
	return marker{
		owned:      true,
		fleet:      labelValue(spec.Fleet),
		run:        run,
		imageHash:  imageHash(nodeImages(spec.NodeImage, cfg), func(img string) string { return localImageID(ctx, img) }),
		configHash: ch,
	}, nil
}

// localImageID is the docker engine's ID of image, "" when it has none.
func localImageID(ctx context.Context, image string) string {
	out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", image).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// readMarker reads the marker of kind cluster name from its nodes' labels,
// or, when its API server does not answer, from its node containers.
func readMarker(ctx context.Context, provider *kindcluster.Provider, name string, log *lineWriter) (marker, error) {
	m, err := readMarkerFromAPI(ctx, provider, name)
	if err == nil {
		return m, nil
	}
	// A cluster whose API does not answer (containers stopped by an engine
	// restart) still has the marker in its nodes' files.
	if fm, ferr := readMarkerFromContainers(ctx, name); ferr == nil && fm.owned {
		log.printf("cluster %s: API unreachable (%v); ownership read from its node containers", name, err)
		return fm, nil
	}
	return marker{}, err
}

// readMarkerFromAPI reads the marker from the node labels the API server
// lists, bounded by markerReadTimeout as a whole.
func readMarkerFromAPI(ctx context.Context, provider *kindcluster.Provider, name string) (marker, error) {
	ctx, cancel := context.WithTimeout(ctx, markerReadTimeout)
	defer cancel()
	raw, err := kindCall(ctx, "reading its kubeconfig", func() (string, error) { return provider.KubeConfig(name, false) })
	if err != nil {
		return marker{}, err
	}
	cs, err := clientsetFromKubeconfig(raw)
	if err != nil {
		return marker{}, err
	}
	var list *corev1.NodeList
	err = poll.Until(ctx, poll.Every(time.Second).For("its API server to list its nodes"), func(ctx context.Context) (bool, error) {
		var listErr error
		list, listErr = cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return listErr == nil, listErr
	})
	if err != nil {
		return marker{}, err
	}
	labels := make([]map[string]string, 0, len(list.Items))
	for _, n := range list.Items {
		labels = append(labels, n.Labels)
	}
	return markerFromNodes(labels), nil
}
