package fleetenv

import (
	"context"
	"io"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
	"github.com/flux-fleet/flux-fleet/harness/clusterserver"
)

// fleetServer is the fleet server in one environment's cluster
// (harness/clusterserver): what the servers step, the publisher and the
// teardown use of it, so that their tests can stand in for it.
type fleetServer interface {
	GitURL() string
	GitCredentials() (user, pass string)
	PushGit(ctx context.Context, bundle func(w io.Writer) error) error
	PushCharts(ctx context.Context, set chartrepo.Set) error
	Remove(ctx context.Context) error
	Close() error
}

// deployFleetServer deploys the fleet server into e's cluster.
func deployFleetServer(ctx context.Context, e *Environment, image string, log io.Writer) (fleetServer, error) {
	srv, err := clusterserver.Deploy(ctx, e.Clients, clusterserver.Options{Image: image, Log: log})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// FleetServerImage is the in-cluster fleet server's image: ServerImage, or
// the kit's.
func (o Options) FleetServerImage() string {
	if o.ServerImage != "" {
		return o.ServerImage
	}
	return o.Kit.ServerImage()
}

func (s *runState) recordFleetServer(env string, srv fleetServer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.servers.inCluster == nil {
		s.servers.inCluster = map[string]fleetServer{}
	}
	s.servers.inCluster[env] = srv
}

// takeFleetServers hands the in-cluster fleet servers over for closing
// or removing, once.
func (s *runState) takeFleetServers() map[string]fleetServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A new map, not cleared: a publish may still range over the old one.
	taken := s.servers.inCluster
	s.servers.inCluster = nil
	return taken
}
