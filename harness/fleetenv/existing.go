package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/fluxsync"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// Bounds of the teardown on a cluster the harness did not create: the
// fleet as Publisher.Clear, each kind of Flux object, and the objects the
// API server and storage provisioners remove after them.
const (
	uninstallTimeout   = 6 * time.Minute
	fluxObjectsTimeout = time.Minute
	installGoneTimeout = 2 * time.Minute
	afterGoneTimeout   = time.Minute
)

// ownedSelector selects what the harness labeled as its own: the Flux
// install (fluxinstall.Options.Labels), its extra CRDs and the fleet server.
const ownedSelector = cluster.ManagedByLabel + "=" + cluster.ManagedByValue

var (
	crdResource        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	apiServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	pvResource         = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}
)

// connectClusters is the clusters step for ProviderKubeconfig: every
// environment's context connected to and checked (cluster.CheckOptIn)
// before any is changed, so that one refused cluster leaves all of them as
// they were. What an earlier run installed is re-synced with Options.Reuse,
// else removed first, as a kind cluster would be created anew.
func connectClusters(ctx context.Context, r *Run) (err error) {
	envs := make([]*Environment, len(r.opts.Envs))
	// A recorded environment's Lease is the teardown's to release, after
	// its uninstall; the others' are released here when the step fails.
	recorded := make([]bool, len(envs))
	defer func() {
		if err != nil {
			for i, e := range envs {
				if !recorded[i] {
					releaseLease(e)
				}
			}
		}
	}()
	found := make([]bool, len(r.opts.Envs))
	g, gctx := errgroup.WithContext(ctx)
	for i, env := range r.opts.Envs {
		g.Go(func() error {
			e, earlier, err := connectEnv(gctx, r.opts, env, r)
			envs[i], found[i] = e, earlier
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := checkEveryFleetObjectFree(ctx, r, envs, found); err != nil {
		return err
	}
	for i, e := range envs {
		switch {
		case found[i] && r.opts.Reuse:
			r.log.printf("%-11s re-syncing what an earlier run installed on context %s (reuse)", e.Name, e.Cluster.Context)
		case found[i]:
			r.log.printf("%-11s removing what an earlier run installed on context %s (set E2E_REUSE=true to re-sync it instead)", e.Name, e.Cluster.Context)
			if err := uninstall(ctx, e, nil, r.log); err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
		}
		// No images are loaded: a cluster the harness did not create pulls them.
		r.state.recordEnvironment(e, startClusterWork(ctx, e.Cluster, nil))
		recorded[i] = true
		r.log.printf("%-11s context %s (%s), opted in", e.Name, e.Cluster.Context, e.Cluster.RESTConfig.Host)
	}
	return nil
}

// checkEveryFleetObjectFree runs checkFleetObjectsFree on every
// environment before any is changed; harnessFlux[i] reports the harness's
// own Flux on envs[i]'s cluster.
func checkEveryFleetObjectFree(ctx context.Context, r *Run, envs []*Environment, harnessFlux []bool) error {
	trees, err := r.work.treesToServe(ctx)
	if err != nil {
		return err
	}
	declared, err := declaredByEnv(ctx, trees)
	if err != nil {
		return err
	}
	for i, e := range envs {
		if err := checkFleetObjectsFree(ctx, e, declared[e.Name], harnessFlux[i]); err != nil {
			return err
		}
	}
	return nil
}

// connectEnv connects to env's context and checks it; earlier reports a
// Flux an earlier run of the harness installed.
func connectEnv(ctx context.Context, o Options, env string, r *Run) (e *Environment, earlier bool, err error) {
	c, err := cluster.Connect(o.Kubeconfig, o.Contexts[env], prefixed(r.out, env))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", env, err)
	}
	earlier, err = cluster.CheckOptIn(ctx, c, fluxobj.Namespace)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", env, err)
	}
	clients, err := fluxobj.NewClients(c.RESTConfig)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", env, err)
	}
	// Last: nothing after it can fail and leave the Lease held.
	if err := c.HoldExisting(ctx, r.guard.RunID, o.WorkDir); err != nil {
		return nil, false, fmt.Errorf("%s: %w", env, err)
	}
	return &Environment{Name: env, Cluster: c, Clients: clients}, earlier, nil
}

// releaseLease gives back e's run Lease (nil skipped), for a clusters step
// that failed: the next run need not wait it out.
func releaseLease(e *Environment) {
	if e != nil && e.Cluster != nil {
		_ = e.Cluster.ReleaseExisting(context.Background())
	}
}

// uninstall removes from e's cluster what the harness installed, in the
// order that lets each part's controller finish its own: the fleet (as
// Publisher.Clear), every remaining Flux object while the controllers still
// run their finalizers, the fleet server (srv, or by its label when this
// run has none), then Flux itself (every object its install labeled),
// and waits until the API server and the storage provisioner removed what
// follows from those (the Flux API groups, released volumes). The check at
// connection (cluster.CheckOptIn) made sure that no Flux but the harness's
// was there.
func uninstall(ctx context.Context, e *Environment, srv fleetServer, log logger) error {
	ctx, cancel := context.WithTimeoutCause(ctx, uninstallTimeout,
		fmt.Errorf("%s: removing what the harness installed took longer than %s", e.Name, uninstallTimeout))
	defer cancel()
	start := time.Now()
	kinds, err := fluxKinds(ctx, e.Clients)
	if err != nil {
		return err
	}
	if len(kinds) > 0 {
		if err := fluxsync.Clear(ctx, e.Clients, fluxobj.Namespace, fluxobj.SyncName); err != nil {
			return fmt.Errorf("removing the fleet: %w", err)
		}
		if err := deleteFluxObjects(ctx, e.Clients, kinds); err != nil {
			return err
		}
	}
	if srv != nil {
		if err := srv.Remove(ctx); err != nil {
			return fmt.Errorf("removing the fleet server: %w", err)
		}
	}
	if _, err := cluster.DeleteLabeled(ctx, e.Clients.Config, ownedSelector, installGoneTimeout); err != nil {
		return fmt.Errorf("removing Flux: %w", err)
	}
	if err := waitAfterUninstall(ctx, e.Clients); err != nil {
		return err
	}
	log.printf("%-11s removed the fleet, Flux and the fleet server from context %s in %s", e.Name, e.Cluster.Context, since(start))
	return nil
}

