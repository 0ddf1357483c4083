package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/probe"
)

// ingressNamespace and ingressPorts are where the fixture fleets (and the
// real one) run the ingress controller's Service.
const ingressNamespace = "nginx"

var ingressPorts = []int32{80, 8080}

// requestTimeout bounds one request through the ingress.
const requestTimeout = 15 * time.Second

// checkTraffic is the e2e suite's traffic check, minimal: in every
// environment, GET / through the ingress controller's Service with the
// environment's Ingress host answers 200 from a pod of the app.
func checkTraffic(ctx context.Context, r *fleetenv.Run, log io.Writer) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, env := range r.Options().Envs {
		e := r.Env(env)
		g.Go(func() error {
			start := time.Now()
			pod, err := getThroughIngress(ctx, e)
			if err != nil {
				return fmt.Errorf("%s: traffic check: %w", env, err)
			}
			fmt.Fprintf(log, "%s %-11s GET / through the ingress answered by pod %s in %s\n", time.Now().Format("15:04:05"), env, pod, time.Since(start).Round(time.Millisecond))
			return nil
		})
	}
	return g.Wait()
}

// getThroughIngress sends GET / with the environment's Ingress host to the
// ingress controller and returns the pod that answered (namespace/name).
func getThroughIngress(ctx context.Context, e *fleetenv.Environment) (string, error) {
	kube := e.Clients.Kube
	ingresses, err := kube.NetworkingV1().Ingresses(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing Ingresses: %w", err)
	}
	host, ns := ingressHost(ingresses.Items, e.Name)
	if host == "" {
		return "", fmt.Errorf("no Ingress claims a host containing %q", e.Name)
	}
	svcs, err := kube.CoreV1().Services(ingressNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing Services in %s: %w", ingressNamespace, err)
	}
	target, ok := serviceWithPort(svcs.Items, ingressPorts)
	if !ok {
		return "", fmt.Errorf("no Service in namespace %s exposes port %v", ingressNamespace, ingressPorts)
	}
	fwd, err := probe.ToService(ctx, e.Clients, target)
	if err != nil {
		return "", fmt.Errorf("port-forward to the ingress: %w", err)
	}
	defer fwd.Close()

	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+fwd.Addr+"/", nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET / with Host %s via %s: %w", host, fwd.Pod, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("GET / with Host %s: reading the answer: %w", host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET / with Host %s answered %d: %.200s", host, resp.StatusCode, body)
	}
	var answer struct {
		Hostname string `json:"hostname"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Hostname == "" {
		return "", fmt.Errorf("GET / with Host %s: the answer names no pod (not the app's JSON?): %.200s", host, body)
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing pods in %s: %w", ns, err)
	}
	if !slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool { return p.Name == answer.Hostname }) {
		return "", fmt.Errorf("GET / with Host %s was answered by %q, not a pod of namespace %s", host, answer.Hostname, ns)
	}
	return ns + "/" + answer.Hostname, nil
}

// ingressHost is the first Ingress rule host naming the environment, and
// the Ingress's namespace.
func ingressHost(ingresses []networkingv1.Ingress, env string) (host, namespace string) {
	for _, ing := range ingresses {
		for _, rule := range ing.Spec.Rules {
			if rule.Host != "" && strings.Contains(rule.Host, env) {
				return rule.Host, ing.Namespace
			}
		}
	}
	return "", ""
}

// serviceWithPort is the first non-headless Service exposing one of ports,
// in the order of ports.
func serviceWithPort(svcs []corev1.Service, ports []int32) (probe.Target, bool) {
	for _, want := range ports {
		for _, s := range svcs {
			if s.Spec.ClusterIP == corev1.ClusterIPNone {
				continue
			}
			for _, p := range s.Spec.Ports {
				if p.Port == want {
					return probe.Target{Namespace: s.Namespace, Service: s.Name, Port: p.Port}, true
				}
			}
		}
	}
	return probe.Target{}, false
}
