package cluster

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// shortBound is the bound the waits below are given when they are meant
// to give up: a few of their polls, so that the tests stay quick.
const shortBound = 30 * time.Millisecond

func readyNode(name string, status corev1.ConditionStatus) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: status, Reason: "KubeletNotReady", Message: "container runtime network not ready",
		}}},
	}
}

func TestUntilNodesReady(t *testing.T) {
	if err := untilNodesReady(t.Context(), fake.NewClientset(readyNode("a", corev1.ConditionTrue)), time.Minute); err != nil {
		t.Errorf("a Ready node: %v", err)
	}
	err := untilNodesReady(t.Context(), fake.NewClientset(readyNode("a", corev1.ConditionFalse)), shortBound)
	want := "gave up waiting for its nodes to be Ready after 30ms; last: node a: Ready=False KubeletNotReady: container runtime network not ready"
	if err == nil || err.Error() != want {
		t.Errorf("a node not Ready: error = %v\nwant %s", err, want)
	}
	err = untilNodesReady(t.Context(), fake.NewClientset(), shortBound)
	if want := "gave up waiting for its nodes to be Ready after 30ms; last: no node has registered"; err == nil || err.Error() != want {
		t.Errorf("no node: error = %v\nwant %s", err, want)
	}
}

// The nodes' wait ends with the caller's context and keeps its cause.
func TestUntilNodesReadyStopped(t *testing.T) {
	stop := errors.New("interrupted")
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(shortBound, func() { cancel(stop) })
	err := untilNodesReady(ctx, fake.NewClientset(), time.Minute)
	var pe *poll.Error
	if !errors.As(err, &pe) || !errors.Is(err, stop) || pe.Bound != 0 {
		t.Errorf("error = %v; want a poll.Error for the caller's cause %q", err, stop)
	}
}

func kubernetesSlice(ready bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "kubernetes",
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		Ports:     []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](6443)}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"172.18.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}},
	}
}

func TestUntilAPIServerEndpoint(t *testing.T) {
	addr, err := untilAPIServerEndpoint(t.Context(), fake.NewClientset(kubernetesSlice(true)), time.Minute)
	if err != nil || addr != "172.18.0.2:6443" {
		t.Errorf("ready endpoint: %q, %v; want 172.18.0.2:6443", addr, err)
	}
	_, err = untilAPIServerEndpoint(t.Context(), fake.NewClientset(kubernetesSlice(false)), shortBound)
	want := "gave up waiting for the API server's endpoint in the kubernetes Service after 30ms; last: the kubernetes Service has no ready endpoint with an https port yet"
	if err == nil || err.Error() != want {
		t.Errorf("endpoint not ready: error = %v\nwant %s", err, want)
	}
}

func TestUntilServiceAddr(t *testing.T) {
	svc := func(clusterIP string) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller"},
			Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, Ports: []corev1.ServicePort{{Port: 80}}},
		}
	}
	addr, err := untilServiceAddr(t.Context(), fake.NewClientset(svc("10.96.0.20")), "flux-system", "source-controller")
	if err != nil || addr != "10.96.0.20:80" {
		t.Errorf("Service with a cluster IP: %q, %v; want 10.96.0.20:80", addr, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), shortBound)
	defer cancel()
	_, err = untilServiceAddr(ctx, fake.NewClientset(svc(corev1.ClusterIPNone)), "flux-system", "source-controller")
	var pe *poll.Error
	if !errors.As(err, &pe) {
		t.Fatalf("headless Service: error = %v (%T); want a *poll.Error", err, err)
	}
	want := "stopped waiting for Service flux-system/source-controller to have a cluster IP after " + pe.Waited.Round(time.Millisecond).String() +
		": context deadline exceeded; last: Service flux-system/source-controller has no cluster IP or port"
	if err.Error() != want {
		t.Errorf("headless Service: error = %v\nwant %s", err, want)
	}
}

func TestUntilClusterDNSReady(t *testing.T) {
	dnsService := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: clusterDNS.Namespace, Name: clusterDNS.Name}}
	dnsSlice := func(ready bool) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: clusterDNS.Namespace, Name: "kube-dns-x",
				Labels: map[string]string{discoveryv1.LabelServiceName: clusterDNS.Name}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}},
		}
	}
	absent, err := untilClusterDNSReady(t.Context(), fake.NewClientset())
	if err != nil || !absent {
		t.Errorf("no DNS Service: absent = %v, %v; want true, nil", absent, err)
	}
	absent, err = untilClusterDNSReady(t.Context(), fake.NewClientset(dnsService, dnsSlice(true)))
	if err != nil || absent {
		t.Errorf("ready endpoint: absent = %v, %v; want false, nil", absent, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), shortBound)
	defer cancel()
	_, err = untilClusterDNSReady(ctx, fake.NewClientset(dnsService, dnsSlice(false)))
	var pe *poll.Error
	if !errors.As(err, &pe) || pe.Last == nil {
		t.Fatalf("endpoint not ready: error = %v; want a *poll.Error with the last observation", err)
	}
	if want := "Service kube-system/kube-dns has no ready endpoint (CoreDNS pods not Ready)"; pe.Last.Error() != want || pe.What != "a ready endpoint of Service kube-system/kube-dns" {
		t.Errorf("endpoint not ready: waited for %q, last %q; want %q", pe.What, pe.Last, want)
	}
}

