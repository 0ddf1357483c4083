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
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
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
	// controller does without the wait; a caller with work to do meanwhile
	// calls WaitServiceNetwork itself.
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
	// Context is the kubeconfig context of a cluster the harness did not
	// create (Connect); "" for a kind cluster.
	Context string

	// existing: reached by Connect, not created by the harness.
	existing bool

	provider *kindcluster.Provider
	log      *lineWriter
	// held: the name is held by this process (a Guard or Create); hold is
	// the hold Delete releases (Create without a Guard). A Cluster built by
	// hand holds nothing.
	held    bool
	hold    *hold
	lease   *runLease // HoldExisting's, on a cluster the harness did not create
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

// init fills in what a Cluster built by hand (only Name set) lacks.
func (c *Cluster) init() {
	if c.log == nil {
		c.log = newLineWriter(os.Stderr)
	}
	if c.provider == nil {
		c.provider = newProvider(c.log, c.Name)
	}
}
