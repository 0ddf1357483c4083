package readiness

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Real-apiserver tests run on a kind cluster from the offline kit profile
// (see harness/internal/kindtest): this machine has no registry.
// No Flux controller runs: the tests write Flux status themselves to drive
// every transition the waiter must see.

var (
	gitGVR  = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	ksGVR   = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	nsGVR   = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	depGVR  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	testRev = "main@sha1:0123456789abcdef0123456789abcdef01234567"
)

func createNamespace(t *testing.T, ctx context.Context, dyn dynamic.Interface, name string) {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	if _, err := dyn.Resource(nsGVR).Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

func condMap(t, status, reason, msg string, at time.Time) map[string]any {
	return map[string]any{"type": t, "status": status, "reason": reason, "message": msg, "lastTransitionTime": at.UTC().Format(time.RFC3339)}
}

// setStatus writes status (with observedGeneration = generation) through the
// status subresource, as a Flux controller would, and returns when the write
// was sent.
func setStatus(t *testing.T, ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string, status map[string]any) time.Time {
	t.Helper()
	u, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting %s/%s: %v", ns, name, err)
	}
	status["observedGeneration"] = u.GetGeneration()
	u.Object["status"] = status
	sent := time.Now()
	if _, err := dyn.Resource(gvr).Namespace(ns).UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating status of %s/%s: %v", ns, name, err)
	}
	return sent
}

// createSource makes a Ready GitRepository src in ns with artifact testRev.
func createSource(t *testing.T, ctx context.Context, dyn dynamic.Interface, ns string) {
	t.Helper()
	git := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
		"metadata": map[string]any{"namespace": ns, "name": "src"},
		"spec":     map[string]any{"interval": "1m", "url": "http://git.invalid/fleet.git", "ref": map[string]any{"branch": "main"}},
	}}
	if _, err := dyn.Resource(gitGVR).Namespace(ns).Create(ctx, git, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating GitRepository: %v", err)
	}
	now := time.Now()
	setStatus(t, ctx, dyn, gitGVR, ns, "src", map[string]any{
		"artifact": map[string]any{"path": "gitrepository/x/src/a.tar.gz", "url": "http://source-controller/a.tar.gz", "revision": testRev,
			"digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "lastUpdateTime": now.UTC().Format(time.RFC3339)},
		"conditions": []any{condMap("Ready", "True", "Succeeded", "stored artifact for revision "+testRev, now)},
	})
}

func createKustomization(t *testing.T, ctx context.Context, dyn dynamic.Interface, ns, name string) {
	t.Helper()
	ks := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec": map[string]any{"interval": "10m", "prune": true, "path": "./clusters/test",
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "src"}},
	}}
	if _, err := dyn.Resource(ksGVR).Namespace(ns).Create(ctx, ks, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Kustomization: %v", err)
	}
	setStatus(t, ctx, dyn, ksGVR, ns, name, map[string]any{
		"conditions": []any{condMap("Ready", "Unknown", "Progressing", "Reconciliation in progress", time.Now())},
	})
}

// syncWriter lets progress lines be read while the waiter writes them.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
	t  *testing.T
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Logf("progress: %s", strings.TrimRight(string(p), "\n"))
	return w.b.Write(p)
}

type waitResult struct {
	rep *Report
	err error
	at  time.Time
}

func startWait(ctx context.Context, cfg *rest.Config, opts Options) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		c, err := fluxobj.NewClients(cfg)
		if err != nil {
			ch <- waitResult{nil, err, time.Now()}
			return
		}
		rep, err := WaitForFlux(ctx, c, opts)
		ch <- waitResult{rep, err, time.Now()}
	}()
	return ch
}

