package cluster_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest"
)

// containers lists the docker containers of a kind cluster, running or not.
func containers(t *testing.T, name string) []string {
	t.Helper()
	// Not t.Context: cleanups call this after it has ended.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "ps", "-a", "-q", "--no-trunc", "--filter", "label=io.x-k8s.kind.cluster="+name).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	ids := strings.Fields(string(out))
	slices.Sort(ids)
	return ids
}

// fixtureLabel marks the foreign cluster this test makes: not flux-fleet's
// marker, so the harness must still refuse it, but the test's own, so that
// a run killed during the test leaves a cluster the next run deletes.
const fixtureLabel = "flux-fleet-test/foreign-fixture"

// fixtureConfig is the kit's kind config with fixtureLabel on every node.
func fixtureConfig(t *testing.T, raw []byte) *v1alpha4.Cluster {
	t.Helper()
	cfg, err := cluster.ParseKindConfig(raw)
	if err != nil {
		t.Fatalf("decoding the kit's kind config: %v", err)
	}
	cluster.WithNodeLabels(cfg, map[string]string{fixtureLabel: "true"})
	return cfg
}

// deleteFixtureLeftover deletes a cluster named name that an earlier,
// killed run of this test left (its nodes carry fixtureLabel), and fails
// the test for one that is someone else's.
func deleteFixtureLeftover(t *testing.T, provider *kindcluster.Provider, name string) {
	t.Helper()
	nodes := containers(t, name)
	if len(nodes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, node := range nodes {
		// kind keeps each node's kubelet labels in its kubeadm config;
		// docker cp reads a stopped container's files too.
		conf, err := exec.CommandContext(ctx, "docker", "cp", node+":/kind/kubeadm.conf", "-").Output()
		if err != nil {
			t.Fatalf("a cluster named %s exists and its node container %s cannot be read (%v): delete it if it is not someone's (kind delete cluster --name %s)", name, node, err, name)
		}
		if !strings.Contains(string(conf), fixtureLabel+"=true") {
			t.Fatalf("a cluster named %s exists and this test did not make it (node container %s lacks the label %s): delete it (kind delete cluster --name %s)", name, node, fixtureLabel, name)
		}
	}
	t.Logf("deleting cluster %s, left by a run of this test that was killed", name)
	// An explicit kubeconfig path keeps kind away from the user's.
	if err := provider.Delete(name, filepath.Join(t.TempDir(), "leftover.kubeconfig")); err != nil {
		t.Fatalf("deleting the leftover cluster %s: %v", name, err)
	}
}

// TestIntegrationForeignClusterLeftAlone makes a kind cluster the way a
// user would (kind's library, no harness, so no marker) under the name the
// harness wants, and checks that the harness refuses it with the exact
// message, creates nothing else, and leaves it running, with and without
// reuse.
func TestIntegrationForeignClusterLeftAlone(t *testing.T) {
	kit := kindtest.Require(t)
	const prefix = "safety-"
	staging, production := prefix+"staging", prefix+"production"
	foreignKubeconfig := filepath.Join(t.TempDir(), "foreign.kubeconfig")
	provider := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
	deleteFixtureLeftover(t, provider, staging)

	start := time.Now()
	err := provider.Create(staging,
		kindcluster.CreateWithV1Alpha4Config(fixtureConfig(t, kit.KindConfig)),
		kindcluster.CreateWithNodeImage(kit.NodeImage),
		kindcluster.CreateWithKubeconfigPath(foreignKubeconfig),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	)
	t.Cleanup(func() {
		// The explicit path keeps kind away from the user's kubeconfig.
		if err := provider.Delete(staging, foreignKubeconfig); err != nil {
			t.Logf("kind's delete of the foreign cluster %s: %v; deleting through the harness", staging, err)
			// The harness's delete tells a container the engine refuses from others.
			kindtest.ReportDelete(t, staging, (&cluster.Cluster{Name: staging, KubeconfigPath: foreignKubeconfig}).Delete(context.Background()))
			return
		}
		if ids := containers(t, staging); len(ids) > 0 {
			t.Errorf("foreign cluster %s: containers left: %v", staging, ids)
		}
	})
	if err != nil {
		t.Fatalf("creating the foreign cluster with kind's library: %v", err)
	}
	t.Logf("foreign cluster %s created by kind directly in %.1fs", staging, time.Since(start).Seconds())
	before := containers(t, staging)
	if len(before) == 0 {
		t.Fatalf("no containers for %s", staging)
	}

	want := `cluster "safety-staging" exists and was not created by flux-fleet: delete it (kind delete cluster --name safety-staging) or set E2E_CLUSTER_PREFIX`
	for _, reuse := range []bool{false, true} {
		name := "recreate"
		if reuse {
			name = "reuse"
		}
		t.Run(name, func(t *testing.T) {
			workDir := t.TempDir()
			spec := func(n string) cluster.Spec {
				return cluster.Spec{
					Name: n, NodeImage: kit.NodeImage, KindConfig: kit.KindConfig, WorkDir: workDir,
					Reuse: reuse, Fleet: "basic", Log: cluster.LogfWriter(t.Logf),
				}
			}
			guard := cluster.NewGuard(cluster.KeepNever, cluster.LogfWriter(t.Logf))
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			start := time.Now()
			created, err := guard.CreateAll(ctx, []cluster.Spec{spec(production), spec(staging)})
			elapsed := time.Since(start)
			t.Logf("refused after %s", elapsed.Round(10*time.Millisecond))
			if err == nil || err.Error() != want {
				t.Fatalf("CreateAll error:\n%v\nwant:\n%s", err, want)
			}
			var notOwned *cluster.NotOwnedError
			if !errors.As(err, &notOwned) || notOwned.Name != staging {
				t.Errorf("error does not unwrap to *NotOwnedError for %s", staging)
			}
			if created != nil {
				t.Errorf("CreateAll returned clusters %v", created)
			}
			// That the run stopped before creating anything is asserted
			// below; how long reading the marker took is only logged above:
			// its bound (the marker read's timeout) is the code's own.
			if err := guard.Cleanup(context.Background(), true); err != nil {
				t.Errorf("guard cleanup: %v", err)
			}
			if ids := containers(t, production); len(ids) > 0 {
				t.Errorf("%s was created although the run had to stop: %v", production, ids)
			}
			if after := containers(t, staging); !slices.Equal(after, before) {
				t.Errorf("foreign cluster's containers changed: %v → %v", before, after)
			}
			for _, n := range []string{staging, production} {
				if _, err := os.Stat(filepath.Join(workDir, n+".kubeconfig")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("kubeconfig for %s written (%v)", n, err)
				}
			}
		})
	}

	// The foreign cluster still answers: it was neither deleted nor touched.
	if found, err := cluster.Exists(t.Context(), staging); err != nil || !found {
		t.Errorf("Exists(%s) = %v, %v after the refusals", staging, found, err)
	}
	if out, err := exec.CommandContext(t.Context(), "docker", "inspect", "--format", "{{.State.Running}}", staging+"-control-plane").Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Errorf("foreign control plane not running (%q, %v)", out, err)
	}
}
