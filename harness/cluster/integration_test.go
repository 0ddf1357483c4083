package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// Real-kind tests use the offline kit profile (FLEET_NODE_IMAGE,
// FLEET_KIND_CONFIG, FLEET_PRELOAD_IMAGES): this machine has no registry.

const interruptChildEnv = "HX_CLUSTER_INTERRUPT_CHILD"

type kindEnv struct {
	nodeImage  string
	kindConfig []byte
	preload    []string
}

// requireKind skips where harness/internal/kindtest.Require does (that
// package imports this one, so these tests cannot use it): with -short,
// without a Docker engine unless CI=true, without the kit profile.
func requireKind(t *testing.T) kindEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("creates real kind clusters; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("docker info failed (%v): no Docker engine for kind: %s", err, firstLine(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: real-kind tests must run)", msg)
		}
		t.Skip(msg)
	}
	env := kindEnv{nodeImage: os.Getenv("FLEET_NODE_IMAGE")}
	for _, v := range []string{"FLEET_NODE_IMAGE", "FLEET_KIND_CONFIG"} {
		if os.Getenv(v) == "" {
			t.Skipf("%s is unset: source the offline kit profile (make offline-images) to run real-kind tests", v)
		}
	}
	raw, err := os.ReadFile(os.Getenv("FLEET_KIND_CONFIG"))
	if err != nil {
		t.Fatalf("reading FLEET_KIND_CONFIG: %v", err)
	}
	env.kindConfig = raw
	for _, img := range strings.Split(os.Getenv("FLEET_PRELOAD_IMAGES"), ",") {
		if img = strings.TrimSpace(img); img != "" {
			env.preload = append(env.preload, img)
		}
	}
	return env
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func (e kindEnv) spec(t *testing.T, name, workDir string) Spec {
	return Spec{
		Name:       name,
		NodeImage:  e.nodeImage,
		KindConfig: e.kindConfig,
		WorkDir:    workDir,
		Log:        LogfWriter(t.Logf),
	}
}

// nodeContainers lists the docker containers kind made for a cluster.
func nodeContainers(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-a", "-q", "--filter", "label=io.x-k8s.kind.cluster="+name).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

// assertGone checks that nothing of the cluster is left: containers,
// kubeconfig file, kind's cluster list.
func assertGone(t *testing.T, name, kubeconfig string) {
	t.Helper()
	if ids := nodeContainers(t, name); len(ids) > 0 {
		t.Errorf("cluster %s: containers left behind: %v", name, ids)
	}
	if kubeconfig != "" {
		if _, err := os.Stat(kubeconfig); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cluster %s: kubeconfig %s still exists (stat error %v)", name, kubeconfig, err)
		}
	}
	if found, err := Exists(context.Background(), name); err != nil || found {
		t.Errorf("cluster %s: kind still lists it (found=%v, err=%v)", name, found, err)
	}
}

func waitNodesReady(t *testing.T, kubeconfig string, timeout time.Duration) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("loading %s: %v", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		list, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		ready := err == nil && len(list.Items) > 0
		if err == nil {
			for _, n := range list.Items {
				if !nodeReady(n) {
					ready = false
				}
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes of %s not Ready after %s (last error %v)", kubeconfig, timeout, err)
		}
		time.Sleep(2 * time.Second)
	}
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeLabels returns the labels of the cluster's nodes, read through the
// API as Create reads the marker.
func nodeLabels(t *testing.T, kubeconfig string) []map[string]string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var labels []map[string]string
	for _, n := range list.Items {
		labels = append(labels, n.Labels)
	}
	return labels
}

