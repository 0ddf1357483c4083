package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// ingressNamespace holds the fleet's ingress: the NGINX Ingress
// Controller's Service, or the fixtures' nginx.
const ingressNamespace = "nginx"

// requestTimeout bounds one request through an AppRoute when the caller's
// context has no earlier deadline.
const requestTimeout = 15 * time.Second

// AppRoute is how a user's request reaches the fleet's app: through the
// nginx ingress Service, with the host the app's Ingress claims.
type AppRoute struct {
	// Host is the host the app's Ingress claims for the environment.
	Host string
	// Namespace is the Ingress's namespace, hence the app's.
	Namespace string
	// Ingress is the service port-forwarded to.
	Ingress Target
	// Forward reaches a ready pod of the ingress Service.
	Forward *Forward

	clients *fluxobj.Clients
	client  *http.Client
}

// OpenAppRoute finds the app's Ingress host for env (FindAppHost) and
// port-forwards to the nginx ingress Service (IngressService). Close ends it.
func OpenAppRoute(ctx context.Context, c *fluxobj.Clients, env string) (*AppRoute, error) {
	route := &AppRoute{clients: c, client: &http.Client{}}
	var err error
	route.Host, route.Namespace, err = FindAppHost(ctx, c, env)
	if err != nil {
		return nil, err
	}
	route.Ingress, err = IngressService(ctx, c)
	if err != nil {
		return nil, err
	}
	route.Forward, err = ToService(ctx, c, route.Ingress)
	if err != nil {
		return nil, fmt.Errorf("port-forward to the nginx ingress: %w", err)
	}
	return route, nil
}

// FindAppHost lists the cluster's Ingresses and returns the app's host for
// env and the namespace of its Ingress (AppHost); it is an error when no
// Ingress claims one.
func FindAppHost(ctx context.Context, c *fluxobj.Clients, env string) (host, namespace string, err error) {
	ingresses, err := c.Kube.NetworkingV1().Ingresses(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", "", fmt.Errorf("listing Ingresses: %w", err)
	}
	host, namespace = AppHost(ingresses.Items, env)
	if host == "" {
		return "", "", fmt.Errorf("no Ingress claims a host for environment %s (want a host containing %q)", env, env)
	}
	return host, namespace, nil
}

// AppHost is the first Ingress rule host that names the environment (the
// fleet gives each environment's app a host containing its name), and the
// Ingress's namespace, which is the app's; both empty when none does.
func AppHost(ingresses []networkingv1.Ingress, env string) (host, namespace string) {
	for _, ing := range ingresses {
		for _, rule := range ing.Spec.Rules {
			if rule.Host != "" && strings.Contains(rule.Host, env) {
				return rule.Host, ing.Namespace
			}
		}
	}
	return "", ""
}

// IngressService finds the Service a user's request enters the fleet by:
// the one of namespace nginx exposing port 80 (the NGINX Ingress
// Controller's) or else 8080 (the fixtures' nginx).
func IngressService(ctx context.Context, c *fluxobj.Clients) (Target, error) {
	t, err := ServiceWithPort(ctx, c, ingressNamespace, 80, 8080)
	if err != nil {
		return Target{}, fmt.Errorf("finding the nginx ingress Service: %w", err)
	}
	return t, nil
}

// Close ends the port-forward.
func (r *AppRoute) Close() {
	if r.Forward != nil {
		r.Forward.Close()
	}
}

// Reopen replaces the port-forward with one to a ready pod of the ingress
// Service now: the pod behind the old one may be gone (nginx itself rolled),
// which a user's request through the Service would not notice.
func (r *AppRoute) Reopen(ctx context.Context) error {
	fwd, err := ToService(ctx, r.clients, r.Ingress)
	if err != nil {
		return fmt.Errorf("port-forward to the nginx ingress: %w", err)
	}
	old := r.Forward
	r.Forward = fwd
	if old != nil {
		old.Close()
	}
	return nil
}

// Do sends one request with the app's Host through the ingress and returns
// the status and up to 1 MiB of the body. It is bounded by ctx and by
// requestTimeout.
func (r *AppRoute) Do(ctx context.Context, method, path string, body io.Reader) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+r.Forward.Addr+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Host = r.Host
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, data, err
}

// AppAnswer is the app's answer to GET /: the fixture app and podinfo both
// answer JSON with the pod's hostname, a message and a version.
type AppAnswer struct {
	Hostname string `json:"hostname"`
	Message  string `json:"message"`
	Version  string `json:"version"`
	// Env is the fixture app's environment name (podinfo has none).
	Env string `json:"env"`
	// Pods are the pods of the app's namespace when the answer was checked.
	Pods []string `json:"-"`
	Took time.Duration
}

// CheckApp is the traffic check: GET / through the ingress with the app's
// host must answer 200 with the app's JSON, from a pod of the app's
// namespace — proof that the request crossed the ingress and landed on the
// app, not on an nginx default page. The error says which part failed.
func (r *AppRoute) CheckApp(ctx context.Context) (*AppAnswer, error) {
	start := time.Now()
	code, body, err := r.Do(ctx, http.MethodGet, "/", nil)
	if err != nil {
		return nil, fmt.Errorf("GET / with Host %s through %s (pod %s): %w", r.Host, r.Ingress, r.Forward.Pod, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET / with Host %s through %s answered %d: %s", r.Host, r.Ingress, code, Truncate(body))
	}
	answer := &AppAnswer{Took: time.Since(start)}
	if err := json.Unmarshal(body, answer); err != nil || answer.Hostname == "" {
		return nil, fmt.Errorf("the answer to Host %s is not the app's JSON (with a hostname): %s", r.Host, Truncate(body))
	}
	pods, err := r.clients.Kube.CoreV1().Pods(r.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of namespace %s: %w", r.Namespace, err)
	}
	for _, p := range pods.Items {
		answer.Pods = append(answer.Pods, p.Name)
	}
	if !slices.Contains(answer.Pods, answer.Hostname) {
		return answer, fmt.Errorf("the answer to Host %s came from %q, which is not a pod of namespace %s", r.Host, answer.Hostname, r.Namespace)
	}
	return answer, nil
}

// ServiceWithPort finds a non-headless Service in ns exposing one of ports,
// the earlier ports preferred.
func ServiceWithPort(ctx context.Context, c *fluxobj.Clients, ns string, ports ...int32) (Target, error) {
	list, err := c.Kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return Target{}, fmt.Errorf("listing Services in %s: %w", ns, err)
	}
	for _, want := range ports {
		for _, s := range list.Items {
			if s.Spec.ClusterIP == corev1.ClusterIPNone {
				continue
			}
			for _, p := range s.Spec.Ports {
				if p.Port == want {
					return Target{Namespace: ns, Service: s.Name, Port: p.Port}, nil
				}
			}
		}
	}
	return Target{}, fmt.Errorf("no Service in namespace %s exposes port %v", ns, ports)
}

// Truncate shortens a body for a message.
func Truncate(b []byte) string {
	const limit = 300
	s := strings.TrimSpace(string(b))
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}
