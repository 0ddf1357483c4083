package fleetenv

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/report"
)

// runState is what a run's steps returned, recorded in one place under one
// mutex: the steps get their inputs from it and hand their results back.
type runState struct {
	mu      sync.Mutex
	envs    map[string]*Environment
	timings []StepTiming
	servers servers
	// clusterWork is the cluster-side work the clusters step started, per
	// environment, for the Flux install to wait on.
	clusterWork map[string]*clusterWork
	// report mirrors every result recorded here into the run report.
	report *report.Builder
}

// servers are the servers the clusters fetch from.
type servers struct {
	git    *gitserver.Server
	charts *chartserver.Server
	// gateway is the host address the clusters reach the servers at;
	// chartsPort the chart server's port there.
	gateway    string
	chartsPort int
	// inCluster are the fleet servers in the clusters, by environment
	// (Options.Servers "cluster"); the sync points there.
	inCluster map[string]fleetServer
}

// waitOutcome is what one environment's readiness wait found: report, and
// err nil when every object became Ready.
type waitOutcome struct {
	report *readiness.Report
	err    error
}

func newRunState(run report.Run) *runState {
	return &runState{envs: map[string]*Environment{}, clusterWork: map[string]*clusterWork{}, report: report.NewBuilder(run)}
}

func (s *runState) env(name string) *Environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.envs[name]
}

// environments returns the named environments, in order; each must have
// been brought up.
func (s *runState) environments(names []string) ([]*Environment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	envs := make([]*Environment, 0, len(names))
	for _, name := range names {
		e := s.envs[name]
		if e == nil {
			return nil, fmt.Errorf("environment %s has no cluster", name)
		}
		envs = append(envs, e)
	}
	return envs, nil
}

func (s *runState) gitServer() *gitserver.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.servers.git
}

func (s *runState) chartServer() *chartserver.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.servers.charts
}

func (s *runState) serversNow() servers {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.servers
}

func (s *runState) recordTiming(t StepTiming, start time.Time) {
	s.report.AddStep("", t.Name, start, start.Add(t.Took), t.Err)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timings = append(s.timings, t)
}

func (s *runState) stepTimings() []StepTiming {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.timings)
}

func (s *runState) recordCharts(c *chartserver.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servers.charts = c
}

// recordServers records what the servers step started: the git server and
// where the clusters reach the servers.
func (s *runState) recordServers(git *gitserver.Server, gateway string, chartsPort int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servers.git, s.servers.gateway, s.servers.chartsPort = git, gateway, chartsPort
}

// takeServers hands the servers over for closing, once.
func (s *runState) takeServers() (*gitserver.Server, *chartserver.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	git, charts := s.servers.git, s.servers.charts
	s.servers.git, s.servers.charts = nil, nil
	return git, charts
}

func (s *runState) recordEnvironment(e *Environment, work *clusterWork) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envs[e.Name] = e
	s.clusterWork[e.Name] = work
}

func (s *runState) clusterWorkOf(env string) *clusterWork {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clusterWork[env]
}

// takeClusterWork hands every environment's cluster work over for
// stopping, once.
func (s *runState) takeClusterWork() []*clusterWork {
	s.mu.Lock()
	defer s.mu.Unlock()
	var work []*clusterWork
	for _, w := range s.clusterWork {
		work = append(work, w)
	}
	clear(s.clusterWork)
	return work
}

func (s *runState) recordFluxInstall(env string, res *fluxinstall.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envs[env].FluxInstall = res
}

func (s *runState) recordOutcome(env string, o waitOutcome) {
	s.report.SetReadiness(env, o.report, o.err)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.envs[env]
	e.Report, e.Ready = o.report, o.err
}

// outcome returns an environment's last readiness outcome.
func (s *runState) outcome(env string) waitOutcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.envs[env]
	return waitOutcome{report: e.Report, err: e.Ready}
}

func (s *runState) recordSummary(env, summary string) {
	s.report.SetDiagnosis(env, summary)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envs[env].Summary = summary
}

// clearOutcome forgets an environment's outcome and diagnostics, for a
// fleet that was cleared off it, in the run report too.
func (s *runState) clearOutcome(env string) {
	s.report.ClearEnvironment(env)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.envs[env]
	e.Ready, e.Report, e.Summary = nil, nil, ""
}
