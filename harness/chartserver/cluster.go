package chartserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// The stable in-cluster names fleet files use instead of the run-specific
// address of the server.
const (
	// Namespace holds the Service, its EndpointSlice and both Secrets:
	// Flux's own, where the sources that use them live.
	Namespace = fluxobj.Namespace
	// ServiceName is the selector-less Service in front of the server.
	ServiceName = "chart-server"
	// InClusterHost is the Service's DNS name; its port is 80, so it is
	// both the Helm repository host and the OCI registry host.
	InClusterHost = ServiceName + "." + Namespace + ".svc.cluster.local"
	// AuthSecretName is the Opaque Secret (keys username, password) that
	// HelmRepository objects of both types reference.
	AuthSecretName = "chart-server-auth"
	// PullSecretName is the kubernetes.io/dockerconfigjson Secret for
	// InClusterHost that OCIRepository objects reference.
	PullSecretName = "chart-server-pull"
)

// endpointSliceManager tells the EndpointSlice controllers that someone
// else owns the slice.
const endpointSliceManager = "flux-fleet-harness"

// ClusterObjects are the objects that make the server reachable in a
// cluster at InClusterHost, port 80: a selector-less Service, an
// EndpointSlice to gatewayIP:port (the address nodes reach the server at,
// see AddListener) and the two credential Secrets. Pure data: the caller
// applies them.
func (s *Server) ClusterObjects(gatewayIP string, port int) []*unstructured.Unstructured {
	user, pass := s.Credentials()
	return clusterObjects(gatewayIP, port, user, pass)
}

func clusterObjects(gatewayIP string, port int, user, pass string) []*unstructured.Unstructured {
	const portName = "http"
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: Namespace}
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(ServiceName),
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{
				Name:       portName,
				Protocol:   corev1.ProtocolTCP,
				Port:       80,
				TargetPort: intstr.FromInt32(int32(port)),
			}},
		},
	}

	addressType := discoveryv1.AddressTypeIPv4
	if ip := net.ParseIP(gatewayIP); ip != nil && ip.To4() == nil {
		addressType = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta:  meta(ServiceName),
		AddressType: addressType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{gatewayIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{
			Name:     ptr.To(portName), // must match the Service port's name
			Protocol: ptr.To(corev1.ProtocolTCP),
			Port:     ptr.To(int32(port)),
		}},
	}
	slice.Labels = map[string]string{
		discoveryv1.LabelServiceName: ServiceName,
		discoveryv1.LabelManagedBy:   endpointSliceManager,
	}

	return append(toUnstructured(svc, slice), CredentialSecrets(user, pass)...)
}

// CredentialSecrets are the two Secrets that Flux sources reference to
// reach the charts at InClusterHost with user and pass (AuthSecretName and
// PullSecretName), the same whichever server is behind the host. Pure
// data: the caller applies them.
func CredentialSecrets(user, pass string) []*unstructured.Unstructured {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: Namespace}
	}
	auth := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(AuthSecretName),
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{"username": user, "password": pass},
	}
	pull := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(PullSecretName),
		Type:       corev1.SecretTypeDockerConfigJson,
		StringData: map[string]string{corev1.DockerConfigJsonKey: dockerConfigJSON(InClusterHost, user, pass)},
	}
	return toUnstructured(auth, pull)
}

// toUnstructured converts typed objects for an apply.
func toUnstructured(objs ...runtime.Object) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			// Only a programming error in the typed objects above gets here.
			panic(fmt.Sprintf("converting %T to unstructured: %v", obj, err))
		}
		u := &unstructured.Unstructured{Object: m}
		// Fields the converter fills in that an apply should not send.
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		out = append(out, u)
	}
	return out
}

// dockerConfigJSON is a .dockerconfigjson with one registry's credentials,
// in both forms clients read (username/password and auth).
func dockerConfigJSON(host, user, pass string) string {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	b, _ := json.Marshal(map[string]map[string]entry{ // strings only: cannot fail
		"auths": {host: {
			Username: user,
			Password: pass,
			Auth:     base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)),
		}},
	})
	return string(b)
}