// otherConfig is raw with a user node label added: the same cluster for
// kind, another kind config for the marker.
func otherConfig(t *testing.T, raw []byte) []byte {
	t.Helper()
	cfg, err := parseKindConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	withMarker(cfg, map[string]string{"example.com/variant": "b"})
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIntegrationCreateLoadReuseDelete walks one cluster through the
// lifecycle; one cluster at a time, as the machines running it are small.
func TestIntegrationCreateLoadReuseDelete(t *testing.T) {
	env := requireKind(t)
	// kind falls back to $KUBECONFIG when given no explicit path: point it
	// at a file that must never appear.
	sentinel := filepath.Join(t.TempDir(), "must-not-be-written")
	t.Setenv("KUBECONFIG", sentinel)

	workDir := t.TempDir()
	guard := NewGuard(KeepNever, LogfWriter(t.Logf))
	t.Cleanup(func() {
		if err := guard.Cleanup(context.Background(), t.Failed()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx := t.Context()
	spec := env.spec(t, "hx-cluster-a", workDir)
	spec.Fleet = "fixtures/fleets/basic"
	// The first create waits for the Service network too; the re-creations
	// below test reuse, not that wait.
	first := spec
	first.ServiceNetwork = true

	start := time.Now()
	clusters, err := guard.CreateAll(ctx, []Spec{first})
	if err != nil {
		t.Fatalf("CreateAll: %v", err)
	}
	t.Logf("CreateAll: %.1fs", time.Since(start).Seconds())
	c := clusters[0]
	if c.Reused {
		t.Errorf("%s: Reused = true for a new cluster", c.Name)
	}
	fi, err := os.Stat(c.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: kubeconfig mode %v, want 0600", c.Name, fi.Mode().Perm())
	}
	if c.KubeconfigPath != filepath.Join(workDir, c.Name+".kubeconfig") {
		t.Errorf("%s: kubeconfig at %s", c.Name, c.KubeconfigPath)
	}
	if c.RESTConfig == nil {
		t.Fatalf("%s: no RESTConfig", c.Name)
	}
	// Create waited for Ready itself: no wait here.
	waitNodesReady(t, c.KubeconfigPath, time.Second)
	// And for the Service network: the API server answers on the
	// kubernetes Service from the node now.
	if c.ServiceNetworkTook <= 0 {
		t.Errorf("%s: ServiceNetworkTook = %s with Spec.ServiceNetwork set", c.Name, c.ServiceNetworkTook)
	}
	node := c.Name + "-control-plane"
	addr, err := c.serviceAddr(ctx, metav1.NamespaceDefault, "kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("docker", "exec", node, "curl", "--silent", "--max-time", "5", "--cacert", clusterCA, "--output", "/dev/null", "https://"+addr+"/healthz").CombinedOutput(); err != nil {
		t.Errorf("the kubernetes Service does not answer from %s after Create: %v (%s)", node, err, out)
	}
	if _, err := os.Stat(sentinel); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kind wrote to $KUBECONFIG (%v)", err)
	}

	t.Run("Marker", func(t *testing.T) {
		labels := nodeLabels(t, c.KubeconfigPath)
		if len(labels) != 1 {
			t.Fatalf("%d nodes, want 1", len(labels))
		}
		l := labels[0]
		if l[LabelOwner] != OwnerValue || l[LabelRun] != guard.RunID || l[LabelFleet] != "fixtures-fleets-basic" ||
			len(l[LabelNodeImageHash]) != hashLen || len(l[LabelKindConfigHash]) != hashLen {
			t.Errorf("node labels lack the marker: %v", l)
		}
	})

	if addr, err := HostAddress(ctx); err != nil {
		t.Errorf("HostAddress: %v", err)
	} else {
		t.Logf("kind network gateway: %s", addr)
	}

	t.Run("LoadImages", func(t *testing.T) {
		image := loadableImage(env.preload)
		if image == "" {
			t.Skipf("no fleet-kit/* image of FLEET_PRELOAD_IMAGES (%v) is a local docker image", env.preload)
		}
		start := time.Now()
		if err := c.LoadImages(ctx, image); err != nil {
			t.Fatal(err)
		}
		t.Logf("LoadImages(%s) into %s: %.1fs", image, c.Name, time.Since(start).Seconds())
		nodeList, err := c.provider.ListInternalNodes(c.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodeList {
			lines, err := kindexec.OutputLines(n.Command("ctr", "--namespace=k8s.io", "images", "ls", "-q"))
			if err != nil {
				t.Fatalf("listing images on %s: %v", n, err)
			}
			// containerd lists the fully qualified name, docker the short one.
			if !slices.ContainsFunc(lines, func(ref string) bool { return ref == image || strings.HasSuffix(ref, "/"+image) }) {
				t.Errorf("node %s lacks %s; has %v", n, image, lines)
			}
			ids, err := nodeImageIDs(ctx, n, []string{image})
			if id := ids[image]; err != nil || localImageID(ctx, image) != id {
				t.Errorf("node %s: %s has ID %q (%v), the docker engine %q", n, image, id, err, localImageID(ctx, image))
			}
		}
		var out bytes.Buffer
		c.log = newLineWriter(io.MultiWriter(&out, LogfWriter(t.Logf)))
		defer func() { c.log = newLineWriter(LogfWriter(t.Logf)) }()
		start = time.Now()
		if err := c.LoadImages(ctx, image); err != nil {
			t.Fatal(err)
		}
		t.Logf("second LoadImages(%s): %.1fs", image, time.Since(start).Seconds())
		if want := "cluster hx-cluster-a: images already present: " + image; !strings.Contains(out.String(), want) {
			t.Errorf("second load did not skip the image: log %q, want %q", out.String(), want)
		}
	})

	t.Run("Reuse", func(t *testing.T) {
		reuse := spec
		reuse.Reuse = true
		if err := os.Remove(reuse.KubeconfigPath()); err != nil {
			t.Fatal(err)
		}
		before := nodeContainers(t, c.Name)
		start := time.Now()
		r, err := guard.Create(ctx, reuse)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("reuse of %s: %.1fs", r.Name, time.Since(start).Seconds())
		if !r.Reused || !slices.Equal(nodeContainers(t, c.Name), before) {
			t.Errorf("Reused = %v, containers %v → %v: want the same cluster", r.Reused, before, nodeContainers(t, c.Name))
		}
		waitNodesReady(t, r.KubeconfigPath, 30*time.Second)
	})

	t.Run("ReuseWithOtherKindConfig", func(t *testing.T) {
		other := spec
		other.Reuse = true
		other.KindConfig = otherConfig(t, spec.KindConfig)
		var out bytes.Buffer
		other.Log = io.MultiWriter(&out, LogfWriter(t.Logf))
		before := nodeContainers(t, c.Name)
		start := time.Now()
		r, err := guard.Create(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("recreate of %s for another kind config: %.1fs", r.Name, time.Since(start).Seconds())
		after := nodeContainers(t, c.Name)
		if r.Reused || len(after) == 0 || slices.Equal(before, after) {
			t.Errorf("not recreated: Reused=%v containers before %v after %v", r.Reused, before, after)
		}
		if want := "cluster hx-cluster-a not reused: it was made from another kind config than asked (marker "; !strings.Contains(out.String(), want) {
			t.Errorf("log does not say why:\n%s", out.String())
		}
		if l := nodeLabels(t, r.KubeconfigPath); len(l) != 1 || l[0]["example.com/variant"] != "b" {
			t.Errorf("recreated node labels %v lack the new config's label", l)
		}
	})

	t.Run("RecreateStale", func(t *testing.T) {
		before := nodeContainers(t, c.Name)
		start := time.Now()
		r, err := guard.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("delete + recreate of the earlier %s: %.1fs", r.Name, time.Since(start).Seconds())
		after := nodeContainers(t, c.Name)
		if r.Reused || len(after) == 0 || slices.Equal(before, after) {
			t.Errorf("earlier cluster not recreated: Reused=%v containers before %v after %v", r.Reused, before, after)
		}
		c = r
	})

	t.Run("ExportLogs", func(t *testing.T) {
		dir := t.TempDir()
		start := time.Now()
		if err := c.ExportLogs(ctx, dir); err != nil {
			t.Fatal(err)
		}
		t.Logf("ExportLogs: %.1fs", time.Since(start).Seconds())
		if _, err := os.Stat(filepath.Join(dir, "hx-cluster-a-control-plane", "kubelet.log")); err != nil {
			t.Errorf("no kubelet log exported: %v", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		start := time.Now()
		if err := c.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("Delete %s: %.1fs", c.Name, time.Since(start).Seconds())
		assertGone(t, c.Name, c.KubeconfigPath)
	})
}

// TestIntegrationInterrupt runs a child process that creates a cluster
// through a Guard, with the one signal handler a test process has, and
// signals it; afterwards nothing may be left.
func TestIntegrationInterrupt(t *testing.T) {
	if os.Getenv(interruptChildEnv) != "" {
		interruptChild(t)
		return
	}
	requireKind(t)
	tests := []struct {
		name   string
		sig    syscall.Signal
		signal string // line in the child's output after which to signal
		delay  time.Duration
	}{
		// kind is still starting the node: the partial cluster must go.
		{name: "during-create", sig: syscall.SIGINT, signal: `Creating cluster "hx-cluster-c"`, delay: 4 * time.Second},
		// the cluster is up and tracked by the guard.
		{name: "after-create", sig: syscall.SIGTERM, signal: "CHILD-READY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const name = "hx-cluster-c"
			workDir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestIntegrationInterrupt$", "-test.v")
			cmd.Env = append(os.Environ(), interruptChildEnv+"="+workDir)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = cmd.Stdout
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = (&Cluster{Name: name, KubeconfigPath: filepath.Join(workDir, name+".kubeconfig")}).Delete(context.Background())
			})
			marker := make(chan struct{})
			outputDone := make(chan struct{})
			go func() {
				defer close(outputDone)
				sc := bufio.NewScanner(stdout)
				seen := false
				for sc.Scan() {
					t.Logf("child: %s", sc.Text())
					if !seen && strings.Contains(sc.Text(), tt.signal) {
						seen = true
						close(marker)
					}
				}
			}()
			select {
			case <-marker:
			case <-time.After(3 * time.Minute):
				t.Fatalf("child never printed %q", tt.signal)
			}
			time.Sleep(tt.delay)
			t.Logf("sending %s after %.1fs; containers now: %v", tt.sig, time.Since(start).Seconds(), nodeContainers(t, name))
			sigAt := time.Now()
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			waitErr := make(chan error, 1)
			go func() { <-outputDone; waitErr <- cmd.Wait() }()
			select {
			case err = <-waitErr:
			case <-time.After(2 * time.Minute):
				t.Fatal("child did not exit within 2m of the signal")
			}
			t.Logf("child exited %.1fs after the signal: %v", time.Since(sigAt).Seconds(), err)
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 128+int(tt.sig) {
				t.Errorf("child exit = %v, want code %d", err, 128+int(tt.sig))
			}
			assertGone(t, name, filepath.Join(workDir, name+".kubeconfig"))
		})
	}
}

func interruptChild(t *testing.T) {
	env := requireKind(t)
	guard := NewGuard(KeepNever, os.Stdout)
	// The process's one signal handler: the signal ends ctx, the Guard's
	// create gives up and deletes its partial cluster, Cleanup deletes a
	// finished one, and the process exits like one killed by the signal.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan syscall.Signal, 1)
	go func() {
		sig := (<-sigs).(syscall.Signal)
		got <- sig
		cancel()
	}()
	spec := env.spec(t, "hx-cluster-c", os.Getenv(interruptChildEnv))
	spec.Log = os.Stdout
	if _, err := guard.Create(ctx, spec); err != nil {
		fmt.Println("child: create returned:", err)
	} else {
		fmt.Println("CHILD-READY")
	}
	select {
	case <-time.After(3 * time.Minute):
		t.Fatal("no signal arrived")
	case sig := <-got:
		if err := guard.Cleanup(context.Background(), true); err != nil {
			fmt.Println("child: cleanup:", err)
		}
		os.Exit(128 + int(sig))
	}
}

// loadableImage picks a workload image to load: fleet-kit/redis:bookworm
// when the kit has it, else any other local fleet-kit image it lists.
func loadableImage(preload []string) string {
	candidates := []string{"fleet-kit/redis:bookworm"}
	for _, img := range preload {
		if strings.HasPrefix(img, "fleet-kit/") {
			candidates = append(candidates, img)
		}
	}
	for _, img := range candidates {
		if slices.Contains(preload, img) && exec.Command("docker", "image", "inspect", img).Run() == nil {
			return img
		}
	}
	return ""
}
