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

	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest/kindenv"
)

// Real-kind tests use the offline kit profile (FLEET_NODE_IMAGE,
// FLEET_KIND_CONFIG, FLEET_PRELOAD_IMAGES): this machine has no registry.

const interruptChildEnv = "HX_CLUSTER_INTERRUPT_CHILD"

type kindEnv struct {
	nodeImage  string
	kindConfig []byte
	preload    []string
}

// requireKind is kindenv.Require (harness/internal/kindtest imports this
// package, so these tests use its dependency-free core): skipped with
// -short, and without a Docker engine, the kit profile or its node image
// unless CI=true, where those fail the test.
func requireKind(t *testing.T) kindEnv {
	t.Helper()
	kit := kindenv.Require(t)
	return kindEnv{nodeImage: kit.NodeImage, kindConfig: kit.KindConfig, preload: kit.PreloadImages}
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
// kubeconfig file, kind's cluster list. A container left behind is the
// harness's failure, unless the Docker engine refuses to remove it: it
// refused the harness's delete (deleteErr says so) or refuses the test's
// docker rm -f now. That is the engine's defect, logged loudly instead.
func assertGone(t *testing.T, name, kubeconfig string, deleteErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	left, err := nodeContainerNames(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	refusedAny := false
	for _, n := range left {
		var refused *EngineRefusedError
		if errors.As(deleteErr, &refused) && refused.Container == n {
			refusedAny = true
			t.Logf("DOCKER ENGINE DEFECT (not a test failure): %v", refused)
			continue
		}
		if err := removeContainer(ctx, n); errors.As(err, &refused) {
			refusedAny = true
			t.Logf("DOCKER ENGINE DEFECT (not a test failure): the harness left container %s and the engine refuses to remove it: %v", n, err)
			continue
		}
		t.Errorf("cluster %s: the harness left container %s behind (the engine removed it when the test asked)", name, n)
	}
	if kubeconfig != "" {
		if _, err := os.Stat(kubeconfig); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cluster %s: kubeconfig %s still exists (stat error %v)", name, kubeconfig, err)
		}
	}
	if found, err := Exists(context.Background(), name); err != nil || (found && !refusedAny) {
		t.Errorf("cluster %s: kind still lists it (found=%v, err=%v)", name, found, err)
	}
}

// reportDelete fails the test for a deletion error, except the engine's
// refusal to remove a container, which it logs loudly.
func reportDelete(t *testing.T, what string, err error) {
	t.Helper()
	var refused *EngineRefusedError
	switch {
	case err == nil:
	case errors.As(err, &refused):
		t.Logf("DOCKER ENGINE DEFECT (not a test failure): %s: %v", what, err)
	default:
		t.Errorf("%s: %v", what, err)
	}
}

// requireNodesReady waits up to timeout for every node to be Ready. With
// timeout 0 the first answer must show them Ready; failed requests are
// still retried for a while, an API server on a loaded machine being slow.
func requireNodesReady(t *testing.T, kubeconfig string, timeout time.Duration) {
	t.Helper()
	atOnce := timeout == 0
	if atOnce {
		timeout = 30 * time.Second
	}
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
		var notReady []string
		if err == nil {
			for _, n := range list.Items {
				if !nodeReady(n) {
					ready = false
					notReady = append(notReady, n.Name)
				}
			}
		}
		if ready {
			return
		}
		if err == nil && atOnce {
			t.Fatalf("nodes of %s not Ready at once: %d node(s), not Ready: %v", kubeconfig, len(list.Items), notReady)
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
		reportDelete(t, "cleanup", guard.Cleanup(context.Background(), t.Failed()))
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
	requireNodesReady(t, c.KubeconfigPath, 0)
	// And for the Service network: the API server answers on the
	// kubernetes Service from the node now.
	if c.ServiceNetworkTook <= 0 {
		t.Errorf("%s: ServiceNetworkTook = %s with Spec.ServiceNetwork set", c.Name, c.ServiceNetworkTook)
	}
	node := c.Name + "-control-plane"
	cs, err := boundedClientset(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := untilServiceAddr(ctx, cs, metav1.NamespaceDefault, "kubernetes")
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
		requireNodesReady(t, r.KubeconfigPath, 30*time.Second)
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
		err := c.Delete(ctx)
		reportDelete(t, "Delete", err)
		t.Logf("Delete %s: %.1fs", c.Name, time.Since(start).Seconds())
		assertGone(t, c.Name, c.KubeconfigPath, err)
	})
}

// TestIntegrationInterrupt runs a child process that creates a cluster
// through a Guard, with the one signal handler a test process has, and
// signals it; afterwards nothing may be left, and the child's output must
// show that the signal hit the phase the case is about.
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
		// wantOutput must appear in the child's output: what says which
		// phase the signal hit.
		wantOutput []string
	}{
		// kind is still starting the node: the partial cluster must go.
		{name: "during-create", sig: syscall.SIGINT, signal: `Creating cluster "hx-cluster-c"`, delay: 4 * time.Second,
			wantOutput: []string{"child: create returned: creating kind cluster hx-cluster-c: " + abortedMessage + " (partial cluster deleted)"}},
		// the cluster is up and tracked by the guard.
		{name: "after-create", sig: syscall.SIGTERM, signal: "CHILD-READY",
			wantOutput: []string{"CHILD-READY", "cluster hx-cluster-c deleted in "}},
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
			marker := make(chan struct{})
			var output strings.Builder // read after exited is closed
			exited := make(chan struct{})
			var waitErr error
			go func() {
				defer close(exited)
				sc := bufio.NewScanner(stdout)
				seen := false
				for sc.Scan() {
					t.Logf("child: %s", sc.Text())
					output.WriteString(sc.Text() + "\n")
					if !seen && strings.Contains(sc.Text(), tt.signal) {
						seen = true
						close(marker)
					}
				}
				waitErr = cmd.Wait()
			}()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited // the child's hold on the name goes with it
				reportDelete(t, "deleting what the child left", (&Cluster{Name: name, KubeconfigPath: filepath.Join(workDir, name+".kubeconfig")}).Delete(context.Background()))
			})
			select {
			case <-marker:
			case <-exited:
				t.Fatalf("child exited (%v) without printing %q", waitErr, tt.signal)
			case <-time.After(3 * time.Minute):
				t.Fatalf("child never printed %q", tt.signal)
			}
			time.Sleep(tt.delay)
			t.Logf("sending %s after %.1fs; containers now: %v", tt.sig, time.Since(start).Seconds(), nodeContainers(t, name))
			sigAt := time.Now()
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			// The child's own bounds: an abort of kind's create, then one
			// deletion; plus a margin for two test lanes on two cores.
			bound := abortCreateTimeout + 2*cleanupTimeout + time.Minute
			select {
			case <-exited:
			case <-time.After(bound):
				t.Fatalf("child did not exit within %s of the signal", bound)
			}
			t.Logf("child exited %.1fs after the signal: %v", time.Since(sigAt).Seconds(), waitErr)
			var exitErr *exec.ExitError
			if !errors.As(waitErr, &exitErr) || exitErr.ExitCode() != 128+int(tt.sig) {
				t.Errorf("child exit = %v, want code %d", waitErr, 128+int(tt.sig))
			}
			for _, want := range tt.wantOutput {
				if !strings.Contains(output.String(), want) {
					t.Errorf("child output lacks %q: the signal did not hit the phase this case is about", want)
				}
			}
			assertGone(t, name, filepath.Join(workDir, name+".kubeconfig"), nil)
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