// fluxGroupSuffix ends the name of every Flux CRD.
const fluxGroupSuffix = ".toolkit.fluxcd.io"

// fluxKinds are the resources of the Flux CRDs the cluster serves.
func fluxKinds(ctx context.Context, c *fluxobj.Clients) ([]schema.GroupVersionResource, error) {
	crds, err := c.Dynamic.Resource(crdResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing CustomResourceDefinitions: %w", err)
	}
	var kinds []schema.GroupVersionResource
	for _, crd := range crds.Items {
		if !strings.HasSuffix(crd.GetName(), fluxGroupSuffix) {
			continue
		}
		resource, group, _ := strings.Cut(crd.GetName(), ".")
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, v := range versions {
			v, _ := v.(map[string]any)
			if stored, _ := v["storage"].(bool); stored {
				name, _ := v["name"].(string)
				kinds = append(kinds, schema.GroupVersionResource{Group: group, Version: name, Resource: resource})
			}
		}
	}
	return kinds, nil
}

// deleteFluxObjects deletes every object of the Flux kinds while the
// controllers still run their finalizers, and waits until they are gone;
// finalizers no controller removed within fluxObjectsTimeout are lifted,
// as flux uninstall does.
func deleteFluxObjects(ctx context.Context, c *fluxobj.Clients, kinds []schema.GroupVersionResource) error {
	// One by one: the API server deletes collections per namespace only.
	for _, k := range kinds {
		list, err := c.Dynamic.Resource(k).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing %s: %w", k.GroupResource(), err)
		}
		for _, o := range list.Items {
			err := c.Dynamic.Resource(k).Namespace(o.GetNamespace()).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("deleting %s %s/%s: %w", k.Resource, o.GetNamespace(), o.GetName(), err)
			}
		}
	}
	left := func(ctx context.Context) (bool, error) {
		var names []string
		for _, k := range kinds {
			list, err := c.Dynamic.Resource(k).List(ctx, metav1.ListOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return false, err
			}
			for _, o := range list.Items {
				names = append(names, k.Resource+" "+o.GetNamespace()+"/"+o.GetName())
			}
		}
		if len(names) > 0 {
			return false, fmt.Errorf("still there: %s", strings.Join(names, ", "))
		}
		return true, nil
	}
	spec := poll.Every(clearPoll).Within(fluxObjectsTimeout).For("the Flux objects to be gone")
	if err := poll.Until(ctx, spec, left); err == nil || ctx.Err() != nil {
		return err
	}
	if err := liftFinalizers(ctx, c, kinds); err != nil {
		return err
	}
	return poll.Until(ctx, spec, left)
}

// clearPoll is how often the teardown looks whether what it deleted is gone.
const clearPoll = 500 * time.Millisecond

// liftFinalizers removes the finalizers of every remaining Flux object.
func liftFinalizers(ctx context.Context, c *fluxobj.Clients, kinds []schema.GroupVersionResource) error {
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	for _, k := range kinds {
		list, err := c.Dynamic.Resource(k).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing %s: %w", k.GroupResource(), err)
		}
		for _, o := range list.Items {
			_, err := c.Dynamic.Resource(k).Namespace(o.GetNamespace()).Patch(ctx, o.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("lifting the finalizers of %s %s/%s: %w", k.Resource, o.GetNamespace(), o.GetName(), err)
			}
		}
	}
	return nil
}

// waitAfterUninstall waits until what follows from the removal is gone
// too: the APIService entries the API server keeps for the Flux groups,
// and volumes released by the fleet's claims that their provisioner
// deletes. Both are the cluster's own work, so a listing right after the
// teardown would otherwise still show them.
func waitAfterUninstall(ctx context.Context, c *fluxobj.Clients) error {
	spec := poll.Every(clearPoll).Within(afterGoneTimeout).For("the Flux API groups and released volumes to be gone")
	return poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		var left []string
		services, err := c.Dynamic.Resource(apiServiceResource).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, s := range services.Items {
			if strings.HasSuffix(s.GetName(), fluxGroupSuffix) {
				left = append(left, "APIService "+s.GetName())
			}
		}
		volumes, err := c.Dynamic.Resource(pvResource).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, v := range volumes.Items {
			phase, _, _ := unstructured.NestedString(v.Object, "status", "phase")
			policy, _, _ := unstructured.NestedString(v.Object, "spec", "persistentVolumeReclaimPolicy")
			if phase == "Released" && policy == "Delete" {
				left = append(left, "PersistentVolume "+v.GetName())
			}
		}
		if len(left) > 0 {
			return false, errors.New("still there: " + strings.Join(left, ", "))
		}
		return true, nil
	})
}