func TestIntegrationWaitForFlux(t *testing.T) {
	kit := kindtest.Require(t, kindtest.FluxManifestsVar)
	cfg := kit.Cluster(t, "hx-ready").RESTConfig
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kit.ApplyFluxCRDs(ctx, t, cfg)

	opts := func(t *testing.T, ns string) Options {
		return Options{Env: "hx", Out: &syncWriter{t: t}, Namespaces: []string{ns}, Kinds: []string{"GitRepository", "Kustomization"},
			Require: []fluxobj.ObjectRef{{Kind: "Kustomization", Namespace: ns, Name: "root"}}, PodFailureGrace: 10 * time.Second}
	}

	t.Run("ready flip is seen at once", func(t *testing.T) {
		const ns = "t-ready"
		createNamespace(t, ctx, dyn, ns)
		createSource(t, ctx, dyn, ns)
		createKustomization(t, ctx, dyn, ns, "root")
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		defer wcancel()
		res := startWait(wctx, cfg, opts(t, ns))
		time.Sleep(3 * time.Second)
		select {
		case r := <-res:
			t.Fatalf("wait returned before Ready flipped: %v", r.err)
		default:
		}
		// The condition's time is stamped before setStatus reads the object:
		// measure from that stamp so the GET's round trip stays inside the bound.
		stamped := time.Now()
		_ = setStatus(t, ctx, dyn, ksGVR, ns, "root", map[string]any{
			"lastAppliedRevision": testRev, "lastAttemptedRevision": testRev,
			"conditions": []any{condMap("Ready", "True", "ReconciliationSucceeded", "Applied revision: "+testRev, stamped)},
		})
		flip := stamped
		r := <-res
		if r.err != nil {
			t.Fatalf("WaitForFlux: %v", r.err)
		}
		took := r.at.Sub(flip)
		t.Logf("returned %s after the status write\n%s", took.Round(time.Millisecond), r.rep)
		// Generous bound: CI machines run several kind clusters on two cores.
		if took > 5*time.Second {
			t.Errorf("wait returned %s after Ready flipped, want < 5s", took)
		}
		for _, o := range r.rep.Objects {
			if o.Object == "Kustomization/t-ready/root" {
				t.Logf("flip->seen latency %s (lastTransitionTime has second granularity)", o.Latency)
				// lastTransitionTime is truncated to seconds: up to 1s extra.
				if o.Latency < 0 || o.Latency > took+time.Second {
					t.Errorf("latency %s out of range", o.Latency)
				}
			}
		}
	})

	failFast := func(t *testing.T, ns string, status map[string]any, reason string, terminal bool) {
		createNamespace(t, ctx, dyn, ns)
		createSource(t, ctx, dyn, ns)
		createKustomization(t, ctx, dyn, ns, "root")
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		defer wcancel()
		res := startWait(wctx, cfg, opts(t, ns))
		time.Sleep(2 * time.Second)
		flip := setStatus(t, ctx, dyn, ksGVR, ns, "root", status)
		r := <-res
		var fe *FailureError
		if !errors.As(r.err, &fe) {
			t.Fatalf("want *FailureError, got %v", r.err)
		}
		t.Logf("failed %s after the status write: %v", r.at.Sub(flip).Round(time.Millisecond), fe)
		if fe.Reason != reason || fe.Terminal != terminal || fe.Object != "Kustomization/"+ns+"/root" {
			t.Errorf("failure = %+v", fe)
		}
		if r.at.Sub(flip) > 5*time.Second {
			t.Errorf("fail-fast took %s", r.at.Sub(flip))
		}
	}
	t.Run("stalled fails fast", func(t *testing.T) {
		now := time.Now()
		failFast(t, "t-stalled", map[string]any{"lastAttemptedRevision": testRev, "conditions": []any{
			condMap("Ready", "False", "InvalidPath", "path ./nope not found", now),
			condMap("Stalled", "True", "InvalidPath", "path ./nope not found", now),
		}}, "InvalidPath", true)
	})
	t.Run("build failure on current revision fails fast", func(t *testing.T) {
		failFast(t, "t-build", map[string]any{"lastAttemptedRevision": testRev, "conditions": []any{
			condMap("Ready", "False", "BuildFailed", "kustomize build failed: accumulating resources: missing.yaml: no such file or directory", time.Now()),
		}}, "BuildFailed", true)
	})

	t.Run("unpullable image fails within grace", func(t *testing.T) {
		const ns = "t-pull"
		createNamespace(t, ctx, dyn, ns)
		createSource(t, ctx, dyn, ns)
		createKustomization(t, ctx, dyn, ns, "root")
		setStatus(t, ctx, dyn, ksGVR, ns, "root", map[string]any{
			"lastAppliedRevision": testRev, "lastAttemptedRevision": testRev,
			"inventory":  map[string]any{"entries": []any{map[string]any{"id": ns + "_bad_apps_Deployment", "v": "v1"}}},
			"conditions": []any{condMap("Ready", "True", "ReconciliationSucceeded", "Applied", time.Now())},
		})
		dep := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"namespace": ns, "name": "bad"},
			"spec": map[string]any{
				"replicas": int64(1),
				"selector": map[string]any{"matchLabels": map[string]any{"app": "bad"}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"app": "bad"}},
					"spec": map[string]any{"containers": []any{map[string]any{
						"name": "app", "image": "fleet-kit/does-not-exist:v0", "imagePullPolicy": string(corev1.PullIfNotPresent)}}},
				},
			},
		}}
		created := time.Now()
		if _, err := dyn.Resource(depGVR).Namespace(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating Deployment: %v", err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer wcancel()
		r := <-startWait(wctx, cfg, opts(t, ns))
		var fe *FailureError
		if !errors.As(r.err, &fe) {
			t.Fatalf("want *FailureError, got %v", r.err)
		}
		took := r.at.Sub(created)
		t.Logf("failed %s after the Deployment was created: %v", took.Round(time.Millisecond), fe)
		if fe.Reason != fluxobj.ImagePullReason {
			t.Errorf("reason = %q, want %s", fe.Reason, fluxobj.ImagePullReason)
		}
		if fe.Owner != "Deployment/"+ns+"/bad" || fe.Image != "fleet-kit/does-not-exist:v0" || fe.Container != "app" {
			t.Errorf("failure fields = %+v", fe)
		}
		if limit := 10*time.Second + 10*time.Second; took > limit {
			t.Errorf("took %s, want < %s", took, limit)
		}
	})

	t.Run("timeout lists pending objects", func(t *testing.T) {
		const ns = "t-timeout"
		createNamespace(t, ctx, dyn, ns)
		createSource(t, ctx, dyn, ns)
		createKustomization(t, ctx, dyn, ns, "root")
		setStatus(t, ctx, dyn, ksGVR, ns, "root", map[string]any{"conditions": []any{
			condMap("Ready", "False", "DependencyNotReady", "dependency 't-timeout/infra' is not ready", time.Now())}})
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
		defer wcancel()
		r := <-startWait(wctx, cfg, opts(t, ns))
		var nr *NotReadyError
		if !errors.As(r.err, &nr) || !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("want *NotReadyError wrapping the deadline, got %v", r.err)
		}
		if !strings.Contains(nr.Error(), "Kustomization/t-timeout/root  DependencyNotReady: dependency 't-timeout/infra' is not ready") {
			t.Errorf("error lacks the pending object: %v", nr)
		}
	})
}
