package fluxobj

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager is the server-side apply field manager (and ssa owner) of
// everything the harness applies.
const FieldManager = "flux-fleet"

// Clients are the API clients of one environment, built once and shared by
// every step: typed, dynamic and metadata clients, one discovery-backed
// mapper, a controller-runtime client and one ssa ResourceManager.
type Clients struct {
	Config    *rest.Config
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Metadata  metadata.Interface
	Mapper    apimeta.ResettableRESTMapper
	Client    client.Client
	Resources *ssa.ResourceManager
}

// NewClients builds the clients of the cluster behind cfg. Nothing is
// requested from the API server until a client is used.
func NewClients(cfg *rest.Config) (*Clients, error) {
	// client-go's default client-side rate limit would throttle the dry-run
	// and apply of every object a Flux install sends; a test cluster of our
	// own needs no throttle.
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS, cfg.Burst = 200, 400
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating dynamic client: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating metadata client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating discovery client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	c, err := client.New(cfg, client.Options{Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("creating controller-runtime client: %w", err)
	}
	poller := polling.NewStatusPoller(c, mapper, polling.Options{})
	resources := ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: FieldManager})
	// Drift checks (dry-run applies) are independent round trips.
	resources.SetConcurrency(8)
	return &Clients{
		Config:    cfg,
		Kube:      kube,
		Dynamic:   dyn,
		Metadata:  md,
		Mapper:    mapper,
		Client:    c,
		Resources: resources,
	}, nil
}

// ResetMapper forgets cached API discovery, after CRDs were installed.
func (c *Clients) ResetMapper() { c.Mapper.Reset() }
