package scenarios

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/probe"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// refusalBound is how fast a cluster that is not opted in must be refused:
// the opt-in check's own bound (20 s) is for a slow API server, a local one
// answers its few reads at once.
const refusalBound = 10 * time.Second

// TestExistingCluster runs the flow on a cluster the harness did not
// create, reached by a kubeconfig only: a kind cluster made here as if it
// were someone else's (the fleet server's image loaded into it, as a
// registry would serve it), opted in with the kube-system label. The Helm
// fixture fleet comes up through the in-cluster fleet server, traffic and
// redis work through the API server, an edit re-syncs; the teardown leaves
// exactly the objects that were there before; the user's kubeconfig appears
// in no log or artifact. Then a namespace of the owner's that the fleet
// declares too is planted, and the label removed: each time the cluster is
// refused within seconds, unchanged.
func TestExistingCluster(t *testing.T) {
	t.Parallel() // see parallelNote
	fleet := t.TempDir()
	copyFleet(t, fleet, "helm")
	opts := options(t, fleet, "")
	requireKit(t, opts)
	image := opts.FleetServerImage()
	if image == "" {
		msg := "the kit has no fleet server image (FLEET_SERVER_IMAGE): rebuild it with go run ./hack/kit"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	foreign := foreignCluster(t, opts, image)
	token := "planted-" + randomHex(t, 16)
	kubeconfig, kubeContext := plantedKubeconfig(t, foreign, token)
	setOptIn(t, foreign, true)
	// A killed run's Lease, expired: the run below takes it over.
	plantRunLease(t, foreign, "dead-host/1/killed-run", 2*time.Minute)
	before := listObjects(t, foreign)

	opts.Clusters, opts.Kubeconfig, opts.Servers = fleetenv.ProviderKubeconfig, kubeconfig, fleetenv.ServersCluster
	opts.Contexts = map[string]string{"staging": kubeContext}
	opts.ArtifactsDir, opts.WorkDir = t.TempDir(), t.TempDir()
	var log testsupport.SyncBuffer
	run := fleetenv.New(opts, io.MultiWriter(testWriter{t}, &log))
	err := run.Up(contextBeforeTestTimeout(t))
	if err != nil {
		_ = run.Down(context.Background())
		t.Fatalf("bring-up on an existing cluster: %v", err)
	}
	e := run.Env("staging")
	if e.Ready != nil {
		_ = run.Down(context.Background())
		t.Fatalf("the Helm fixture fleet did not converge on the existing cluster: %v", e.Ready)
	}
	checkTrafficAndRedis(t, e)
	// A second run on the same context while this one is live.
	err = refusedRun(t, opts, foreign, "a cluster another run holds")
	if !strings.Contains(err.Error(), "another flux-fleet run holds it (Lease kube-system/flux-fleet-run, renewed") {
		t.Errorf("a second run on a held cluster: %v; want a refusal naming the holding run", err)
	}
	resync, err := run.Publisher().Republish(contextBeforeTestTimeout(t))
	if err != nil || e.Ready != nil {
		t.Errorf("re-sync on the existing cluster: %v (ready: %v)", err, e.Ready)
	}
	t.Logf("timings on an existing cluster: bring-up (servers + Flux + fleet green) %s, re-sync %s (goals 30s and 3s)",
		bringUpTime(run).Round(100*time.Millisecond), resync.Round(100*time.Millisecond))
	crashFixLoop(t, run, fleet)
	if err := run.Down(context.Background()); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	assertSameObjects(t, "the teardown", before, listObjects(t, foreign))
	if _, err := kubeClient(t, foreign).CoordinationV1().Leases(cluster.RunLeaseNamespace).Get(t.Context(), cluster.RunLeaseName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Lease %s/%s after the teardown: %v; want it released (gone)", cluster.RunLeaseNamespace, cluster.RunLeaseName, err)
	}
	assertTokenNowhere(t, token, log.String(), opts.ArtifactsDir, opts.WorkDir)

	// The owner's own namespace that the fleet also declares: taking it
	// over would have the teardown delete it with everything in it.
	plantOwnersNamespace(t, foreign, "redis")
	err = refusedRun(t, opts, foreign, "a namespace the fleet declares")
	if !strings.Contains(err.Error(), "it already holds Namespace/redis, which the fleet declares for staging") {
		t.Errorf("a cluster holding the owner's Namespace redis: %v; want a refusal naming Namespace/redis", err)
	}
	// The same namespace as a Flux that is gone left it (flux uninstall
	// keeps what it applied, labels and all): still not the harness's.
	labelAsAppliedBy(t, foreign, "redis", "flux-system", "infrastructure")
	err = refusedRun(t, opts, foreign, "a namespace a departed Flux applied")
	if !strings.Contains(err.Error(), "it already holds Namespace/redis, which the fleet declares for staging") {
		t.Errorf("a cluster holding Namespace redis applied by another Flux: %v; want a refusal naming Namespace/redis", err)
	}

	setOptIn(t, foreign, false)
	err = refusedRun(t, opts, foreign, "an unmarked cluster")
	if !strings.Contains(err.Error(), "kubectl --context "+kubeContext+" label namespace kube-system "+cluster.AllowLabel+"=true") {
		t.Errorf("an unmarked cluster: %v; want the kubectl command to opt in", err)
	}
}

// refusedRun runs the flow on foreign, which must refuse it at its clusters
// step within refusalBound and change nothing; it returns the refusal.
func refusedRun(t *testing.T, opts fleetenv.Options, foreign *cluster.Cluster, what string) error {
	t.Helper()
	objects := listObjects(t, foreign)
	refused := fleetenv.New(opts, testWriter{t})
	err := refused.Up(contextBeforeTestTimeout(t))
	_ = refused.Down(context.Background())
	var took time.Duration
	for _, s := range refused.Timings() {
		if s.Name == "clusters" {
			took = s.Took
		}
	}
	var refusal *cluster.RefusedError
	if !errors.As(err, &refusal) {
		t.Fatalf("%s: %v; want a *cluster.RefusedError", what, err)
	}
	if took > refusalBound {
		t.Errorf("%s was refused after %s, want within %s", what, took, refusalBound)
	}
	assertSameObjects(t, "the refusal of "+what, objects, listObjects(t, foreign))
	t.Logf("%s refused in %s: %v", what, took.Round(10*time.Millisecond), err)
	return err
}

// plantRunLease makes the run Lease as a run that renewed it age ago and
// died would have left it.
func plantRunLease(t *testing.T, c *cluster.Cluster, holder string, age time.Duration) {
	t.Helper()
	renewed := metav1.NewMicroTime(time.Now().Add(-age))
	seconds := int32(60)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: cluster.RunLeaseName, Namespace: cluster.RunLeaseNamespace},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &renewed},
	}
	if _, err := kubeClient(t, c).CoordinationV1().Leases(cluster.RunLeaseNamespace).Create(t.Context(), lease, metav1.CreateOptions{}); err != nil {
		t.Fatalf("planting a dead run's Lease: %v", err)
	}
}