// TestUntilClusterDNSReadyWaitsOutARoll: a ready endpoint is not enough
// while CoreDNS's Deployment still rolls (old pods about to go); the wait
// names the Deployment and kstatus's reason, and ends once it is Current.
func TestUntilClusterDNSReadyWaitsOutARoll(t *testing.T) {
	dnsService := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: clusterDNS.Namespace, Name: clusterDNS.Name}}
	dnsSlice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: clusterDNS.Namespace, Name: "kube-dns-x",
			Labels: map[string]string{discoveryv1.LabelServiceName: clusterDNS.Name}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	coredns := func(total, updated int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: clusterDNSDeployment.Namespace, Name: clusterDNSDeployment.Name, Generation: 2},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: total, UpdatedReplicas: updated,
				ReadyReplicas: total, AvailableReplicas: total, Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
				}},
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), shortBound)
	defer cancel()
	_, err := untilClusterDNSReady(ctx, fake.NewClientset(dnsService, dnsSlice, coredns(3, 1)))
	var pe *poll.Error
	if !errors.As(err, &pe) || pe.Last == nil {
		t.Fatalf("CoreDNS rolling: error = %v; want a *poll.Error with the last observation", err)
	}
	if want := "Deployment kube-system/coredns is InProgress: "; !strings.HasPrefix(pe.Last.Error(), want) {
		t.Errorf("CoreDNS rolling: last %q; want it to start with %q", pe.Last, want)
	}
	done, cancelDone := context.WithTimeout(t.Context(), time.Minute)
	defer cancelDone()
	if _, err := untilClusterDNSReady(done, fake.NewClientset(dnsService, dnsSlice, coredns(2, 2))); err != nil {
		t.Errorf("CoreDNS rolled out: %v; want nil", err)
	}

	// Rolled out, but an old pod still terminating: a snapshot taken now
	// would see it vanish (seen in CI as a pod "removed" by a teardown).
	selected := coredns(2, 2)
	selected.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}}
	old := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: clusterDNSDeployment.Namespace, Name: "coredns-old-x",
		Labels: map[string]string{"k8s-app": "kube-dns"}, DeletionTimestamp: ptr.To(metav1.Now()), Finalizers: []string{"test"}}}
	ctx2, cancel2 := context.WithTimeout(t.Context(), shortBound)
	defer cancel2()
	_, err = untilClusterDNSReady(ctx2, fake.NewClientset(dnsService, dnsSlice, selected, old))
	if !errors.As(err, &pe) || pe.Last == nil || pe.Last.Error() != "Deployment kube-system/coredns rolled out, its old pod coredns-old-x still terminating" {
		t.Errorf("CoreDNS with a terminating pod: %v; want the wait to name the pod", err)
	}
	selected = coredns(2, 2)
	selected.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}}
	if _, err := untilClusterDNSReady(done, fake.NewClientset(dnsService, dnsSlice, selected)); err != nil {
		t.Errorf("CoreDNS rolled out, no pod terminating: %v; want nil", err)
	}
}

// quickenClusterDNS points CoreDNS at the API server's own endpoint and
// shortens its readiness period; a cluster without the Deployment is left
// alone, with a line in the log saying so.
func TestQuickenClusterDNS(t *testing.T) {
	coredns := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: clusterDNSDeployment.Namespace, Name: clusterDNSDeployment.Name},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "coredns", ReadinessProbe: &corev1.Probe{PeriodSeconds: 10}}},
		}}},
	}
	cs := fake.NewClientset(kubernetesSlice(true), coredns)
	var log bytes.Buffer
	services := serviceNetwork{name: "staging", cs: cs, log: newLineWriter(&log)}
	if err := services.quickenClusterDNS(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := cs.AppsV1().Deployments(coredns.Namespace).Get(t.Context(), coredns.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := got.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["KUBERNETES_SERVICE_HOST"] != "172.18.0.2" || env["KUBERNETES_SERVICE_PORT"] != "6443" {
		t.Errorf("coredns env = %v; want the API server endpoint 172.18.0.2:6443", c.Env)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.PeriodSeconds != dnsReadinessPeriod {
		t.Errorf("coredns readiness probe = %+v; want period %d", c.ReadinessProbe, dnsReadinessPeriod)
	}

	log.Reset()
	services.cs = fake.NewClientset(kubernetesSlice(true))
	if err := services.quickenClusterDNS(t.Context()); err != nil {
		t.Errorf("no coredns Deployment: %v; want nil", err)
	}
	if want := "cluster staging: no Deployment kube-system/coredns: cluster DNS left as it is\n"; log.String() != want {
		t.Errorf("no coredns Deployment: log %q; want %q", log.String(), want)
	}
}

// The waits of a serviceNetwork name the cluster in their errors and log.
func TestServiceNetworkNamesCluster(t *testing.T) {
	var log bytes.Buffer
	services := serviceNetwork{name: "staging", cs: fake.NewClientset(), log: newLineWriter(&log)}
	if err := services.waitClusterDNS(t.Context()); err != nil {
		t.Errorf("no DNS Service: %v; want nil", err)
	}
	if want := "cluster staging: no Service kube-system/kube-dns: not waiting for the cluster DNS\n"; log.String() != want {
		t.Errorf("no DNS Service: log %q; want %q", log.String(), want)
	}
	ctx, cancel := context.WithTimeout(t.Context(), shortBound)
	defer cancel()
	_, err := services.apiServerEndpoint(ctx)
	if err == nil || !strings.HasPrefix(err.Error(), "cluster staging: ") {
		t.Errorf("no kubernetes endpoint: error = %v; want one starting with the cluster's name", err)
	}
}
