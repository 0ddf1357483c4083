package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/probe"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
)

// clients are one environment's API clients, shared with the harness.
type clients = *fluxobj.Clients

func clientsFor(_ *testing.T, e *fleetenv.Environment) clients { return e.Clients }

func gvrOf(kind string) schema.GroupVersionResource {
	k, _ := fluxobj.KindOf(kind)
	return k.GVR()
}

// context for every failure message: the outcome of the environment's wait.
func waitOutcome(e *fleetenv.Environment) string {
	if e.Ready == nil {
		return ""
	}
	return fmt.Sprintf("\nthe environment's readiness wait failed: %v\n(diagnostics are printed in the setup log; artifacts and kubeconfig paths at their end)", e.Ready)
}

// settleBound is how long a check that the environment's wait saw pass
// may take to pass again: on a loaded machine a controller whose readiness
// probes time out is unavailable for a moment, and that is no fleet defect.
const settleBound = time.Minute

// settled runs check until it passes, for up to settleBound; once only
// when the environment's wait failed, so that a broken rollout is reported
// at once, with the wait's outcome.
func settled(ctx context.Context, t *testing.T, e *fleetenv.Environment, check func(g Gomega)) {
	t.Helper()
	g := NewWithT(t)
	if e.Ready != nil {
		check(g)
		return
	}
	g.Eventually(ctx, check).WithTimeout(settleBound).WithPolling(2 * time.Second).Should(Succeed())
}

func assertControllersAvailable(ctx context.Context, t *testing.T, e *fleetenv.Environment) {
	c := clientsFor(t, e)
	want := fleetenv.From(ctx).Options().FluxComponents
	if len(want) == 0 {
		want = fluxinstall.DefaultComponents()
	}
	var names []string
	settled(ctx, t, e, func(g Gomega) {
		deploys, err := c.Kube.AppsV1().Deployments(fluxobj.Namespace).List(ctx, metav1.ListOptions{})
		g.Expect(err).NotTo(HaveOccurred(), "listing Deployments in flux-system")
		names = nil
		for _, d := range deploys.Items {
			names = append(names, d.Name)
			g.Expect(deploymentAvailable(&d)).To(BeTrue(), "%s: Deployment flux-system/%s is not available: %s", e.Name, d.Name, deploymentConditions(&d))
		}
		for _, c := range want {
			g.Expect(names).To(ContainElement(c), "%s: Flux component %s is not installed", e.Name, c)
		}
	})
	t.Logf("%s: Flux controllers available: %s", e.Name, strings.Join(names, ", "))
}

func assertKustomizationReady(ctx context.Context, t *testing.T, e *fleetenv.Environment, name string) {
	c := clientsFor(t, e)
	var ks *unstructured.Unstructured
	settled(ctx, t, e, func(g Gomega) {
		var err error
		ks, err = c.Dynamic.Resource(gvrOf("Kustomization")).Namespace(fluxobj.Namespace).Get(ctx, name, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred(), "%s: reading Kustomization flux-system/%s (is it defined in clusters/%s?)%s", e.Name, name, e.Name, waitOutcome(e))
		g.Expect(ks).To(readiness.BeReady(), "%s%s", e.Name, waitOutcome(e))
	})
	rev, _, _ := unstructured.NestedString(ks.Object, "status", "lastAppliedRevision")
	t.Logf("%s: Kustomization flux-system/%s Ready at %s", e.Name, name, rev)
}

// assertNamespaceReady checks that a namespace the fleet owns holds at least
// one workload and that every workload and HelmRelease for it is Ready.
func assertNamespaceReady(ctx context.Context, t *testing.T, e *fleetenv.Environment, ns string) {
	c := clientsFor(t, e)
	var releases []*unstructured.Unstructured
	workloads := 0
	settled(ctx, t, e, func(g Gomega) {
		_, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred(), "%s: namespace %s (the fleet's infrastructure/%s) does not exist%s", e.Name, ns, ns, waitOutcome(e))
		releases = helmReleasesFor(ctx, g, c, ns)
		for _, hr := range releases {
			g.Expect(hr).To(readiness.BeReady(), "%s%s", e.Name, waitOutcome(e))
		}
		workloads = 0
		for _, gvr := range workloadGVRs {
			list, err := c.Dynamic.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred(), "listing %s in %s", gvr.Resource, ns)
			for i := range list.Items {
				workloads++
				assertCurrent(g, e, &list.Items[i])
			}
		}
		g.Expect(workloads).To(BeNumerically(">", 0), "%s: namespace %s has no Deployment, StatefulSet or DaemonSet%s", e.Name, ns, waitOutcome(e))
	})
	t.Logf("%s: %s Ready: %d workload(s), %d HelmRelease(s)", e.Name, ns, workloads, len(releases))
}

