package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/flux-fleet/flux-fleet/harness/internal/redact"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

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
	got, err := readMarker(ctx, p.c.provider, spec.Name, p.c.log)
	if err != nil {
		if ctx.Err() != nil { // the run was stopped, not the marker unreadable
			return nil, fmt.Errorf("checking the owner of existing cluster %s: %w", spec.Name, err)
		}
		return nil, &NotOwnedError{Name: spec.Name, Err: err}
	}
	p.action, p.reason, err = decide(spec.Name, got, want, spec.Reuse)
	return p, err
}

// run carries out the plan.
func (p *plan) run(ctx context.Context) (*Cluster, error) {
	c := p.c
	switch p.action {
	case actionReuse:
		return p.reuse(ctx)
	case actionRecreate:
		c.log.printf("%s", p.reason)
		if err := deleteNodes(ctx, c.provider, c.Name, c.KubeconfigPath); err != nil {
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

	// kind writes (and merges into) its kubeconfig by path: it gets one in
	// a directory of its own; writeKubeconfig then replaces the file the
	// user reads, link or not, without following it.
	kindDir, err := os.MkdirTemp("", "flux-fleet-kind-"+c.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("creating kind cluster %s: a private directory for kind's kubeconfig: %w", c.Name, err)
	}
	defer os.RemoveAll(kindDir)

	start := time.Now()
	if err := p.runCreate(ctx, filepath.Join(kindDir, "kubeconfig")); err != nil {
		// runCreate deleted the nodes; the file may remain.
		_ = removeIfExists(c.KubeconfigPath)
		return nil, fmt.Errorf("creating kind cluster %s: %w", c.Name, err)
	}
	if err := p.settle(ctx, start); err != nil {
		p.cleanupAfterFailure()
		return nil, err
	}
	return c, nil
}

// reuse takes over the existing cluster the plan found: it writes its
// kubeconfig and loads the preload images the nodes lack.
func (p *plan) reuse(ctx context.Context) (*Cluster, error) {
	c := p.c
	c.Reused = true
	cfg, err := writeKubeconfig(ctx, c.provider, c.Name, c.KubeconfigPath)
	if err != nil {
		return nil, err
	}
	c.RESTConfig = cfg
	c.log.printf("cluster %s reused (kubeconfig %s)", c.Name, c.KubeconfigPath)
	if err := c.LoadImages(ctx, p.spec.PreloadImages...); err != nil {
		return nil, err
	}
	return c, nil
}

// settle makes a cluster kind has just created (at start) ready for tests:
// its kubeconfig, Ready nodes, a quicker cluster DNS, the Service network
// when the spec asks for it, and the preload images. Its caller deletes the
// cluster when it fails.
func (p *plan) settle(ctx context.Context, start time.Time) error {
	c, spec := p.c, p.spec
	cfg, err := writeKubeconfig(ctx, c.provider, c.Name, c.KubeconfigPath)
	if err != nil {
		return err
	}
	c.RESTConfig = cfg
	cs, err := boundedClientset(cfg)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	wait := spec.WaitForReady
	if wait <= 0 {
		wait = DefaultWaitForReady
	}
	if err := waitNodesReady(ctx, cs, c.Name, c.log, wait); err != nil {
		return err
	}
	services := serviceNetwork{name: c.Name, cs: cs, provider: c.provider, log: c.log}
	if err := services.quickenClusterDNS(ctx); err != nil {
		return err
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
	return g.Wait()
}

// cleanupAfterFailure deletes the cluster a failed create left, on a
// context of its own: the create's has often ended already.
func (p *plan) cleanupAfterFailure() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := p.c.Delete(ctx); err != nil {
		p.c.log.printf("cluster %s: cleanup after failed create: %v", p.c.Name, err)
	}
}

// runCreate runs kind's create, which takes no context, in a goroutine so a
// cancelled ctx can abort it by deleting the nodes underneath it. kind's
// own readiness wait is off: it would spin on deleted nodes until its
// deadline, where waitNodesReady follows ctx. kind writes its kubeconfig
// to kindKubeconfig.
func (p *plan) runCreate(ctx context.Context, kindKubeconfig string) error {
	c := p.c
	opts := []kindcluster.CreateOption{
		kindcluster.CreateWithV1Alpha4Config(p.cfg),
		kindcluster.CreateWithKubeconfigPath(kindKubeconfig),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
		// Failed nodes are kept for failedCreate to read, then deleted.
		kindcluster.CreateWithRetain(true),
	}
	if p.spec.NodeImage != "" {
		opts = append(opts, kindcluster.CreateWithNodeImage(p.spec.NodeImage))
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	done := make(chan error, 1)
	go func() { done <- c.provider.Create(c.Name, opts...) }()
	select {
	case err := <-done:
		if err != nil {
			// kind's error quotes its docker commands, proxy settings included.
			return p.failedCreate(redactedError{err})
		}
		return nil
	case <-ctx.Done():
	}
	c.log.printf("cluster %s: creation interrupted (%v): deleting the partial cluster", c.Name, context.Cause(ctx))
	if err := p.abortCreate(done); err != nil {
		return fmt.Errorf("%s; deleting the partial cluster failed: %w: %w", abortedMessage, context.Cause(ctx), err)
	}
	return fmt.Errorf("%s (partial cluster deleted): %w", abortedMessage, context.Cause(ctx))
}

// failedCreate adds to kind's error why the nodes went down, when their
// logs say, and deletes the nodes kind kept.
func (p *plan) failedCreate(kindErr error) error {
	c := p.c
	if why := explainFailedNodes(context.Background(), c.Name); why != "" {
		kindErr = fmt.Errorf("%w (%s)", kindErr, why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := deleteNodes(ctx, c.provider, c.Name, c.KubeconfigPath); err != nil {
		return fmt.Errorf("%w; deleting its nodes failed: %w", kindErr, err)
	}
	return kindErr
}

// abortedMessage starts the error of a create interrupted while kind was
// still creating, so that the user (and a test) can tell that phase from a
// later one.
const abortedMessage = "interrupted while kind was still creating it"

// abortCreateTimeout bounds the deletes abortCreate repeats, abortCreatePoll
// apart, while kind's create has not returned; a last delete bounded by
// cleanupTimeout follows.
const (
	abortCreateTimeout = 30 * time.Second
	abortCreatePoll    = 2 * time.Second
)

// abortCreate deletes nodes until kind's create returns. Deleting once is
// not enough: kind may still be starting node containers, which the first
// delete does not see, so this repeats for a bounded time.
func (p *plan) abortCreate(done <-chan error) error {
	c := p.c
	spec := poll.Every(abortCreatePoll).Within(abortCreateTimeout).For("kind's create of cluster " + c.Name + " to return")
	// Neither outcome changes what follows: the last delete below.
	_ = poll.Until(context.Background(), spec, func(ctx context.Context) (bool, error) {
		_ = deleteNodes(ctx, c.provider, c.Name, c.KubeconfigPath)
		select {
		case <-done:
			return true, nil
		default:
			return false, nil
		}
	})
	last, cancelLast := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancelLast()
	err := deleteNodes(last, c.provider, c.Name, c.KubeconfigPath)
	return errors.Join(err, removeIfExists(c.KubeconfigPath))
}

// redactedError is err with the credentials its text may quote (a node's
// proxy settings, docker run -e HTTPS_PROXY=...) replaced.
type redactedError struct{ err error }

func (e redactedError) Error() string { return string(redact.URLCredentials([]byte(e.err.Error()))) }
func (e redactedError) Unwrap() error { return e.err }