func kubeClient(t *testing.T, c *cluster.Cluster) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// plantOwnersNamespace makes a namespace with a ConfigMap in it, as the
// cluster's owner would, without any Flux label.
func plantOwnersNamespace(t *testing.T, c *cluster.Cluster, name string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("planting Namespace %s: %v", name, err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owners-data", Namespace: name}, Data: map[string]string{"keep": "me"}}
	if _, err := cs.CoreV1().ConfigMaps(name).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("planting ConfigMap %s/owners-data: %v", name, err)
	}
}

// labelAsAppliedBy labels Namespace name as kustomize-controller labels
// what the Kustomization ksNamespace/ksName applied.
func labelAsAppliedBy(t *testing.T, c *cluster.Cluster, name, ksNamespace, ksName string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{"kustomize.toolkit.fluxcd.io/name":%q,"kustomize.toolkit.fluxcd.io/namespace":%q}}}`, ksName, ksNamespace)
	if _, err := kubeClient(t, c).CoreV1().Namespaces().Patch(t.Context(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("labelling Namespace %s as applied by %s/%s: %v", name, ksNamespace, ksName, err)
	}
}

// crashFixLoop is the reproduce-fix-re-run loop on the existing cluster, as
// on a kept kind cluster: the fleet cleared off, a crashing app published
// fails fast (diagnosed: its artifacts must not hold the kubeconfig either),
// the fix published converges.
func crashFixLoop(t *testing.T, run *fleetenv.Run, fleet string) {
	t.Helper()
	ctx := contextBeforeTestTimeout(t)
	if _, err := run.Publisher().Clear(ctx); err != nil {
		t.Fatalf("clearing the Helm fleet off the existing cluster: %v", err)
	}
	copyFleet(t, fleet, "crashing-app")
	took, err := run.Publisher().Republish(ctx)
	if err != nil {
		t.Fatalf("publishing the crashing app: %v", err)
	}
	e := run.Env("staging")
	assertFailedFast(t, e, took, failure{regexp.MustCompile(`^Pod/apps/fleet-app-[a-z0-9]+-[a-z0-9]+$`), "CrashLoopBackOff",
		regexp.MustCompile(`last exit code 1 \(Error\), [1-9] restarts`), nil})
	t.Logf("fixed %s; publishing", fixCrash(t, fleet))
	took, err = run.Publisher().Republish(ctx)
	if err != nil || e.Ready != nil {
		t.Fatalf("the fix on the existing cluster: %v (ready: %v)", err, e.Ready)
	}
	t.Logf("fix green %s after publishing", took.Round(100*time.Millisecond))
}

// bringUpTime is what a bring-up costs on a cluster that exists: the steps
// from connecting to it to the fleet green, without the checks before any
// cluster.
func bringUpTime(run *fleetenv.Run) time.Duration {
	var total time.Duration
	for _, s := range run.Timings() {
		switch s.Name {
		case "clusters", "servers", "flux install", "sync", "wait":
			total += s.Took
		}
	}
	return total
}

// foreignCluster creates a kind cluster from the kit as if it were someone
// else's, with the fleet server's image in its nodes, and deletes it when
// the test ends. Its name is fixed, as every scenario's is: a run that was
// killed leaves a cluster the next run recreates, not one nobody deletes.
func foreignCluster(t *testing.T, opts fleetenv.Options, image string) *cluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(contextBeforeTestTimeout(t), cluster.DefaultCreateTimeout)
	defer cancel()
	c, err := cluster.Create(ctx, cluster.Spec{
		Name:       "ff-foreign",
		NodeImage:  opts.Kit.NodeImage,
		KindConfig: opts.Kit.KindConfig,
		WorkDir:    t.TempDir(),
		// The kit's images are in its node image; the server's is not.
		PreloadImages:  append([]string{image}, opts.Kit.PreloadImages...),
		ServiceNetwork: true,
		Log:            cluster.LogfWriter(t.Logf),
	})
	if err != nil {
		t.Fatalf("creating the foreign cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.Background()); err != nil {
			t.Errorf("deleting the foreign cluster %s: %v", c.Name, err)
		}
	})
	return c
}

// plantedKubeconfig writes the foreign cluster's kubeconfig to a file of
// the test's, with an unused user whose token must go nowhere, and returns
// the file and the cluster's context.
func plantedKubeconfig(t *testing.T, c *cluster.Cluster, token string) (path, contextName string) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	contextName = cfg.CurrentContext
	ctx, ok := cfg.Contexts[contextName]
	if !ok {
		t.Fatalf("kubeconfig %s has no current context", c.KubeconfigPath)
	}
	cfg.AuthInfos["planted"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["planted"] = &clientcmdapi.Context{Cluster: ctx.Cluster, AuthInfo: "planted"}
	path = filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path, contextName
}

// setOptIn sets or removes the opt-in label on kube-system, as a user would.
func setOptIn(t *testing.T, c *cluster.Cluster, allow bool) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	value := `"` + cluster.AllowValue + `"`
	if !allow {
		value = "null"
	}
	patch := []byte(`{"metadata":{"labels":{"` + cluster.AllowLabel + `":` + value + `}}}`)
	if _, err := cs.CoreV1().Namespaces().Patch(t.Context(), metav1.NamespaceSystem, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("labeling kube-system: %v", err)
	}
}

func listObjects(t *testing.T, c *cluster.Cluster) []cluster.ObjectID {
	t.Helper()
	objs, err := cluster.ListObjects(t.Context(), c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// assertSameObjects fails with every object that came or went during what.
func assertSameObjects(t *testing.T, what string, before, after []cluster.ObjectID) {
	t.Helper()
	gone, added := cluster.DiffObjects(before, after)
	for _, o := range gone {
		t.Errorf("%s removed %s, which was there before", what, o)
	}
	for _, o := range added {
		t.Errorf("%s left %s, which was not there before", what, o)
	}
	if len(gone)+len(added) == 0 {
		t.Logf("%s: the same %d objects as before (%d kinds of churn ignored: cluster.IgnoredResources)", what, len(after), len(cluster.IgnoredResources()))
	}
}

// checkTrafficAndRedis requests the app through the ingress and has it
// write and read redis, both through port-forwards by the API server: the
// only way into a cluster reached by kubeconfig.
func checkTrafficAndRedis(t *testing.T, e *fleetenv.Environment) {
	t.Helper()
	ctx := contextBeforeTestTimeout(t)
	route, err := probe.OpenAppRoute(ctx, e.Clients, e.Name)
	if err != nil {
		t.Fatalf("the route to the app through the ingress: %v", err)
	}
	defer route.Close()
	answer, err := route.CheckApp(ctx)
	if err != nil {
		t.Fatalf("traffic through %s: %v", route.Forward.Pod, err)
	}
	t.Logf("GET http://%s/ answered by pod %s", route.Host, answer.Hostname)
	key, value := "existing-"+randomHex(t, 4), "written-"+randomHex(t, 8)
	if code, body, err := route.Do(ctx, http.MethodPost, "/cache/"+key, strings.NewReader(value)); err != nil || code >= 300 {
		t.Fatalf("POST /cache/%s: %d %v: %s", key, code, err, probe.Truncate(body))
	}
	code, body, err := route.Do(ctx, http.MethodGet, "/cache/"+key, nil)
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), value) {
		t.Fatalf("GET /cache/%s: %d %v: %s; want %q back from redis", key, code, err, probe.Truncate(body), value)
	}
}

// assertTokenNowhere fails when the kubeconfig's planted token is in the
// run's log or in any file under dirs.
func assertTokenNowhere(t *testing.T, token, log string, dirs ...string) {
	t.Helper()
	if strings.Contains(log, token) {
		t.Error("the run's log holds the token of the user's kubeconfig")
	}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err == nil && strings.Contains(string(data), token) {
				t.Errorf("%s holds the token of the user's kubeconfig", path)
			}
			return err
		})
		if err != nil {
			t.Errorf("reading %s: %v", dir, err)
		}
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
