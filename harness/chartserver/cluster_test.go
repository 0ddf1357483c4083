package chartserver

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestClusterObjects(t *testing.T) {
	tests := []struct {
		name        string
		gatewayIP   string
		port        int
		addressType string
	}{
		{"IPv4 gateway", "172.18.0.1", 41234, "IPv4"},
		{"IPv6 gateway", "fc00:f853:ccd:e793::1", 8080, "IPv6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := clusterObjects(tt.gatewayIP, tt.port, "fleet", "s3cret")
			want := []map[string]any{
				{
					"apiVersion": "v1", "kind": "Service",
					"metadata": map[string]any{"name": "chart-server", "namespace": "flux-system"},
					"spec": map[string]any{
						"type": "ClusterIP",
						"ports": []any{map[string]any{
							"name": "http", "protocol": "TCP", "port": int64(80), "targetPort": int64(tt.port),
						}},
					},
				},
				{
					"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
					"metadata": map[string]any{
						"name": "chart-server", "namespace": "flux-system",
						"labels": map[string]any{
							"kubernetes.io/service-name":             "chart-server",
							"endpointslice.kubernetes.io/managed-by": "flux-fleet-harness",
						},
					},
					"addressType": tt.addressType,
					"endpoints": []any{map[string]any{
						"addresses":  []any{tt.gatewayIP},
						"conditions": map[string]any{"ready": true},
					}},
					"ports": []any{map[string]any{"name": "http", "protocol": "TCP", "port": int64(tt.port)}},
				},
				{
					"apiVersion": "v1", "kind": "Secret",
					"metadata":   map[string]any{"name": "chart-server-auth", "namespace": "flux-system"},
					"type":       "Opaque",
					"stringData": map[string]any{"username": "fleet", "password": "s3cret"},
				},
			}
			if len(objs) != 4 {
				t.Fatalf("%d objects, want 4", len(objs))
			}
			for i, w := range want {
				if diff := cmp.Diff(w, objs[i].Object); diff != "" {
					t.Errorf("%s (-want +got):\n%s", objs[i].GetKind(), diff)
				}
			}

			pull := objs[3]
			if pull.GetName() != PullSecretName || pull.GetNamespace() != Namespace ||
				pull.Object["type"] != "kubernetes.io/dockerconfigjson" {
				t.Errorf("pull secret %s/%s of type %v", pull.GetNamespace(), pull.GetName(), pull.Object["type"])
			}
			raw, _, _ := unstructured.NestedString(pull.Object, "stringData", ".dockerconfigjson")
			var cfg struct {
				Auths map[string]struct{ Username, Password, Auth string }
			}
			if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
				t.Fatalf(".dockerconfigjson %q: %v", raw, err)
			}
			// No port: the Service listens on 80.
			entry, ok := cfg.Auths["chart-server.flux-system.svc.cluster.local"]
			if len(cfg.Auths) != 1 || !ok || entry.Username != "fleet" || entry.Password != "s3cret" ||
				entry.Auth != base64.StdEncoding.EncodeToString([]byte("fleet:s3cret")) {
				t.Errorf(".dockerconfigjson = %s", raw)
			}
		})
	}
}

func TestClusterObjectsUseServerCredentials(t *testing.T) {
	s := &Server{opts: Options{Username: "u", Password: "p"}}
	objs := s.ClusterObjects("172.18.0.1", 1234)
	user, _, _ := unstructured.NestedString(objs[2].Object, "stringData", "username")
	pass, _, _ := unstructured.NestedString(objs[2].Object, "stringData", "password")
	if objs[2].GetName() != AuthSecretName || user != "u" || pass != "p" {
		t.Errorf("auth secret %s has %q/%q, want the server's u/p", objs[2].GetName(), user, pass)
	}
}