var workloadGVRs = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "apps", Version: "v1", Resource: "daemonsets"},
}

// helmReleasesFor lists the HelmReleases in ns or installing into ns.
func helmReleasesFor(ctx context.Context, g Gomega, c clients, ns string) []*unstructured.Unstructured {
	list, err := c.Dynamic.Resource(gvrOf("HelmRelease")).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) || err != nil && strings.Contains(err.Error(), "could not find the requested resource") {
		return nil // no HelmRelease CRD: a fleet of plain manifests
	}
	g.Expect(err).NotTo(HaveOccurred(), "listing HelmReleases")
	var out []*unstructured.Unstructured
	for i := range list.Items {
		hr := &list.Items[i]
		target, _, _ := unstructured.NestedString(hr.Object, "spec", "targetNamespace")
		if hr.GetNamespace() == ns || target == ns {
			out = append(out, hr)
		}
	}
	return out
}

func assertCurrent(g Gomega, e *fleetenv.Environment, obj *unstructured.Unstructured) {
	res, err := status.Compute(obj)
	g.Expect(err).NotTo(HaveOccurred(), "computing the status of %s %s/%s", obj.GetKind(), obj.GetNamespace(), obj.GetName())
	g.Expect(res.Status).To(Equal(status.CurrentStatus), "%s: %s %s/%s is %s: %s%s",
		e.Name, obj.GetKind(), obj.GetNamespace(), obj.GetName(), res.Status, res.Message, waitOutcome(e))
}

// assertInventoryReady checks every object a Kustomization applied: Flux
// objects must be Ready, everything else Current.
func assertInventoryReady(ctx context.Context, t *testing.T, e *fleetenv.Environment, name string) {
	c := clientsFor(t, e)
	checked := 0
	settled(ctx, t, e, func(g Gomega) {
		ks, err := c.Dynamic.Resource(gvrOf("Kustomization")).Namespace(fluxobj.Namespace).Get(ctx, name, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred(), "%s: reading Kustomization flux-system/%s%s", e.Name, name, waitOutcome(e))
		entries, _, _ := unstructured.NestedSlice(ks.Object, "status", "inventory", "entries")
		g.Expect(entries).NotTo(BeEmpty(), "%s: Kustomization flux-system/%s applied nothing%s", e.Name, name, waitOutcome(e))
		checked = 0
		for _, entry := range entries {
			id, _ := entry.(map[string]any)["id"].(string)
			ref, err := fluxobj.ParseInventoryID(id)
			g.Expect(err).NotTo(HaveOccurred())
			mapping, err := c.Mapper.RESTMapping(schema.GroupKind{Group: ref.Group, Kind: ref.Kind})
			g.Expect(err).NotTo(HaveOccurred(), "%s: mapping %s", e.Name, id)
			obj, err := c.Dynamic.Resource(mapping.Resource).Namespace(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred(), "%s: reading %s %s/%s", e.Name, ref.Kind, ref.Namespace, ref.Name)
			if fluxobj.IsFluxGroup(ref.Group) {
				g.Expect(obj).To(readiness.BeReady(), "%s%s", e.Name, waitOutcome(e))
			} else {
				assertCurrent(g, e, obj)
			}
			checked++
		}
	})
	t.Logf("%s: %d object(s) of Kustomization %s Ready", e.Name, checked, name)
}

