package probe

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

func TestAppHost(t *testing.T) {
	ing := func(ns string, hosts ...string) networkingv1.Ingress {
		i := networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		for _, h := range hosts {
			i.Spec.Rules = append(i.Spec.Rules, networkingv1.IngressRule{Host: h})
		}
		return i
	}
	tests := []struct {
		name      string
		ingresses []networkingv1.Ingress
		env       string
		host, ns  string
	}{
		{"the environment's host", []networkingv1.Ingress{ing("apps", "fleet-app.production"), ing("apps", "fleet-app.staging")}, "staging", "fleet-app.staging", "apps"},
		{"a rule without host is skipped", []networkingv1.Ingress{ing("podinfo", "", "podinfo.staging")}, "staging", "podinfo.staging", "podinfo"},
		{"no host names the environment", []networkingv1.Ingress{ing("apps", "fleet-app.example")}, "staging", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, ns := AppHost(tt.ingresses, tt.env)
			if host != tt.host || ns != tt.ns {
				t.Errorf("AppHost = %q, %q; want %q, %q", host, ns, tt.host, tt.ns)
			}
		})
	}
}

func TestServiceWithPort(t *testing.T) {
	svc := func(name, clusterIP string, ports ...int32) runtime.Object {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "nginx", Name: name}, Spec: corev1.ServiceSpec{ClusterIP: clusterIP}}
		for _, p := range ports {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p})
		}
		return s
	}
	c := &fluxobj.Clients{Kube: fake.NewClientset(
		svc("nginx-headless", corev1.ClusterIPNone, 80),
		svc("nginx-metrics", "10.96.0.11", 9113, 8080),
		svc("nginx", "10.96.0.10", 443, 80),
	)}
	tests := []struct {
		ports   []int32
		want    string
		wantErr string
	}{
		{[]int32{80, 8080}, "nginx:80", ""},
		{[]int32{8080, 80}, "nginx-metrics:8080", ""},
		{[]int32{9999}, "", "no Service in namespace nginx exposes port [9999]"},
	}
	for _, tt := range tests {
		got, err := ServiceWithPort(t.Context(), c, "nginx", tt.ports...)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ports %v: error %v, want %q", tt.ports, err, tt.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprintf("%s:%d", got.Service, got.Port) != tt.want {
			t.Errorf("ports %v: got %+v, %v; want %s", tt.ports, got, err, tt.want)
		}
	}
}

// TestFindAppHostAndIngressService: the two lookups OpenAppRoute (and the
// bench's traffic check) make, against a fake cluster, with their errors.
func TestFindAppHostAndIngressService(t *testing.T) {
	ingress := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "fleet-app"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "fleet-app.staging"}}}}
	service := func(ns, name string, port int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Port: port}}}}
	}
	c := &fluxobj.Clients{Kube: fake.NewClientset(ingress, service("nginx", "fixture-nginx", 8080), service("nginx", "ingress-nginx-controller", 80))}
	host, ns, err := FindAppHost(t.Context(), c, "staging")
	if host != "fleet-app.staging" || ns != "apps" || err != nil {
		t.Errorf("FindAppHost(staging) = %q, %q, %v; want fleet-app.staging, apps", host, ns, err)
	}
	const noHost = `no Ingress claims a host for environment production (want a host containing "production")`
	if _, _, err := FindAppHost(t.Context(), c, "production"); err == nil || err.Error() != noHost {
		t.Errorf("FindAppHost(production) error = %v, want %q", err, noHost)
	}
	target, err := IngressService(t.Context(), c)
	if want := (Target{Namespace: "nginx", Service: "ingress-nginx-controller", Port: 80}); target != want || err != nil {
		t.Errorf("IngressService = %+v, %v; want %+v (port 80 before 8080)", target, err, want)
	}
	empty := &fluxobj.Clients{Kube: fake.NewClientset(service("nginx", "metrics", 9113))}
	const noService = "finding the nginx ingress Service: no Service in namespace nginx exposes port [80 8080]"
	if _, err := IngressService(t.Context(), empty); err == nil || err.Error() != noService {
		t.Errorf("IngressService without one: error %v, want %q", err, noService)
	}
}

// testRoute is an AppRoute whose "port-forward" is a local HTTP server, and
// whose cluster holds the given pods in namespace apps.
func testRoute(t *testing.T, h http.Handler, pods ...string) *AppRoute {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var objs []runtime.Object
	for _, p := range pods {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: p}})
	}
	done := make(chan struct{})
	close(done)
	return &AppRoute{
		Host:      "fleet-app.staging",
		Namespace: "apps",
		Ingress:   Target{Namespace: "nginx", Service: "nginx", Port: 80},
		Forward:   &Forward{Addr: strings.TrimPrefix(srv.URL, "http://"), Pod: "nginx/nginx-0", stop: func() {}, done: done},
		clients:   &fluxobj.Clients{Kube: fake.NewClientset(objs...)},
		client:    srv.Client(),
	}
}

func TestCheckApp(t *testing.T) {
	answer := func(code int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Host != "fleet-app.staging" {
				http.Error(w, "wrong host "+r.Host, http.StatusNotFound)
				return
			}
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantMsg string
		wantErr string
	}{
		{"answered by a pod of the app", answer(200, `{"hostname":"fleet-app-7d9-abcde","env":"staging","message":"v2","version":"dev"}`), "v2", ""},
		{"gateway error", answer(502, "<html>502 Bad Gateway</html>"), "", "GET / with Host fleet-app.staging through service nginx/nginx port 80 answered 502: <html>502 Bad Gateway</html>"},
		{"not the app's JSON", answer(200, "Welcome to nginx!"), "", "the answer to Host fleet-app.staging is not the app's JSON (with a hostname): Welcome to nginx!"},
		{"answered by something else", answer(200, `{"hostname":"somewhere-else"}`), "", `the answer to Host fleet-app.staging came from "somewhere-else", which is not a pod of namespace apps`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := testRoute(t, tt.handler, "fleet-app-7d9-abcde", "fleet-app-7d9-fghij")
			got, err := route.CheckApp(context.Background())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v\nwant %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Message != tt.wantMsg || got.Env != "staging" || got.Hostname != "fleet-app-7d9-abcde" || len(got.Pods) != 2 {
				t.Errorf("answer = %+v", got)
			}
		})
	}
}
