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
)

// KeepPolicy says when clusters created by a run survive its end.
type KeepPolicy int

const (
	KeepNever     KeepPolicy = iota // always delete
	KeepOnFailure                   // keep for debugging when the run failed or was interrupted
	KeepAlways                      // never delete
)

// ParseKeepPolicy accepts "never", "on-failure" and "always" (case
// insensitive; "" means never), the values of E2E_KEEP.
func ParseKeepPolicy(s string) (KeepPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "never", "false", "no":
		return KeepNever, nil
	case "on-failure", "onfailure", "failure":
		return KeepOnFailure, nil
	case "always", "true", "yes":
		return KeepAlways, nil
	}
	return KeepNever, fmt.Errorf("unknown keep policy %q: want never, on-failure or always", s)
}

func (k KeepPolicy) String() string {
	switch k {
	case KeepNever:
		return "never"
	case KeepOnFailure:
		return "on-failure"
	case KeepAlways:
		return "always"
	}
	return fmt.Sprintf("KeepPolicy(%d)", int(k))
}

// Keep reports whether clusters survive a run that failed or not.
func (k KeepPolicy) Keep(failed bool) bool {
	return k == KeepAlways || (k == KeepOnFailure && failed)
}

// Guard remembers the clusters a run created so that they are deleted at
// the end, on failure or on SIGINT/SIGTERM, as the keep policy says.
// Reused clusters are never deleted by a Guard: they belong to an earlier run.
type Guard struct {
	Keep KeepPolicy
	Log  io.Writer // nil = os.Stderr
	// RunID names this run in the ownership marker of the clusters created
	// through the Guard whose Spec has none (NewGuard sets a NewRunID).
	RunID string
	// HoldDir is where the Guard holds its cluster names (see Guard.Create);
	// "" = DefaultHoldDir, shared by all runs against the same Docker engine.
	HoldDir string

	mu       sync.Mutex
	clusters []*Cluster
	holds    map[string]*hold
	started  time.Time // recorded in the holds; zero = when the hold is taken
}

// NewGuard returns a Guard with the given policy, logging to log.
func NewGuard(keep KeepPolicy, log io.Writer) *Guard {
	return &Guard{Keep: keep, Log: log, RunID: NewRunID(), started: time.Now()}
}

func (g *Guard) log() *lineWriter {
	if g.Log == nil {
		return newLineWriter(os.Stderr)
	}
	return newLineWriter(g.Log)
}

