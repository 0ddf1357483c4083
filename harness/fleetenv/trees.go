package fleetenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/gitserver"
)

// fleetTree is one tree of the fleet that the run serves: the working tree,
// or a revision's tree exported for the offline checks and the pre-flight,
// which must judge what the clusters will be served.
type fleetTree struct {
	// Label names the tree in messages: "working tree" or `revision "x" (commit y)`.
	Label string
	Dir   string
}

// exportTimeout bounds reading one revision's tree out of git.
const exportTimeout = time.Minute

// treesToServe returns the trees the run will serve, in order: the base's
// (E2E_BASE), then the head's — E2E_REVISION's, else the working tree. It
// exports each revision once into the run's scratch directory, and checks
// that every environment has its clusters/<env> directory there.
func (r *Run) treesToServe(ctx context.Context) ([]fleetTree, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.trees != nil {
		return r.trees, nil
	}
	var trees []fleetTree
	for _, rev := range []string{r.opts.Base, r.opts.Revision} {
		if rev == "" {
			continue
		}
		t, err := r.exportRevision(ctx, rev, len(trees))
		if err != nil {
			return nil, err
		}
		trees = append(trees, t)
	}
	if r.opts.Revision == "" {
		trees = append(trees, fleetTree{Label: "working tree", Dir: r.opts.FleetDir})
	}
	for _, t := range trees {
		for _, env := range r.opts.Envs {
			if fi, err := os.Stat(filepath.Join(t.Dir, "clusters", env)); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("fleet %s, %s: environment %s has no directory clusters/%s", r.opts.FleetDir, t.Label, env, env)
			}
		}
	}
	r.trees = trees
	return trees, nil
}

// exportRevision writes the fleet directory's tree at rev into the scratch
// directory (called with r.mu held).
func (r *Run) exportRevision(ctx context.Context, rev string, index int) (fleetTree, error) {
	s, err := r.scratchLocked()
	if err != nil {
		return fleetTree{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, exportTimeout)
	defer cancel()
	dst := filepath.Join(s.Dir, "tree-"+strconv.Itoa(index))
	commit, err := gitserver.ExportRevision(ctx, r.opts.FleetDir, rev, dst)
	if err != nil {
		return fleetTree{}, fmt.Errorf("reading the fleet at revision %q: %w", rev, err)
	}
	return fleetTree{Label: fmt.Sprintf("revision %q (commit %.12s)", rev, commit), Dir: dst}, nil
}

// scratchLocked returns the run's scratch directory, making it (and
// reclaiming dead runs' directories) on first use; r.mu must be held.
func (r *Run) scratchLocked() (*scratch, error) {
	if r.scratch != nil {
		return r.scratch, nil
	}
	s, reclaimed, err := newScratch("")
	for _, d := range reclaimed {
		r.logf("removed %s, left by a run that is gone", d)
	}
	if err != nil {
		return nil, err
	}
	r.scratch = s
	return s, nil
}

// scratchDir is scratchLocked for callers without the lock.
func (r *Run) scratchDir() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.scratchLocked()
	if err != nil {
		return "", err
	}
	return s.Dir, nil
}
