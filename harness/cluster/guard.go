package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
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

	mu       sync.Mutex
	clusters []*Cluster
}

// NewGuard returns a Guard with the given policy, logging to log.
func NewGuard(keep KeepPolicy, log io.Writer) *Guard {
	return &Guard{Keep: keep, Log: log, RunID: NewRunID()}
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
	if c == nil {
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

// Create is Create plus Track. When ctx ends while kind is still creating,
// Create deletes the partial cluster before it returns.
func (g *Guard) Create(ctx context.Context, spec Spec) (*Cluster, error) {
	c, err := Create(ctx, g.withRun(spec))
	if err == nil {
		g.Track(c)
	}
	return c, err
}

func (g *Guard) withRun(s Spec) Spec {
	if s.RunID == "" {
		s.RunID = g.RunID
	}
	return s
}

// CreateAll is CreateAll plus Track.
func (g *Guard) CreateAll(ctx context.Context, specs []Spec) ([]*Cluster, error) {
	own := make([]Spec, len(specs))
	for i, s := range specs {
		own[i] = g.withRun(s)
	}
	clusters, err := createAll(ctx, own, prepare, (*plan).run, deleteCluster)
	for _, c := range clusters {
		g.Track(c)
	}
	return clusters, err
}

// Cleanup deletes the tracked clusters this run created, unless the keep
// policy keeps them for a run that failed (or not). Kept clusters are
// listed with their kubeconfig and stay tracked; deleted ones are forgotten,
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
	g.mu.Unlock()
	return errors.Join(errs...)
}

func (c *Cluster) isDeleted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deleted
}
