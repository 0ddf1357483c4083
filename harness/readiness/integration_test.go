package readiness

import (
	"bytes"
	"context"
	"errors"
	"slices"
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

// String is everything written so far.
func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// printedState reports whether the progress lines name object in state:
// each line is a time, the environment, the object and its state, then
// the reason.
func printedState(progress, object, state string) bool {
	for _, line := range strings.Split(progress, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[2] == object && f[3] == state {
			return true
		}
	}
	return false
}

// untilPrinted waits until the waiter's progress shows object in state, so
// that a status written next is a transition the waiter sees through its
// watch; false, with the waiter's result, when the wait ended first.
func untilPrinted(ctx context.Context, done <-chan waitResult, out *syncWriter, object, state string) (waitResult, bool) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !printedState(out.String(), object, state) {
		select {
		case r := <-done:
			return r, false
		case <-ctx.Done():
			return waitResult{err: ctx.Err()}, false
		case <-tick.C:
		}
	}
	return waitResult{}, true
}

// seenFlip reports whether the report has object turning Ready during the
// wait (not Ready already when it started).
func seenFlip(rep *Report, object string) bool {
	if rep == nil {
		return false
	}
	for _, o := range rep.Objects {
		if o.Object == object {
			return !o.AlreadyReady
		}
	}
	return false
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

const (
	// podGrace is the waiter's PodFailureGrace in these tests.
	podGrace = 10 * time.Second
	// pullFailureMargin covers scheduling, kubelet's first pull attempt of
	// an image that is nowhere, and two test lanes sharing the machine.
	pullFailureMargin = 50 * time.Second
)

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

	optsTo := func(out *syncWriter, ns string) Options {
		return Options{Env: "hx", Out: out, Namespaces: []string{ns}, Kinds: []string{"GitRepository", "Kustomization"},
			Require: []fluxobj.ObjectRef{{Kind: "Kustomization", Namespace: ns, Name: "root"}}, PodFailureGrace: podGrace}
	}
	opts := func(t *testing.T, ns string) Options { return optsTo(&syncWriter{t: t}, ns) }

	t.Run("ready flip is seen at once", func(t *testing.T) {
		const ns = "t-ready"
		createNamespace(t, ctx, dyn, ns)
		createSource(t, ctx, dyn, ns)
		createKustomization(t, ctx, dyn, ns, "root")
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		defer wcancel()
		out := &syncWriter{t: t}
		res := startWait(wctx, cfg, optsTo(out, ns))
		if r, ok := untilPrinted(wctx, res, out, "Kustomization/"+ns+"/root", "NotReady"); !ok {
			t.Fatalf("wait returned before Ready flipped: %v", r.err)
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
		// Only the watch can end this wait before its minute: the waiter
		// polls nothing. How soon is measured, not asserted (two test lanes
		// share the machine).
		took := r.at.Sub(flip)
		t.Logf("returned %s after the status write\n%s", took.Round(time.Millisecond), r.rep)
		if !seenFlip(r.rep, "Kustomization/"+ns+"/root") {
			t.Errorf("the report does not show Kustomization/%s/root turning Ready during the wait:\n%s", ns, r.rep)
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
		out := &syncWriter{t: t}
		res := startWait(wctx, cfg, optsTo(out, ns))
		if r, ok := untilPrinted(wctx, res, out, "Kustomization/"+ns+"/root", "NotReady"); !ok {
			t.Fatalf("wait returned before the status write: %v", r.err)
		}
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
		// Fast means by the watch, not by the wait's minute: a deadline
		// would be a NotReadyError, not this FailureError.
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
		// The grace is the waiter's own bound; scheduling and kubelet's
		// first pull attempt come on top, with a margin for a loaded machine.
		if limit := podGrace + pullFailureMargin; took > limit {
			t.Errorf("took %s, want within the pod grace %s plus %s", took, podGrace, pullFailureMargin)
		}
	})

	t.Run("timeout lists pending objects", func(t *testing.T) {
		const ns = "t-timeout"
		createNamespace(t, ctx, dyn, ns)
		createSource(t, ctx, dyn, ns)
		createKustomization(t, ctx, dyn, ns, "root")
		setStatus(t, ctx, dyn, ksGVR, ns, "root", map[string]any{"conditions": []any{
			condMap("Ready", "False", "DependencyNotReady", "dependency 't-timeout/infra' is not ready", time.Now())}})
		// The wait's context ends once the waiter has judged the
		// Kustomization, so a slow start cannot leave the list empty.
		bound, cancelBound := context.WithTimeout(ctx, time.Minute)
		defer cancelBound()
		wctx, wcancel := context.WithCancel(bound)
		defer wcancel()
		out := &syncWriter{t: t}
		res := startWait(wctx, cfg, optsTo(out, ns))
		if r, ok := untilPrinted(bound, res, out, "Kustomization/"+ns+"/root", "NotReady"); !ok {
			t.Fatalf("wait returned before judging the Kustomization: %v", r.err)
		}
		wcancel()
		r := <-res
		var nr *NotReadyError
		if !errors.As(r.err, &nr) || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("want *NotReadyError wrapping the context's end, got %v", r.err)
		}
		want := []Pending{{Object: "Kustomization/t-timeout/root", Reason: "DependencyNotReady", Message: "dependency 't-timeout/infra' is not ready"}}
		if !slices.Equal(nr.Pending, want) {
			t.Errorf("pending = %+v, want %+v", nr.Pending, want)
		}
	})
}
