package cluster

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// CreateAll creates the clusters in parallel. Every cluster of the same
// name is checked first, so that one that is not flux-fleet's stops the run
// before anything is created or deleted. If any creation fails, the
// clusters this call created are deleted again (reused ones are left
// alone) and the errors of all failures are returned.
func CreateAll(ctx context.Context, specs []Spec) ([]*Cluster, error) {
	return createAll(ctx, specs, prepare, (*plan).run, deleteCluster)
}

func deleteCluster(c *Cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	return c.Delete(ctx)
}

func createAll(ctx context.Context, specs []Spec,
	prepare func(context.Context, Spec) (*plan, error),
	run func(*plan, context.Context) (*Cluster, error),
	del func(*Cluster) error,
) ([]*Cluster, error) {
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Name] {
			return nil, fmt.Errorf("cluster %q listed twice", s.Name)
		}
		seen[s.Name] = true
	}
	ctxs := make([]context.Context, len(specs))
	for i, s := range specs {
		var cancel context.CancelFunc
		ctxs[i], cancel = s.withTimeout(ctx)
		defer cancel()
	}
	plans := make([]*plan, len(specs))
	errs := make([]error, len(specs))
	var g errgroup.Group
	for i, s := range specs {
		g.Go(func() error {
			plans[i], errs[i] = prepare(ctxs[i], s)
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	clusters := make([]*Cluster, len(specs))
	// Not errgroup.WithContext: one failure must not abort the others
	// half-way, which would leave partial clusters to clean up.
	var created errgroup.Group
	for i, p := range plans {
		created.Go(func() error {
			clusters[i], errs[i] = run(p, ctxs[i])
			return nil
		})
	}
	_ = created.Wait()
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