// openAppRoute finds the app's Ingress host and port-forwards to the nginx
// ingress controller's Service (probe.OpenAppRoute, which the harness's
// upgrade checks and availability watch use too).
func openAppRoute(ctx context.Context, t *testing.T, e *fleetenv.Environment) *probe.AppRoute {
	t.Helper()
	g := NewWithT(t)
	route, err := probe.OpenAppRoute(ctx, clientsFor(t, e), e.Name)
	g.Expect(err).NotTo(HaveOccurred(), "%s: the route to the app through the nginx ingress%s", e.Name, waitOutcome(e))
	t.Cleanup(route.Close)
	return route
}

func assertTrafficReachesApp(ctx context.Context, t *testing.T, e *fleetenv.Environment) {
	g := NewWithT(t)
	route := openAppRoute(ctx, t, e)
	start := time.Now()
	// CheckApp asserts the answer: 200, the app's JSON, and — its pod's
	// hostname among the app's pods — proof that the request crossed the
	// ingress and landed on a pod of the app, not on an nginx default page.
	// Asked again for a while: Ready says the pods are, but the Service's
	// endpoints and kube-proxy's rules follow, and until then nginx answers
	// 502 (seconds on a loaded machine).
	var answer *probe.AppAnswer
	g.Eventually(func() error {
		var err error
		answer, err = route.CheckApp(ctx)
		return err
	}).WithTimeout(30*time.Second).WithPolling(time.Second).Should(Succeed(), "%s: through %s%s", e.Name, route.Forward.Pod, waitOutcome(e))
	g.Expect(answer.Pods).To(ContainElement(answer.Hostname), "%s: answer came from %q, which is not a pod of namespace %s", e.Name, answer.Hostname, route.Namespace)
	t.Logf("%s: GET http://%s/ via nginx (%s) answered by pod %s/%s in %s", e.Name, route.Host, route.Forward.Pod, route.Namespace, answer.Hostname, time.Since(start).Round(time.Millisecond))
}

func assertAppUsesRedis(ctx context.Context, t *testing.T, e *fleetenv.Environment) {
	g := NewWithT(t)
	route := openAppRoute(ctx, t, e)
	key, value := "e2e-"+e.Name+"-"+randomHex(4), "written-by-e2e-"+randomHex(8)

	code, body, err := route.Do(ctx, http.MethodPost, "/cache/"+key, strings.NewReader(value))
	g.Expect(err).NotTo(HaveOccurred(), "%s: POST /cache/%s", e.Name, key)
	g.Expect(code).To(BeElementOf(http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent),
		"%s: POST /cache/%s answered %d: %s", e.Name, key, code, probe.Truncate(body))
	code, body, err = route.Do(ctx, http.MethodGet, "/cache/"+key, nil)
	g.Expect(err).NotTo(HaveOccurred(), "%s: GET /cache/%s", e.Name, key)
	g.Expect(code).To(Equal(http.StatusOK), "%s: GET /cache/%s answered %d: %s", e.Name, key, code, probe.Truncate(body))
	g.Expect(string(body)).To(Equal(value), "%s: the app returned another value for %s", e.Name, key)

	// Read the key straight from the fleet's redis: the app must use that
	// redis, not a cache of its own.
	c := clientsFor(t, e)
	target, err := probe.ServiceWithPort(ctx, c, "redis", 6379)
	g.Expect(err).NotTo(HaveOccurred(), "%s: finding the redis Service", e.Name)
	fwd, err := probe.ToService(ctx, e.Clients, target)
	g.Expect(err).NotTo(HaveOccurred(), "%s: port-forward to %s", e.Name, target)
	defer fwd.Close()
	rdb := redis.NewClient(&redis.Options{Addr: fwd.Addr, DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second})
	defer rdb.Close()
	stored, err := rdb.Get(ctx, key).Result()
	g.Expect(err).NotTo(HaveOccurred(), "%s: GET %s from %s: the app did not store it in the fleet's redis", e.Name, key, target)
	g.Expect(stored).To(Equal(value))
	t.Logf("%s: app at %s wrote %s to redis %s (%s) and read it back", e.Name, route.Host, key, target, fwd.Pod)
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func deploymentConditions(d *appsv1.Deployment) string {
	var parts []string
	for _, c := range d.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	if len(parts) == 0 {
		return "no conditions yet"
	}
	return strings.Join(parts, "; ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