// TestIntegrationCreateTimeout gives Create less time than kind takes to
// create a cluster: it must return within the code's own bounds, say that
// the deadline hit while kind was still creating (not a later phase), and
// leave nothing behind.
func TestIntegrationCreateTimeout(t *testing.T) {
	env := requireKind(t)
	const name = "safety-timeout"
	const timeout = 8 * time.Second
	workDir := t.TempDir()
	kubeconfig := filepath.Join(workDir, name+".kubeconfig")
	t.Cleanup(func() {
		reportDelete(t, "deleting what the timeout left", (&Cluster{Name: name, KubeconfigPath: kubeconfig}).Delete(context.Background()))
	})
	spec := env.spec(t, name, workDir)
	spec.Timeout = timeout
	start := time.Now()
	_, err := Create(t.Context(), spec)
	elapsed := time.Since(start)
	t.Logf("Create with a %s timeout returned after %s: %v", timeout, elapsed.Round(100*time.Millisecond), err)
	// The message is the user-facing report of where the deadline hit.
	want := "creating kind cluster " + name + ": " + abortedMessage + " (partial cluster deleted): creating cluster " + name + " took longer than " + timeout.String()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v\nwant it to contain %q (the deadline hit while kind was creating)", err, want)
	}
	// The deadline, the repeated deletes of the abort, its last delete;
	// plus a margin for two test lanes on two cores.
	bound := timeout + abortCreateTimeout + cleanupTimeout + time.Minute
	if elapsed > bound {
		t.Errorf("returned %s after start, want within %s", elapsed, bound)
	}
	assertGone(t, name, kubeconfig, nil)
}

// TestIntegrationWatchAPI removes a cluster's node container under a
// WatchAPI context, as someone else deleting the cluster would: the context
// must end with a *GoneError saying the nodes are gone, within the watch's
// own bounds.
func TestIntegrationWatchAPI(t *testing.T) {
	env := requireKind(t)
	const name = "hx-cluster-w"
	c, err := Create(t.Context(), env.spec(t, name, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reportDelete(t, "cleanup", c.Delete(context.Background())) })

	ctx, stop := c.WatchAPI(t.Context())
	defer stop()
	// A live cluster is left alone for as long as it takes to count as gone.
	select {
	case <-ctx.Done():
		t.Fatalf("watch ended on a live cluster: %v", context.Cause(ctx))
	case <-time.After(apiWatchFailures*apiWatchPeriod + apiWatchRequestTimeout):
	}

	nodes, err := nodeContainerNames(t.Context(), name)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("node containers of %s: %v, %v", name, nodes, err)
	}
	removed := time.Now()
	for _, n := range nodes {
		var refused *EngineRefusedError
		if err := removeContainer(t.Context(), n); errors.As(err, &refused) {
			t.Logf("DOCKER ENGINE DEFECT (not a test failure): %v; the watch cannot be tested here", err)
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Each of the failures may wait a period and a request timeout, then
	// the node containers are listed; plus a margin for two test lanes.
	bound := apiWatchFailures*(apiWatchPeriod+apiWatchRequestTimeout) + apiWatchDockerTimeout + 30*time.Second
	select {
	case <-ctx.Done():
	case <-time.After(bound):
		t.Fatalf("watch did not notice within %s that the node containers were removed", bound)
	}
	t.Logf("watch ended %.1fs after the node containers were removed: %v", time.Since(removed).Seconds(), context.Cause(ctx))
	var gone *GoneError
	if !errors.As(context.Cause(ctx), &gone) || gone.Name != name || !gone.NodesGone || gone.Server != c.RESTConfig.Host {
		t.Fatalf("cause %v, want a *GoneError for %s with NodesGone", context.Cause(ctx), name)
	}
}
