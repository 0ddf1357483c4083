package cluster

import (
	"archive/tar"
	"bytes"
	"testing"
)

func TestNodeLabelsOf(t *testing.T) {
	conf := []byte(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  kubeletExtraArgs:
  - name: node-ip
    value: 172.18.0.2
  - name: node-labels
    value: flux-fleet/owner=flux-fleet,flux-fleet/run=20261126-071059-12ed21,flux-fleet/node-image-hash=5d4b
---
kind: JoinConfiguration
nodeRegistration:
  kubeletExtraArgs:
  - name: node-labels
    value: flux-fleet/owner=flux-fleet,flux-fleet/run=20261126-071059-12ed21,flux-fleet/node-image-hash=5d4b
`)
	got := nodeLabelsOf(conf)
	want := map[string]string{"flux-fleet/owner": "flux-fleet", "flux-fleet/run": "20261126-071059-12ed21", "flux-fleet/node-image-hash": "5d4b"}
	if len(got) != len(want) {
		t.Fatalf("nodeLabelsOf = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("nodeLabelsOf = %v, want %v", got, want)
		}
	}
	if m := markerFromNodes([]map[string]string{got}); !m.owned || m.run != "20261126-071059-12ed21" {
		t.Fatalf("marker from the kubeadm config = %+v", m)
	}
	if m := markerFromNodes([]map[string]string{nodeLabelsOf([]byte("kind: InitConfiguration\n"))}); m.owned {
		t.Fatal("a kubeadm config without the labels reads as owned")
	}
}

func TestFirstTarFile(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("hello")
	_ = tw.WriteHeader(&tar.Header{Name: "kubeadm.conf", Mode: 0o644, Size: int64(len(body))})
	_, _ = tw.Write(body)
	_ = tw.Close()
	got, err := firstTarFile(buf.Bytes())
	if err != nil || string(got) != "hello" {
		t.Fatalf("firstTarFile = %q, %v", got, err)
	}
	if _, err := firstTarFile([]byte("not a tar")); err == nil {
		t.Fatal("firstTarFile accepted garbage")
	}
}
