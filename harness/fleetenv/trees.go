package fleetenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
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

// workspace is a run's files on this machine: its private scratch
// directory, made on first use, and the fleet trees it serves.
type workspace struct {
	opts Options
	log  logger

	mu      sync.Mutex
	scratch *scratch
	trees   []fleetTree
}

// treesToServe returns the trees the run will serve, in order: the base's
// (E2E_BASE), then the head's — E2E_REVISION's, else the working tree. It
// exports each revision once into the scratch directory, and checks that
// every environment has its clusters/<env> directory there.
func (w *workspace) treesToServe(ctx context.Context) ([]fleetTree, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.trees != nil {
		return w.trees, nil
	}
	var trees []fleetTree
	for _, rev := range []string{w.opts.Base, w.opts.Revision} {
		if rev == "" {
			continue
		}
		t, err := w.exportRevision(ctx, rev, len(trees))
		if err != nil {
			return nil, err
		}
		trees = append(trees, t)
	}
	if w.opts.Revision == "" {
		trees = append(trees, fleetTree{Label: "working tree", Dir: w.opts.FleetDir})
	}
	for _, t := range trees {
		for _, env := range w.opts.Envs {
			if fi, err := os.Stat(filepath.Join(t.Dir, "clusters", env)); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("fleet %s, %s: environment %s has no directory clusters/%s", w.opts.FleetDir, t.Label, env, env)
			}
		}
	}
	w.trees = trees
	return trees, nil
}

// exportRevision writes the fleet directory's tree at rev into the scratch
// directory (called with w.mu held).
func (w *workspace) exportRevision(ctx context.Context, rev string, index int) (fleetTree, error) {
	s, err := w.scratchLocked()
	if err != nil {
		return fleetTree{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, exportTimeout)
	defer cancel()
	dst := filepath.Join(s.Dir, "tree-"+strconv.Itoa(index))
	commit, err := gitserver.ExportRevision(ctx, w.opts.FleetDir, rev, dst)
	if err != nil {
		return fleetTree{}, fmt.Errorf("reading the fleet at revision %q: %w", rev, err)
	}
	return fleetTree{Label: fmt.Sprintf("revision %q (commit %.12s)", rev, commit), Dir: dst}, nil
}

// scratchLocked returns the scratch directory, making it (and reclaiming
// dead runs' directories) on first use; w.mu must be held.
func (w *workspace) scratchLocked() (*scratch, error) {
	if w.scratch != nil {
		return w.scratch, nil
	}
	s, reclaimed, err := newScratch("")
	for _, d := range reclaimed {
		w.log.printf("removed %s, left by a run that is gone", d)
	}
	if err != nil {
		return nil, err
	}
	w.scratch = s
	return s, nil
}

// dir is the scratch directory's path, made on first use.
func (w *workspace) dir() (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, err := w.scratchLocked()
	if err != nil {
		return "", err
	}
	return s.Dir, nil
}

// close removes the scratch directory; the trees go with it.
func (w *workspace) close() error {
	w.mu.Lock()
	s := w.scratch
	w.scratch, w.trees = nil, nil
	w.mu.Unlock()
	return s.Close()
}
