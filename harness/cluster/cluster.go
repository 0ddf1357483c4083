// Package cluster creates, reuses, loads images into and deletes kind
// clusters through kind's Go library, so the e2e harness needs no kind
// binary and controls where kubeconfig files go: each cluster gets its own
// file and the user's default kubeconfig is never touched. Clusters it
// creates carry an ownership marker (see LabelOwner); a cluster of the same
// name without it is someone else's and is never deleted or reused.
//
// The marker says "flux-fleet made this", not "a run is using it": that is
// the hold. Before Create, Guard.Create or Guard.CreateAll touch anything,
// the run holds each cluster name with an flock on a file in a directory
// shared by all runs against the same Docker engine (DefaultHoldDir); a
// second run that wants a held name stops with a *HeldError naming the
// holder, and never deletes, reuses or writes the kubeconfig of a cluster
// a live run is using. The kernel drops the lock when the holder exits, so
// a crashed run's hold expires by itself. The limit: the directory is on
// this host, so runs on different hosts (or containers with their own
// /tmp) that share one Docker engine through its socket do not see each
// other's holds.
//
// WatchAPI reports a cluster that vanishes during a run (a *GoneError)
// within seconds, and a node container the Docker engine refuses to remove
// is reported as the engine's failure (*EngineRefusedError).
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

const (
	// DefaultWaitForReady bounds how long Create waits for the nodes to
	// become Ready when Spec.WaitForReady is zero.
	DefaultWaitForReady = 3 * time.Minute
	// DefaultCreateTimeout bounds one Create (the check of an existing
	// cluster, creation, the readiness wait and the image load) when
	// Spec.Timeout is zero. A deadline of the caller's context applies too.
	DefaultCreateTimeout = 10 * time.Minute

	// markerReadTimeout bounds reading an existing cluster's marker; an API
	// server that is just starting again gets this long to answer.
	markerReadTimeout = 30 * time.Second
	// cleanupTimeout bounds a deletion done as cleanup, on a context of its
	// own because the caller's has often ended already.
	cleanupTimeout = 2 * time.Minute
)

// Spec describes one kind cluster.
type Spec struct {
	Name          string        // kind cluster name
	NodeImage     string        // "" = kind default (or the image in KindConfig)
	KindConfig    []byte        // raw v1alpha4 config; nil = kind default
	WorkDir       string        // kubeconfig written to WorkDir/<name>.kubeconfig (0600); "" = os.TempDir()
	Reuse         bool          // reuse an existing cluster of that name (one this harness made, from the same node image and kind config) instead of recreating it
	PreloadImages []string      // local docker images loaded into every node after create
	WaitForReady  time.Duration // 0 = DefaultWaitForReady
	Timeout       time.Duration // bounds the whole Create; 0 = DefaultCreateTimeout
	// ServiceNetwork makes Create also wait, within WaitForReady, for the
	// Service network (WaitServiceNetwork): controllers started before
	// kube-proxy programmed Service IPs cannot reach the API server through
	// the kubernetes Service and exit. A cluster whose tests run no
	// controller does without the wait (seconds, more on busy cores); a
	// caller with work to do meanwhile calls WaitServiceNetwork itself.
	ServiceNetwork bool
	// Fleet and RunID name the fleet and the run in the ownership marker.
	// Both are made valid label values; RunID "" = the Guard's run, or a
	// new NewRunID for a Create without a Guard.
	Fleet string
	RunID string
	// Log receives progress lines ("cluster staging created in 14.2s") and
	// kind's own messages; nil = os.Stderr. CreateAll may write to it from
	// several goroutines, one whole line per Write.
	Log io.Writer
}

// KubeconfigPath is where Create writes the cluster's kubeconfig.
func (s Spec) KubeconfigPath() string {
	dir := s.WorkDir
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, s.Name+".kubeconfig")
}

