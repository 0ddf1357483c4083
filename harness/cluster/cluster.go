// Package cluster creates, reuses, loads images into and deletes kind
// clusters through kind's Go library, so the e2e harness needs no kind
// binary and controls where kubeconfig files go: each cluster gets its own
// file and the user's default kubeconfig is never touched.
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
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

// DefaultWaitForReady bounds how long Create waits for the control plane
// node to become Ready when Spec.WaitForReady is zero.
const DefaultWaitForReady = 3 * time.Minute

// Spec describes one kind cluster.
type Spec struct {
	Name          string        // kind cluster name
	NodeImage     string        // "" = kind default (or the image in KindConfig)
	KindConfig    []byte        // raw v1alpha4 config; nil = kind default
	WorkDir       string        // kubeconfig written to WorkDir/<name>.kubeconfig (0600); "" = os.TempDir()
	Reuse         bool          // reuse an existing cluster of that name instead of recreating it
	PreloadImages []string      // local docker images loaded into every node after create
	WaitForReady  time.Duration // 0 = DefaultWaitForReady
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

// Cluster is a running kind cluster.
type Cluster struct {
	Name           string
	KubeconfigPath string
	RESTConfig     *rest.Config
	Reused         bool // true when it existed before this run

	provider *kindcluster.Provider
	log      *lineWriter
	mu       sync.Mutex
	deleted  bool // by Delete: a Guard has nothing left to do
}

func newProvider(log *lineWriter, name string) *kindcluster.Provider {
	return kindcluster.NewProvider(
		kindcluster.ProviderWithDocker(),
		kindcluster.ProviderWithLogger(newKindLogger(log, name, 0)),
	)
}

// Exists reports whether kind has nodes for a cluster of that name.
func Exists(ctx context.Context, name string) (bool, error) {
	return exists(newProvider(newLineWriter(io.Discard), name), name)
}

func exists(p *kindcluster.Provider, name string) (bool, error) {
	names, err := p.List()
	if err != nil {
		return false, fmt.Errorf("listing kind clusters: %w", err)
	}
	return slices.Contains(names, name), nil
}

// Create creates the cluster, writes its kubeconfig and loads the preload
// images. An existing cluster of the same name is reused when spec.Reuse is
// set, and otherwise deleted first: it is a leftover of an earlier run.
// When ctx ends during creation the partial cluster is deleted. Create
// either returns a usable cluster or leaves no new cluster behind.
func Create(ctx context.Context, spec Spec) (*Cluster, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	log := spec.logWriter()
	c := &Cluster{
		Name:           spec.Name,
		KubeconfigPath: spec.KubeconfigPath(),
		provider:       newProvider(log, spec.Name),
		log:            log,
	}
	found, err := exists(c.provider, c.Name)
	if err != nil {
		return nil, err
	}
	if found && spec.Reuse {
		c.Reused = true
		if err := c.writeKubeconfig(); err != nil {
			return nil, err
		}
		log.printf("cluster %s reused (kubeconfig %s)", c.Name, c.KubeconfigPath)
		if err := c.LoadImages(ctx, spec.PreloadImages...); err != nil {
			return nil, err
		}
		return c, nil
	}
	if found {
		log.printf("cluster %s exists from an earlier run: deleting it", c.Name)
		if err := c.deleteNodes(); err != nil {
			return nil, fmt.Errorf("deleting stale cluster %s: %w", c.Name, err)
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
	if err := c.runCreate(ctx, spec); err != nil {
		// kind removed its nodes already (no retain); the file may remain.
		_ = removeIfExists(c.KubeconfigPath)
		return nil, fmt.Errorf("creating kind cluster %s: %w", c.Name, err)
	}
	if err := c.writeKubeconfig(); err != nil {
		c.cleanupAfterFailure()
		return nil, err
	}
	log.printf("cluster %s created in %.1fs", c.Name, time.Since(start).Seconds())
	if err := c.LoadImages(ctx, spec.PreloadImages...); err != nil {
		c.cleanupAfterFailure()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) cleanupAfterFailure() {
	if err := c.Delete(context.Background()); err != nil {
		c.log.printf("cluster %s: cleanup after failed create: %v", c.Name, err)
	}
}

// runCreate runs kind's create, which takes no context, in a goroutine so a
// cancelled ctx can abort it by deleting the nodes underneath it.
func (c *Cluster) runCreate(ctx context.Context, spec Spec) error {
	wait := spec.WaitForReady
	if wait <= 0 {
		wait = DefaultWaitForReady
	}
	opts := []kindcluster.CreateOption{
		kindcluster.CreateWithKubeconfigPath(c.KubeconfigPath),
		kindcluster.CreateWithWaitForReady(wait),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	}
	if len(spec.KindConfig) > 0 {
		opts = append(opts, kindcluster.CreateWithRawConfig(spec.KindConfig))
	}
	if spec.NodeImage != "" {
		opts = append(opts, kindcluster.CreateWithNodeImage(spec.NodeImage))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.provider.Create(c.Name, opts...) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	c.log.printf("cluster %s: creation interrupted (%v): deleting the partial cluster", c.Name, context.Cause(ctx))
	c.abortCreate(done)
	return context.Cause(ctx)
}

// abortCreate deletes nodes until kind's create returns. Deleting once is
// not enough: kind may still be starting node containers, and after the
// nodes are gone its readiness wait spins until its own deadline, so this
// gives up waiting after a bound and relies on the repeated deletes.
func (c *Cluster) abortCreate(done <-chan error) {
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		_ = c.deleteNodes()
		select {
		case <-done:
			_ = c.deleteNodes()
			_ = removeIfExists(c.KubeconfigPath)
			return
		case <-deadline:
			_ = c.deleteNodes()
			_ = removeIfExists(c.KubeconfigPath)
			return
		case <-tick.C:
		}
	}
}

func (c *Cluster) deleteNodes() error {
	// The explicit path matters: with "" kind edits the user's default kubeconfig.
	return c.provider.Delete(c.Name, c.KubeconfigPath)
}

// writeKubeconfig writes the cluster's external kubeconfig itself, replacing
// what kind merged, so the file holds exactly this cluster with mode 0600.
func (c *Cluster) writeKubeconfig() error {
	raw, err := c.provider.KubeConfig(c.Name, false)
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

// CreateAll creates the clusters in parallel. If any fails, the clusters
// this call created are deleted again (reused ones are left alone) and the
// errors of all failures are returned.
func CreateAll(ctx context.Context, specs []Spec) ([]*Cluster, error) {
	return createAll(ctx, specs, Create, deleteCluster)
}

func deleteCluster(c *Cluster) error { return c.Delete(context.Background()) }

func createAll(ctx context.Context, specs []Spec, create func(context.Context, Spec) (*Cluster, error), del func(*Cluster) error) ([]*Cluster, error) {
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Name] {
			return nil, fmt.Errorf("cluster %q listed twice", s.Name)
		}
		seen[s.Name] = true
	}
	clusters := make([]*Cluster, len(specs))
	errs := make([]error, len(specs))
	// Not errgroup.WithContext: one failure must not abort the others
	// half-way, which would leave partial clusters to clean up.
	var g errgroup.Group
	for i, s := range specs {
		g.Go(func() error {
			clusters[i], errs[i] = create(ctx, s)
			return nil
		})
	}
	_ = g.Wait()
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

// Delete deletes the cluster's nodes and its kubeconfig file.
func (c *Cluster) Delete(ctx context.Context) error {
	c.init()
	start := time.Now()
	if err := c.deleteNodes(); err != nil {
		return fmt.Errorf("deleting kind cluster %s: %w", c.Name, err)
	}
	if err := removeIfExists(c.KubeconfigPath); err != nil {
		return err
	}
	c.mu.Lock()
	c.deleted = true
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
	err := c.provider.CollectLogs(c.Name, dir)
	if err == nil {
		return nil
	}
	// kind gathers each log with its own command and reports every one that
	// failed (a node image without crictl, say); the rest are still worth
	// having, so only a collection that produced no node logs is an error.
	nodeDir := filepath.Join(dir, c.Name+"-control-plane")
	if _, statErr := os.Stat(nodeDir); statErr != nil {
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
	nodeList, err := c.provider.ListInternalNodes(c.Name)
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
		c.log.printf("cluster %s: images already present: %s", c.Name, strings.Join(images, " "))
		return nil
	}
	if err := loadArchive(ctx, nodeList, missing); err != nil {
		return fmt.Errorf("loading images %s into cluster %s: %w", strings.Join(missing, ", "), c.Name, err)
	}
	c.log.printf("cluster %s: loaded %d image(s) in %.1fs: %s", c.Name, len(missing), time.Since(start).Seconds(), strings.Join(missing, " "))
	return nil
}

// missingImages returns the images some node lacks in the same version
// (same image ID) as the local docker engine, so a reused cluster does not
// receive the same gigabyte again. A node that cannot answer counts as lacking.
func missingImages(ctx context.Context, nodeList []nodes.Node, images []string) ([]string, error) {
	var missing []string
	for _, img := range images {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", img)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("image %s is not in the local docker engine: %s", img, strings.TrimSpace(stderr.String()))
		}
		id := strings.TrimSpace(string(out))
		for _, n := range nodeList {
			if onNode, err := nodeutils.ImageID(n, img); err != nil || onNode != id {
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
	nodeErrs := make([]error, len(nodeList))
	var wg sync.WaitGroup
	for i, n := range nodeList {
		pr, pw := io.Pipe()
		writers[i], pipes[i] = pw, pw
		wg.Go(func() {
			err := nodeutils.LoadImageArchive(n, pr)
			if err != nil {
				nodeErrs[i] = fmt.Errorf("node %s: %w", n.String(), err)
			}
			// Unblocks the fan-out if this node gave up early.
			_ = pr.CloseWithError(errNodeFinished)
		})
	}
	_, copyErr := io.Copy(io.MultiWriter(writers...), out)
	for _, pw := range pipes {
		_ = pw.CloseWithError(copyErr)
	}
	wg.Wait()
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
