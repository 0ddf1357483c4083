// Package probe reaches workloads inside a cluster from the test process, the
// way a user would check a rollout by hand: it port-forwards to a ready pod
// behind a Service and hands back a local address to talk HTTP (or any TCP
// protocol) to; AppRoute requests the fleet's app through its ingress, once
// (the traffic check) or continuously while a revision rolls out (WatchApp).
// It needs nothing on the cluster but the apiserver, so it works the same on
// kind, on a laptop and in CI.
package probe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// Forward is an open port-forward; Close ends it.
type Forward struct {
	// Addr is the local host:port that reaches the target.
	Addr string
	// Pod is the namespace/name of the pod behind the forward.
	Pod  string
	stop context.CancelFunc
	done chan struct{}
}

// Close stops forwarding and waits until the local listener is gone.
func (f *Forward) Close() {
	f.stop()
	<-f.done
}

// Target names a Service port to reach.
type Target struct {
	Namespace string
	Service   string
	// Port is the Service port (number); 0 picks the Service's first port.
	Port int32
}

func (t Target) String() string {
	return fmt.Sprintf("service %s/%s port %d", t.Namespace, t.Service, t.Port)
}

// ToService port-forwards a free local port to a ready pod that backs the
// Service port named by target.
func ToService(ctx context.Context, c *fluxobj.Clients, target Target) (*Forward, error) {
	cs := c.Kube
	svc, err := cs.CoreV1().Services(target.Namespace).Get(ctx, target.Service, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", target, err)
	}
	port, err := servicePort(svc, target.Port)
	if err != nil {
		return nil, err
	}
	selector := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
	pods, err := cs.CoreV1().Pods(target.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing pods behind %s: %w", target, err)
	}
	pod, err := readyPod(pods.Items)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	containerPort, err := resolveTargetPort(pod, port)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	return ToPod(ctx, c.Config, pod.Namespace, pod.Name, containerPort)
}

// ToPod port-forwards a free local port to a port of one pod.
func ToPod(ctx context.Context, cfg *rest.Config, namespace, name string, port int32) (*Forward, error) {
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("preparing port-forward to pod %s/%s: %w", namespace, name, err)
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.Host, "/") +
		fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", namespace, name))
	if err != nil {
		return nil, err
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	fwdCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddressesWithContext(fwdCtx, dialer, []string{"127.0.0.1"},
		[]string{fmt.Sprintf("0:%d", port)}, ready, io.Discard, io.Discard)
	if err != nil {
		stop()
		return nil, fmt.Errorf("port-forward to pod %s/%s:%d: %w", namespace, name, port, err)
	}
	f := &Forward{Pod: namespace + "/" + name, stop: stop, done: make(chan struct{})}
	errs := make(chan error, 1)
	go func() {
		defer close(f.done)
		errs <- pf.ForwardPorts()
	}()
	select {
	case <-ready:
	case err := <-errs:
		stop()
		return nil, fmt.Errorf("port-forward to pod %s/%s:%d: %w", namespace, name, port, err)
	case <-ctx.Done():
		f.Close()
		return nil, fmt.Errorf("port-forward to pod %s/%s:%d: %w", namespace, name, port, ctx.Err())
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		f.Close()
		return nil, fmt.Errorf("port-forward to pod %s/%s:%d: no local port: %v", namespace, name, port, err)
	}
	f.Addr = fmt.Sprintf("127.0.0.1:%d", ports[0].Local)
	return f, nil
}

func servicePort(svc *corev1.Service, want int32) (corev1.ServicePort, error) {
	if len(svc.Spec.Ports) == 0 {
		return corev1.ServicePort{}, fmt.Errorf("service %s/%s has no ports", svc.Namespace, svc.Name)
	}
	if want == 0 {
		return svc.Spec.Ports[0], nil
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == want {
			return p, nil
		}
	}
	return corev1.ServicePort{}, fmt.Errorf("service %s/%s has no port %d", svc.Namespace, svc.Name, want)
}

// readyPod picks a running pod whose Ready condition is true.
func readyPod(pods []corev1.Pod) (*corev1.Pod, error) {
	for i := range pods {
		p := &pods[i]
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return p, nil
			}
		}
	}
	return nil, fmt.Errorf("no ready pod among %d selected", len(pods))
}

// resolveTargetPort maps a Service port's targetPort (number or name) to the
// pod's container port.
func resolveTargetPort(pod *corev1.Pod, sp corev1.ServicePort) (int32, error) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, nil
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == tp.StrVal {
					return p.ContainerPort, nil
				}
			}
		}
		return 0, fmt.Errorf("pod %s/%s has no container port named %q", pod.Namespace, pod.Name, tp.StrVal)
	default:
		return sp.Port, nil
	}
}