func (s Spec) validate() error {
	if s.Name == "" {
		return errors.New("cluster spec has no name")
	}
	if strings.ContainsAny(s.Name, `/\`) {
		return fmt.Errorf("cluster name %q contains a path separator", s.Name)
	}
	return nil
}

func (s Spec) logWriter() *lineWriter {
	if s.Log == nil {
		return newLineWriter(os.Stderr)
	}
	return newLineWriter(s.Log)
}

func (s Spec) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.Timeout
	if d <= 0 {
		d = DefaultCreateTimeout
	}
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("creating cluster %s took longer than %s", s.Name, d))
}

// Cluster is a running kind cluster.
type Cluster struct {
	Name           string
	KubeconfigPath string
	RESTConfig     *rest.Config
	Reused         bool // true when it existed before this run
	// CreateTook is how long Create spent creating the cluster: kind's
	// create, the wait for Ready nodes and, with Spec.ServiceNetwork, for
	// the Service network (zero for a reused cluster). Images load during
	// that last wait. ServiceNetworkTook is how long the last
	// WaitServiceNetwork took, Create's or the caller's.
	CreateTook         time.Duration
	ServiceNetworkTook time.Duration
	// LoadTook is how long the last LoadImages took, the check of which
	// images the nodes already have included; Loaded are the images it
	// actually sent (none when the node image carries them all).
	LoadTook time.Duration
	Loaded   []string

	provider *kindcluster.Provider
	log      *lineWriter
	// held: the name is held by this process (a Guard or Create); hold is
	// the hold Delete releases (Create without a Guard). A Cluster built by
	// hand holds nothing.
	held    bool
	hold    *hold
	mu      sync.Mutex
	deleted bool // by Delete: a Guard has nothing left to do
}

func newProvider(log *lineWriter, name string) *kindcluster.Provider {
	return kindcluster.NewProvider(
		kindcluster.ProviderWithDocker(),
		kindcluster.ProviderWithLogger(newKindLogger(log, name, 0)),
	)
}

// Exists reports whether kind has nodes for a cluster of that name.
func Exists(ctx context.Context, name string) (bool, error) {
	return exists(ctx, newProvider(newLineWriter(io.Discard), name), name)
}

func exists(ctx context.Context, p *kindcluster.Provider, name string) (bool, error) {
	names, err := kindCall(ctx, "listing kind clusters", p.List)
	if err != nil {
		return false, fmt.Errorf("listing kind clusters: %w", err)
	}
	return slices.Contains(names, name), nil
}

// plan is what Create found out before changing anything: the config with
// the marker and what to do about a cluster of the same name.
type plan struct {
	spec   Spec
	c      *Cluster
	cfg    *v1alpha4.Cluster // the kind config with the marker labels
	action action
	reason string // logged when recreating
}

// Create creates the cluster, writes its kubeconfig and loads the preload
// images. It first holds the name in DefaultHoldDir (see Guard.Create):
// when another live run holds it, Create fails with a *HeldError before
// touching anything; the returned cluster's Delete releases the hold. A
// cluster of the same name that lacks the flux-fleet marker is left alone
// and Create fails with a *NotOwnedError. One that has it is reused when
// spec.Reuse is set and it was made from the same node image and kind
// config, and is otherwise deleted first (a leftover of an earlier run).
// When ctx ends during creation the partial cluster is deleted. Create
// either returns a usable cluster or leaves no new cluster behind.
func Create(ctx context.Context, spec Spec) (*Cluster, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	dir, err := DefaultHoldDir(ctx)
	if err != nil {
		return nil, err
	}
	h, err := takeHold(dir, spec.Name, holderInfo(spec, spec.RunID, time.Now()))
	if err != nil {
		return nil, err
	}
	c, err := create(ctx, spec)
	if err != nil {
		h.release()
		return nil, err
	}
	c.hold = h
	return c, nil
}

// create is Create for a caller that holds the name.
func create(ctx context.Context, spec Spec) (*Cluster, error) {
	ctx, cancel := spec.withTimeout(ctx)
	defer cancel()
	p, err := prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	return p.run(ctx)
}

// prepare reads the config and the marker of an existing cluster; it
// changes nothing. Its caller holds the name.
func prepare(ctx context.Context, spec Spec) (*plan, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	cfg, err := parseKindConfig(spec.KindConfig)
	if err != nil {
		return nil, fmt.Errorf("kind config of cluster %s: %w", spec.Name, err)
	}
	want, err := wantMarker(ctx, spec, cfg)
	if err != nil {
		return nil, err
	}
	withMarker(cfg, want.labels())

	log := spec.logWriter()
	p := &plan{spec: spec, cfg: cfg, c: &Cluster{
		Name:           spec.Name,
		KubeconfigPath: spec.KubeconfigPath(),
		provider:       newProvider(log, spec.Name),
		log:            log,
		held:           true,
	}}
	found, err := exists(ctx, p.c.provider, spec.Name)
	if err != nil {
		return nil, err
	}
	if !found {
		return p, nil
	}
	got, err := p.c.readMarker(ctx)
	if err != nil {
		if ctx.Err() != nil { // the run was stopped, not the marker unreadable
			return nil, fmt.Errorf("checking the owner of existing cluster %s: %w", spec.Name, err)
		}
		return nil, &NotOwnedError{Name: spec.Name, Err: err}
	}
	p.action, p.reason, err = decide(spec.Name, got, want, spec.Reuse)
	return p, err
}

// wantMarker is the marker a cluster made from spec carries: hashes of the
// config as given (before the labels are added) and of the node images.
func wantMarker(ctx context.Context, spec Spec, cfg *v1alpha4.Cluster) (marker, error) {
	ch, err := configHash(cfg)
	if err != nil {
		return marker{}, fmt.Errorf("hashing the kind config of cluster %s: %w", spec.Name, err)
	}
	run := labelValue(spec.RunID)
	if run == "" {
		run = NewRunID()
	}
	return marker{
		owned:      true,
		fleet:      labelValue(spec.Fleet),
		run:        run,
		imageHash:  imageHash(nodeImages(spec.NodeImage, cfg), func(img string) string { return localImageID(ctx, img) }),
		configHash: ch,
	}, nil
}

// localImageID is the docker engine's ID of image, "" when it has none.
func localImageID(ctx context.Context, image string) string {
	out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", image).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// readMarker reads the marker from the labels of the cluster's nodes.
func (c *Cluster) readMarker(ctx context.Context) (marker, error) {
	m, err := c.readMarkerFromAPI(ctx)
	if err == nil {
		return m, nil
	}
	// A cluster whose API does not answer (containers stopped by an engine
	// restart) still has the marker in its nodes' files.
	if fm, ferr := readMarkerFromContainers(ctx, c.Name); ferr == nil && fm.owned {
		c.log.printf("cluster %s: API unreachable (%v); ownership read from its node containers", c.Name, err)
		return fm, nil
	}
	return marker{}, err
}

func (c *Cluster) readMarkerFromAPI(ctx context.Context) (marker, error) {
	ctx, cancel := context.WithTimeout(ctx, markerReadTimeout)
	defer cancel()
	raw, err := kindCall(ctx, "reading its kubeconfig", func() (string, error) { return c.provider.KubeConfig(c.Name, false) })
	if err != nil {
		return marker{}, err
	}
	cs, err := clientset(raw)
	if err != nil {
		return marker{}, err
	}
	var list *corev1.NodeList
	var lastErr error
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		list, lastErr = cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return lastErr == nil, nil
	})
	if err != nil {
		if lastErr != nil {
			err = lastErr
		}
		return marker{}, fmt.Errorf("listing its nodes: %w", err)
	}
	labels := make([]map[string]string, 0, len(list.Items))
	for _, n := range list.Items {
		labels = append(labels, n.Labels)
	}
	return markerFromNodes(labels), nil
}

func clientset(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(kubeconfig))
	if err != nil {
		return nil, fmt.Errorf("parsing its kubeconfig: %w", err)
	}
	cfg.Timeout = 15 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// clientset is a client of the cluster whose every request is bounded, for
// the waits that poll it.
func (c *Cluster) clientset() (*kubernetes.Clientset, error) {
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.Timeout = 15 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// run carries out the plan.
func (p *plan) run(ctx context.Context) (*Cluster, error) {
	c, spec := p.c, p.spec
	switch p.action {
	case actionReuse:
		c.Reused = true
		if err := c.writeKubeconfig(ctx); err != nil {
			return nil, err
		}
		c.log.printf("cluster %s reused (kubeconfig %s)", c.Name, c.KubeconfigPath)
		if err := c.LoadImages(ctx, spec.PreloadImages...); err != nil {
			return nil, err
		}
		return c, nil
	case actionRecreate:
		c.log.printf("%s", p.reason)
		if err := c.deleteNodes(ctx); err != nil {
			return nil, fmt.Errorf("deleting earlier cluster %s: %w", c.Name, err)
		}
	}
	// A stale file would be merged into by kind, mixing old credentials in.
	if err := removeIfExists(c.KubeconfigPath); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(c.KubeconfigPath), 0o755); err != nil {
		return nil, fmt.Errorf("creating kubeconfig directory for %s: %w", c.Name, err)
	}

	start := time.Now()
	if err := c.runCreate(ctx, spec.NodeImage, p.cfg); err != nil {
		// kind removed its nodes already (no retain); the file may remain.
		_ = removeIfExists(c.KubeconfigPath)
		return nil, fmt.Errorf("creating kind cluster %s: %w", c.Name, err)
	}
	if err := c.writeKubeconfig(ctx); err != nil {
		c.cleanupAfterFailure()
		return nil, err
	}
	wait := spec.WaitForReady
	if wait <= 0 {
		wait = DefaultWaitForReady
	}
	if err := c.waitNodesReady(ctx, wait); err != nil {
		c.cleanupAfterFailure()
		return nil, err
	}
	if err := c.quickenClusterDNS(ctx); err != nil {
		c.cleanupAfterFailure()
		return nil, err
	}
	// Images load while kube-proxy programs the Service network: neither
	// needs the other, and both must be done before anything is deployed.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if spec.ServiceNetwork {
			if err := c.WaitServiceNetwork(gctx, wait); err != nil {
				return err
			}
		}
		c.CreateTook = time.Since(start)
		c.log.printf("cluster %s created in %.1fs", c.Name, c.CreateTook.Seconds())
		return nil
	})
	g.Go(func() error { return c.LoadImages(gctx, spec.PreloadImages...) })
	if err := g.Wait(); err != nil {
		c.cleanupAfterFailure()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) cleanupAfterFailure() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := c.Delete(ctx); err != nil {
		c.log.printf("cluster %s: cleanup after failed create: %v", c.Name, err)
	}
}

// runCreate runs kind's create, which takes no context, in a goroutine so a
// cancelled ctx can abort it by deleting the nodes underneath it. kind's
// own readiness wait is off: it would spin on deleted nodes until its
// deadline, where waitNodesReady follows ctx.
func (c *Cluster) runCreate(ctx context.Context, nodeImage string, cfg *v1alpha4.Cluster) error {
	opts := []kindcluster.CreateOption{
		kindcluster.CreateWithV1Alpha4Config(cfg),
		kindcluster.CreateWithKubeconfigPath(c.KubeconfigPath),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	}
	if nodeImage != "" {
		opts = append(opts, kindcluster.CreateWithNodeImage(nodeImage))
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	done := make(chan error, 1)
	go func() { done <- c.provider.Create(c.Name, opts...) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	c.log.printf("cluster %s: creation interrupted (%v): deleting the partial cluster", c.Name, context.Cause(ctx))
	if err := c.abortCreate(done); err != nil {
		return fmt.Errorf("%s; deleting the partial cluster failed: %w: %w", abortedMessage, context.Cause(ctx), err)
	}
	return fmt.Errorf("%s (partial cluster deleted): %w", abortedMessage, context.Cause(ctx))
}

// abortedMessage starts the error of a create interrupted while kind was
// still creating, so that the user (and a test) can tell that phase from a
// later one.
const abortedMessage = "interrupted while kind was still creating it"

// abortCreateTimeout bounds the deletes abortCreate repeats while kind's
// create has not returned; a last delete bounded by cleanupTimeout follows.
const abortCreateTimeout = 30 * time.Second

// abortCreate deletes nodes until kind's create returns. Deleting once is
// not enough: kind may still be starting node containers, which the first
// delete does not see, so this repeats for a bounded time.
func (c *Cluster) abortCreate(done <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), abortCreateTimeout)
	defer cancel()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		_ = c.deleteNodes(ctx)
		select {
		case <-done:
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		last, cancelLast := context.WithTimeout(context.Background(), cleanupTimeout)
		err := c.deleteNodes(last)
		cancelLast()
		return errors.Join(err, removeIfExists(c.KubeconfigPath))
	}
}

func (c *Cluster) deleteNodes(ctx context.Context) error {
	err := kindDo(ctx, "deleting kind cluster "+c.Name, func() error {
		// The explicit path matters: with "" kind edits the user's default kubeconfig.
		return c.provider.Delete(c.Name, c.KubeconfigPath)
	})
	if err == nil || ctx.Err() != nil {
		return err
	}
	return removeLeftNodes(ctx, c.Name, err)
}

// writeKubeconfig writes the cluster's external kubeconfig itself, replacing
// what kind merged, so the file holds exactly this cluster with mode 0600.
func (c *Cluster) writeKubeconfig(ctx context.Context) error {
	raw, err := kindCall(ctx, "reading kubeconfig of cluster "+c.Name, func() (string, error) { return c.provider.KubeConfig(c.Name, false) })
	if err != nil {
		return fmt.Errorf("reading kubeconfig of cluster %s: %w", c.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(c.KubeconfigPath), 0o755); err != nil {
		return fmt.Errorf("creating kubeconfig directory for %s: %w", c.Name, err)
	}
	if err := os.WriteFile(c.KubeconfigPath, []byte(raw), 0o600); err != nil {
		return fmt.Errorf("writing kubeconfig of cluster %s: %w", c.Name, err)
	}
	// WriteFile keeps the mode of an existing file.
	if err := os.Chmod(c.KubeconfigPath, 0o600); err != nil {
		return fmt.Errorf("restricting kubeconfig of cluster %s: %w", c.Name, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(raw))
	if err != nil {
		return fmt.Errorf("parsing kubeconfig of cluster %s: %w", c.Name, err)
	}
	c.RESTConfig = cfg
	return nil
}

// waitNodesReady waits until every node reports Ready, at most limit.
func (c *Cluster) waitNodesReady(ctx context.Context, limit time.Duration) error {
	cs, err := c.clientset()
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var state string
	err = wait.PollUntilContextCancel(waitCtx, time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			state = err.Error()
			return false, nil
		}
		var ready bool
		ready, state = nodesReady(list.Items)
		return ready, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for the nodes of cluster %s: %w", c.Name, context.Cause(ctx))
		}
		return fmt.Errorf("nodes of cluster %s not Ready after %s: %s", c.Name, limit, state)
	}
	c.log.printf("cluster %s: nodes Ready after %.1fs", c.Name, time.Since(start).Seconds())
	return nil
}

// nodesReady reports whether there are nodes and all are Ready, and else
// what the first one that is not says.
func nodesReady(list []corev1.Node) (bool, string) {
	if len(list) == 0 {
		return false, "no node has registered"
	}
	for _, n := range list {
		var cond *corev1.NodeCondition
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady {
				cond = &n.Status.Conditions[i]
			}
		}
		switch {
		case cond == nil:
			return false, fmt.Sprintf("node %s has no Ready condition yet", n.Name)
		case cond.Status != corev1.ConditionTrue:
			return false, fmt.Sprintf("node %s: Ready=%s %s: %s", n.Name, cond.Status, cond.Reason, cond.Message)
		}
	}
	return true, ""
}

// CreateAll creates the clusters in parallel. Every cluster of the same
// name is checked first, so that one that is not flux-fleet's stops the run
// before anything is created or deleted. If any creation fails, the
// clusters this call created are deleted again (reused ones are left
// alone) and the errors of all failures are returned.
func CreateAll(ctx context.Context, specs []Spec) ([]*Cluster, error) {
	return createAll(ctx, specs, prepare, (*plan).run, deleteCluster)
}

func deleteCluster(c *Cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	return c.Delete(ctx)
}

func createAll(ctx context.Context, specs []Spec,
	prepare func(context.Context, Spec) (*plan, error),
	run func(*plan, context.Context) (*Cluster, error),
	del func(*Cluster) error,
) ([]*Cluster, error) {
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Name] {
			return nil, fmt.Errorf("cluster %q listed twice", s.Name)
		}
		seen[s.Name] = true
	}
	ctxs := make([]context.Context, len(specs))
	for i, s := range specs {
		var cancel context.CancelFunc
		ctxs[i], cancel = s.withTimeout(ctx)
		defer cancel()
	}
	plans := make([]*plan, len(specs))
	errs := make([]error, len(specs))
	var g errgroup.Group
	for i, s := range specs {
		g.Go(func() error {
			plans[i], errs[i] = prepare(ctxs[i], s)
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	clusters := make([]*Cluster, len(specs))
	// Not errgroup.WithContext: one failure must not abort the others
	// half-way, which would leave partial clusters to clean up.
	var created errgroup.Group
	for i, p := range plans {
		created.Go(func() error {
			clusters[i], errs[i] = run(p, ctxs[i])
			return nil
		})
	}
	_ = created.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range clusters {
			if c != nil && !c.Reused {
				if derr := del(c); derr != nil {
					err = errors.Join(err, derr)
				}
			}
		}
		return nil, err
	}
	return clusters, nil
}

// Delete deletes the cluster's nodes and its kubeconfig file, and releases
// the hold Create took. A Cluster built by hand (only Name set) holds its
// name for the deletion, so that it fails with a *HeldError instead of
// deleting a cluster a live run is using. When ctx ends first Delete returns
// at once with an error while kind finishes the deletion in the
// background. A node container the Docker engine will not remove is
// reported as an *EngineRefusedError.
func (c *Cluster) Delete(ctx context.Context) error {
	c.init()
	c.mu.Lock()
	held := c.held
	c.mu.Unlock()
	if !held {
		dir, err := DefaultHoldDir(ctx)
		if err != nil {
			return fmt.Errorf("deleting kind cluster %s: %w", c.Name, err)
		}
		h, err := takeHold(dir, c.Name, holderInfo(Spec{Name: c.Name, WorkDir: filepath.Dir(c.KubeconfigPath)}, "", time.Now()))
		if err != nil {
			return fmt.Errorf("deleting kind cluster %s: %w", c.Name, err)
		}
		defer h.release()
	}
	start := time.Now()
	if err := c.deleteNodes(ctx); err != nil {
		return fmt.Errorf("deleting kind cluster %s: %w", c.Name, err)
	}
	if err := removeIfExists(c.KubeconfigPath); err != nil {
		return err
	}
	c.mu.Lock()
	c.deleted = true
	if c.hold != nil {
		c.hold.release()
		c.hold = nil
		c.held = false
	}
	c.mu.Unlock()
	c.log.printf("cluster %s deleted in %.1fs", c.Name, time.Since(start).Seconds())
	return nil
}

// init fills in what a Cluster built by hand (only Name set) lacks.
func (c *Cluster) init() {
	if c.log == nil {
		c.log = newLineWriter(os.Stderr)
	}
	if c.provider == nil {
		c.provider = newProvider(c.log, c.Name)
	}
}

func removeIfExists(path string) error {
	if path == "" {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// ExportLogs writes kind's node logs (journal, containerd, kubelet, pods)
// into dir. Logs that could not be gathered are listed in
// dir/collect-errors.txt rather than failing the whole export.
func (c *Cluster) ExportLogs(ctx context.Context, dir string) error {
	c.init()
	err := kindDo(ctx, "collecting logs of cluster "+c.Name, func() error { return c.provider.CollectLogs(c.Name, dir) })
	if err == nil {
		return nil
	}
	// kind gathers each log with its own command and reports every one that
	// failed (a node image without crictl, say); the rest are still worth
	// having, so only a collection that produced no node logs is an error.
	nodeDir := filepath.Join(dir, c.Name+"-control-plane")
	if _, statErr := os.Stat(nodeDir); statErr != nil || ctx.Err() != nil {
		return fmt.Errorf("collecting logs of cluster %s: %w", c.Name, err)
	}
	note := filepath.Join(dir, "collect-errors.txt")
	_ = os.WriteFile(note, []byte(err.Error()+"\n"), 0o644)
	c.log.printf("cluster %s: some logs could not be collected (see %s): %v", c.Name, note, err)
	return nil
}

// LoadImages loads local docker images into every node. One `docker save`
// stream carries all images, so layers they share are sent once, and it is
// fanned out to all nodes at the same time.
func (c *Cluster) LoadImages(ctx context.Context, images ...string) error {
	if len(images) == 0 {
		return nil
	}
	c.init()
	start := time.Now()
	nodeList, err := kindCall(ctx, "listing nodes of cluster "+c.Name, func() ([]nodes.Node, error) { return c.provider.ListInternalNodes(c.Name) })
	if err != nil {
		return fmt.Errorf("listing nodes of cluster %s: %w", c.Name, err)
	}
	if len(nodeList) == 0 {
		return fmt.Errorf("loading images into cluster %s: it has no nodes", c.Name)
	}
	missing, err := missingImages(ctx, nodeList, images)
	if err != nil {
		return fmt.Errorf("loading images into cluster %s: %w", c.Name, err)
	}
	if len(missing) == 0 {
		c.LoadTook, c.Loaded = time.Since(start), nil
		c.log.printf("cluster %s: images already present: %s (checked in %.1fs)", c.Name, strings.Join(images, " "), c.LoadTook.Seconds())
		return nil
	}
	if err := loadArchive(ctx, nodeList, missing); err != nil {
		return fmt.Errorf("loading images %s into cluster %s: %w", strings.Join(missing, ", "), c.Name, err)
	}
	c.LoadTook, c.Loaded = time.Since(start), missing
	c.log.printf("cluster %s: loaded %d image(s) in %.1fs: %s", c.Name, len(missing), c.LoadTook.Seconds(), strings.Join(missing, " "))
	return nil
}

// inspectImages prints "<image>\t<containerd image ID>" for every image
// argument, the ID empty when the node lacks it: one exec per node instead
// of one per image, which on busy cores took seconds of a bring-up.
const inspectImages = `for i in "$@"; do printf '%s\t%s\n' "$i" "$(crictl inspecti -o go-template --template '{{.status.id}}' "$i" 2>/dev/null)"; done`

// nodeImageIDs returns the containerd image ID of each image on node n,
// "" for those it lacks.
func nodeImageIDs(ctx context.Context, n nodes.Node, images []string) (map[string]string, error) {
	var out, stderr bytes.Buffer
	if err := n.CommandContext(ctx, "sh", append([]string{"-c", inspectImages, "sh"}, images...)...).SetStdout(&out).SetStderr(&stderr).Run(); err != nil {
		return nil, fmt.Errorf("listing images on node %s: %w (%s)", n, err, strings.TrimSpace(stderr.String()))
	}
	return parseImageIDs(out.String()), nil
}

// parseImageIDs reads inspectImages' output.
func parseImageIDs(out string) map[string]string {
	ids := map[string]string{}
	for line := range strings.Lines(out) {
		image, id, ok := strings.Cut(strings.TrimRight(line, "\n"), "\t")
		if ok {
			ids[image] = strings.TrimSpace(id)
		}
	}
	return ids
}

// missingImages returns the images some node lacks in the same version
// (same image ID) as the local docker engine, so a reused cluster does not
// receive the same gigabyte again. A node that cannot answer counts as lacking.
func missingImages(ctx context.Context, nodeList []nodes.Node, images []string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", append([]string{"image", "inspect", "--format", "{{.Id}}"}, images...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("images %s are not all in the local docker engine: %s", strings.Join(images, ", "), strings.TrimSpace(stderr.String()))
	}
	local := strings.Fields(string(out))
	if len(local) != len(images) {
		return nil, fmt.Errorf("docker image inspect of %d images answered %d IDs", len(images), len(local))
	}
	onNodes := make([]map[string]string, len(nodeList))
	for i, n := range nodeList {
		// A node that cannot answer lacks everything.
		onNodes[i], _ = nodeImageIDs(ctx, n, images)
	}
	var missing []string
	for i, img := range images {
		for _, ids := range onNodes {
			if ids[img] != local[i] {
				missing = append(missing, img)
				break
			}
		}
	}
	return missing, nil
}

var errNodeFinished = errors.New("node stopped reading the image archive")

func loadArchive(ctx context.Context, nodeList []nodes.Node, images []string) error {
	save := exec.CommandContext(ctx, "docker", append([]string{"save"}, images...)...)
	var stderr bytes.Buffer
	save.Stderr = &stderr
	out, err := save.StdoutPipe()
	if err != nil {
		return err
	}
	if err := save.Start(); err != nil {
		return fmt.Errorf("starting docker save: %w", err)
	}

	writers := make([]io.Writer, len(nodeList))
	pipes := make([]*io.PipeWriter, len(nodeList))
	readers := make([]*io.PipeReader, len(nodeList))
	nodeErrs := make([]error, len(nodeList))
	var wg sync.WaitGroup
	for i, n := range nodeList {
		pr, pw := io.Pipe()
		writers[i], pipes[i], readers[i] = pw, pw, pr
		wg.Go(func() {
			err := nodeutils.LoadImageArchive(n, pr)
			if err != nil {
				nodeErrs[i] = fmt.Errorf("node %s: %w", n.String(), err)
			}
			// Unblocks the fan-out if this node gave up early.
			_ = pr.CloseWithError(errNodeFinished)
		})
	}
	// A node that stops reading without exiting would block the fan-out
	// (and docker save behind it) for good: closing the pipes on ctx ends
	// both sides.
	stop := context.AfterFunc(ctx, func() {
		for i := range pipes {
			_ = pipes[i].CloseWithError(context.Cause(ctx))
			_ = readers[i].CloseWithError(context.Cause(ctx))
		}
	})
	defer stop()
	_, copyErr := io.Copy(io.MultiWriter(writers...), out)
	for _, pw := range pipes {
		_ = pw.CloseWithError(copyErr)
	}
	nodesDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(nodesDone)
	}()
	select {
	case <-nodesDone:
	case <-ctx.Done():
		// kind's import commands take no context; they end on the closed
		// pipe in the background.
		_ = save.Wait()
		return fmt.Errorf("interrupted while the nodes imported the archive: %w", context.Cause(ctx))
	}
	waitErr := save.Wait()
	if waitErr != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("docker save: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	if err := errors.Join(nodeErrs...); err != nil {
		return err
	}
	if copyErr != nil && !errors.Is(copyErr, errNodeFinished) {
		return fmt.Errorf("streaming image archive: %w", copyErr)
	}
	return nil
}
