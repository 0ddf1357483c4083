package cluster

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// kubeadmConfigPath is where kind leaves each node's kubeadm config, which
// carries the node labels of the kind config, hence the ownership marker.
const kubeadmConfigPath = "/kind/kubeadm.conf"

// readMarkerFromContainers reads the ownership marker from the node
// containers' files, for a cluster whose API cannot answer: its containers
// are stopped (a Docker engine restarted under them) or it is broken.
// `docker cp` reads a stopped container's files too.
func readMarkerFromContainers(ctx context.Context, name string) (marker, error) {
	out, err := exec.CommandContext(ctx, "docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+name, "--format", "{{.Names}}").Output()
	if err != nil {
		return marker{}, fmt.Errorf("listing the node containers of %s: %w", name, err)
	}
	var labels []map[string]string
	for _, node := range strings.Fields(string(out)) {
		raw, err := exec.CommandContext(ctx, "docker", "cp", node+":"+kubeadmConfigPath, "-").Output()
		if err != nil {
			return marker{}, fmt.Errorf("reading %s of node %s: %w", kubeadmConfigPath, node, err)
		}
		conf, err := firstTarFile(raw)
		if err != nil {
			return marker{}, fmt.Errorf("reading %s of node %s: %w", kubeadmConfigPath, node, err)
		}
		labels = append(labels, nodeLabelsOf(conf))
	}
	return markerFromNodes(labels), nil
}

// firstTarFile returns the contents of the first file of a tar stream (what
// `docker cp container:file -` writes).
func firstTarFile(raw []byte) ([]byte, error) {
	tr := tar.NewReader(bytes.NewReader(raw))
	if _, err := tr.Next(); err != nil {
		return nil, err
	}
	return io.ReadAll(tr)
}

// nodeLabelsOf reads the kubelet node-labels argument of a kubeadm config:
// a "name: node-labels" entry followed by "value: k=v,k=v".
func nodeLabelsOf(conf []byte) map[string]string {
	labels := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(conf))
	next := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.TrimPrefix(line, "- ") == "name: node-labels" {
			next = true
			continue
		}
		if !next {
			continue
		}
		next = false
		value, ok := strings.CutPrefix(line, "value:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(strings.Trim(strings.TrimSpace(value), `"'`), ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
				labels[k] = v
			}
		}
	}
	return labels
}
