package chartserver

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestClusterObjects checks what makes the server reachable in a cluster:
// a selector-less Service on port 80 in front of an EndpointSlice that the
// EndpointSlice controller leaves alone, pointing at the gateway and port,
// and the two credential Secrets Flux objects reference.
func TestClusterObjects(t *testing.T) {
	tests := []struct {
		name        string
		gatewayIP   string
		port        int
		addressType discoveryv1.AddressType
	}{
		{"IPv4 gateway", "172.18.0.1", 41234, discoveryv1.AddressTypeIPv4},
		{"IPv6 gateway", "fc00:f853:ccd:e793::1", 8080, discoveryv1.AddressTypeIPv6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := clusterObjects(tt.gatewayIP, tt.port, "fleet", "s3cret")
			if len(objs) != 4 {
				t.Fatalf("%d objects, want 4", len(objs))
			}
			for _, o := range objs {
				if o.GetNamespace() != Namespace {
					t.Errorf("%s/%s in namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), Namespace)
				}
				// An apply must not send what the server owns.
				if _, ok := o.Object["status"]; ok {
					t.Errorf("%s/%s has a status", o.GetKind(), o.GetName())
				}
				if _, ok, _ := unstructured.NestedFieldNoCopy(o.Object, "metadata", "creationTimestamp"); ok {
					t.Errorf("%s/%s has a creationTimestamp", o.GetKind(), o.GetName())
				}
			}

			var svc corev1.Service
			fromUnstructured(t, objs[0], "v1", "Service", &svc)
			if svc.Name != ServiceName || svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Selector) != 0 || len(svc.Spec.Ports) != 1 {
				t.Fatalf("Service %s: type %s, selector %v, ports %v; want a selector-less ClusterIP %s with one port", svc.Name, svc.Spec.Type, svc.Spec.Selector, svc.Spec.Ports, ServiceName)
			}
			sp := svc.Spec.Ports[0]
			if sp.Port != 80 || sp.Protocol != corev1.ProtocolTCP || sp.TargetPort.IntValue() != tt.port {
				t.Errorf("Service port %+v, want TCP 80 to %d", sp, tt.port)
			}

			var slice discoveryv1.EndpointSlice
			fromUnstructured(t, objs[1], "discovery.k8s.io/v1", "EndpointSlice", &slice)
			if got := slice.Labels[discoveryv1.LabelServiceName]; got != svc.Name {
				t.Errorf("EndpointSlice is for Service %q, want %s", got, svc.Name)
			}
			// With the controller's own value the controller would delete it.
			if got := slice.Labels[discoveryv1.LabelManagedBy]; got == "" || got == "endpointslice-controller.k8s.io" {
				t.Errorf("EndpointSlice managed-by %q, want one naming the harness", got)
			}
			if slice.AddressType != tt.addressType {
				t.Errorf("EndpointSlice address type %s, want %s", slice.AddressType, tt.addressType)
			}
			if len(slice.Endpoints) != 1 || !slices.Equal(slice.Endpoints[0].Addresses, []string{tt.gatewayIP}) ||
				slice.Endpoints[0].Conditions.Ready == nil || !*slice.Endpoints[0].Conditions.Ready {
				t.Errorf("EndpointSlice endpoints %+v, want %s, ready", slice.Endpoints, tt.gatewayIP)
			}
			if len(slice.Ports) != 1 || slice.Ports[0].Name == nil || *slice.Ports[0].Name != sp.Name ||
				slice.Ports[0].Port == nil || int(*slice.Ports[0].Port) != tt.port {
				t.Errorf("EndpointSlice ports %+v, want port %d named like the Service's (%q)", slice.Ports, tt.port, sp.Name)
			}

			var auth corev1.Secret
			fromUnstructured(t, objs[2], "v1", "Secret", &auth)
			if auth.Name != AuthSecretName || auth.StringData["username"] != "fleet" || auth.StringData["password"] != "s3cret" {
				t.Errorf("auth Secret %s has %v, want %s with username fleet and password s3cret", auth.Name, auth.StringData, AuthSecretName)
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

// fromUnstructured checks an object's apiVersion and kind and converts it
// into into, failing on fields the typed object does not know.
func fromUnstructured(t *testing.T, u *unstructured.Unstructured, apiVersion, kind string, into any) {
	t.Helper()
	if u.GetAPIVersion() != apiVersion || u.GetKind() != kind {
		t.Fatalf("object %s is %s %s, want %s %s", u.GetName(), u.GetAPIVersion(), u.GetKind(), apiVersion, kind)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s %s: %v", kind, u.GetName(), err)
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