// Track adds a cluster for Cleanup; reused clusters are recorded but left
// alone. Tracking a name again replaces the entry, except that a cluster
// this run created stays this run's when it is later reused.
func (g *Guard) Track(c *Cluster) {
	// A cluster the harness did not create is never the Guard's to delete.
	if c == nil || c.existing {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, old := range g.clusters {
		if old.Name == c.Name {
			if !c.Reused || old.Reused || old.isDeleted() {
				g.clusters[i] = c
			}
			return
		}
	}
	g.clusters = append(g.clusters, c)
}

// Create is Create plus Track. It first holds the cluster name for the
// Guard's run: when another live run holds it, Create fails with a
// *HeldError before anything is created, reused, deleted or written. The
// hold lasts until Cleanup has deleted the cluster, or until the process
// exits when the cluster is kept. When ctx ends while kind is still
// creating, Create deletes the partial cluster before it returns.
func (g *Guard) Create(ctx context.Context, spec Spec) (*Cluster, error) {
	clusters, err := g.createAll(ctx, []Spec{spec}, func(ctx context.Context, specs []Spec) ([]*Cluster, error) {
		c, err := create(ctx, specs[0])
		if err != nil {
			return nil, err
		}
		return []*Cluster{c}, nil
	})
	if err != nil {
		return nil, err
	}
	return clusters[0], nil
}

func (g *Guard) withRun(s Spec) Spec {
	if s.RunID == "" {
		s.RunID = g.RunID
	}
	return s
}

// CreateAll is CreateAll plus Track, holding every name first as Create does:
// one name held by another live run stops the whole call untouched.
func (g *Guard) CreateAll(ctx context.Context, specs []Spec) ([]*Cluster, error) {
	return g.createAll(ctx, specs, func(ctx context.Context, specs []Spec) ([]*Cluster, error) {
		return createAll(ctx, specs, prepare, (*plan).run, deleteCluster)
	})
}

// createAll holds the names, runs create and tracks what it made. Holds
// taken by this call are released again when it fails.
func (g *Guard) createAll(ctx context.Context, specs []Spec, create func(context.Context, []Spec) ([]*Cluster, error)) ([]*Cluster, error) {
	own := make([]Spec, len(specs))
	for i, s := range specs {
		own[i] = g.withRun(s)
	}
	taken, err := g.hold(ctx, own)
	if err != nil {
		return nil, err
	}
	clusters, err := create(ctx, own)
	for _, c := range clusters {
		g.Track(c)
	}
	if err != nil {
		g.releaseUntracked(taken)
	}
	return clusters, err
}

// hold holds the names of specs the Guard does not hold yet and returns
// the holds it took.
func (g *Guard) hold(ctx context.Context, specs []Spec) ([]*hold, error) {
	dir := g.HoldDir
	if dir == "" {
		var err error
		if dir, err = DefaultHoldDir(ctx); err != nil {
			return nil, err
		}
	}
	started := g.started
	if started.IsZero() {
		started = time.Now()
	}
	byName := map[string]Spec{}
	var names []string
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range specs {
		if err := s.validate(); err != nil {
			return nil, err
		}
		if g.holds[s.Name] == nil {
			byName[s.Name] = s
			names = append(names, s.Name)
		}
	}
	taken, err := takeHolds(dir, names, func(n string) HolderInfo { return holderInfo(byName[n], byName[n].RunID, started) })
	if err != nil {
		return nil, err
	}
	if g.holds == nil {
		g.holds = map[string]*hold{}
	}
	for _, h := range taken {
		g.holds[h.name] = h
	}
	return taken, nil
}

// releaseUntracked releases those of holds whose name has no tracked
// cluster.
func (g *Guard) releaseUntracked(holds []*hold) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, h := range holds {
		if !slices.ContainsFunc(g.clusters, func(c *Cluster) bool { return c.Name == h.name }) {
			h.release()
			delete(g.holds, h.name)
		}
	}
}

// releaseAllBut releases every hold but those of keep's names.
func (g *Guard) releaseAllBut(keep []*Cluster) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, h := range g.holds {
		if !slices.ContainsFunc(keep, func(c *Cluster) bool { return c.Name == name }) {
			h.release()
			delete(g.holds, name)
		}
	}
}

// Cleanup deletes the tracked clusters this run created, unless the keep
// policy keeps them for a run that failed (or not), then releases the holds
// of all names but the clusters still there. Kept clusters are listed with
// their kubeconfig and stay tracked (and held); deleted ones are forgotten,
// so calling Cleanup twice is harmless.
func (g *Guard) Cleanup(ctx context.Context, failed bool) error {
	g.mu.Lock()
	clusters := g.clusters
	g.clusters = nil
	g.mu.Unlock()

	log := g.log()
	var errs []error
	var remaining []*Cluster
	for _, c := range clusters {
		switch {
		case c.isDeleted():
		case c.Reused:
			log.printf("cluster %s was reused: left running", c.Name)
		case g.Keep.Keep(failed):
			log.printf("keeping cluster %s (keep=%s): KUBECONFIG=%s", c.Name, g.Keep, c.KubeconfigPath)
			remaining = append(remaining, c)
		default:
			dctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
			err := c.Delete(dctx)
			cancel()
			if err != nil {
				errs = append(errs, err)
				remaining = append(remaining, c)
			}
		}
	}
	g.mu.Lock()
	g.clusters = append(remaining, g.clusters...)
	still := slices.Clone(g.clusters)
	g.mu.Unlock()
	// A kept cluster, or one whose deletion failed, stays held until the
	// process exits: no other run may take over what this one left.
	g.releaseAllBut(still)
	return errors.Join(errs...)
}

func (c *Cluster) isDeleted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deleted
}
