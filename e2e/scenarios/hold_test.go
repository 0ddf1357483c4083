package scenarios

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
)

// secondRunCannotTakeTheCluster: while the shared cluster's run is live, a
// second run with the same cluster names — recreating or reusing — stops at
// the clusters step, names the run that holds them, and leaves the live
// cluster and its kubeconfig as they were.
func secondRunCannotTakeTheCluster(t *testing.T, shared *sharedCluster) {
	requireKind(t)
	if shared.run == nil || shared.dirty {
		t.Fatalf("not run: the shared cluster is not up (last: %s)", shared.last)
	}
	live := shared.run.Env("staging")
	kubeconfig, err := os.ReadFile(live.Cluster.KubeconfigPath)
	if err != nil {
		t.Fatalf("reading the live run's kubeconfig: %v", err)
	}
	for _, reuse := range []bool{false, true} {
		opts := shared.run.Options()
		opts.Reuse = reuse
		second := fleetenv.New(opts, testWriter{t})
		start := time.Now()
		err := second.Up(contextBeforeTestTimeout(t))
		if derr := second.Down(t.Context()); derr != nil {
			t.Errorf("reuse=%t: tearing the second run down: %v", reuse, derr)
		}
		var held *cluster.HeldError
		if !errors.As(err, &held) {
			t.Fatalf("reuse=%t: the second run returned %v, want a *cluster.HeldError for %s", reuse, err, live.Cluster.Name)
		}
		if held.Name != live.Cluster.Name || held.Holder.PID != os.Getpid() || !strings.HasPrefix(err.Error(), "clusters: ") {
			t.Errorf("reuse=%t: %v: want cluster %s held by pid %d, reported by the clusters step", reuse, err, live.Cluster.Name, os.Getpid())
		}
		t.Logf("reuse=%t: refused in %s: %v", reuse, time.Since(start).Round(time.Millisecond), err)
	}
	after, err := os.ReadFile(live.Cluster.KubeconfigPath)
	if err != nil || string(after) != string(kubeconfig) {
		t.Errorf("the live run's kubeconfig %s changed or went (%v)", live.Cluster.KubeconfigPath, err)
	}
	if _, err := live.Clients.Kube.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("the live cluster %s no longer answers: %v", live.Cluster.Name, err)
	}
}
