package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// ObjectID names one API object.
type ObjectID struct {
	Group, Kind, Namespace, Name string
}

func (o ObjectID) String() string {
	kind := o.Kind
	if o.Group != "" {
		kind += "." + o.Group
	}
	if o.Namespace == "" {
		return kind + " " + o.Name
	}
	return kind + " " + o.Namespace + "/" + o.Name
}

// IgnoredResources returns the resources ListObjects leaves out: objects the
// cluster itself writes, renews or replaces all the time, so that two
// listings of an untouched cluster would differ.
//
//	events           every controller records them; they expire after an hour
//	leases           node heartbeats and leader elections renew and rotate them
//	endpoints,       mirrors of Services and their pods, rewritten as pods come
//	endpointslices   and go
//	componentstatuses  not stored objects: each list is computed anew
func IgnoredResources() []schema.GroupResource {
	return []schema.GroupResource{
		{Group: "", Resource: "events"},
		{Group: "events.k8s.io", Resource: "events"},
		{Group: "coordination.k8s.io", Resource: "leases"},
		{Group: "", Resource: "endpoints"},
		{Group: "discovery.k8s.io", Resource: "endpointslices"},
		{Group: "", Resource: "componentstatuses"},
	}
}

// ListObjects names every object of every API resource the cluster serves
// with the list verb, IgnoredResources aside, sorted: what a test compares
// before and after the harness worked on a cluster it did not create. A
// group whose discovery fails is an error, since the listing would be
// incomplete.
func ListObjects(ctx context.Context, cfg *rest.Config) ([]ObjectID, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = requestTimeout
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("listing the objects of %s: %w", cfg.Host, err)
	}
	lists, err := disc.ServerPreferredResources()
	if err != nil {
		return nil, fmt.Errorf("listing the API resources of %s: %w", cfg.Host, err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("listing the objects of %s: %w", cfg.Host, err)
	}
	var all []ObjectID
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			return nil, fmt.Errorf("listing the objects of %s: group version %q: %w", cfg.Host, list.GroupVersion, err)
		}
		for _, res := range list.APIResources {
			if !listable(gv.Group, res) {
				continue
			}
			objs, err := meta.Resource(gv.WithResource(res.Name)).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("listing %s of %s: %w", gv.WithResource(res.Name), cfg.Host, err)
			}
			for _, o := range objs.Items {
				all = append(all, ObjectID{Group: gv.Group, Kind: res.Kind, Namespace: o.Namespace, Name: o.Name})
			}
		}
	}
	slices.SortFunc(all, compareObjectIDs)
	return all, nil
}

// listable: a resource, not a subresource, that can be listed and is not
// one of IgnoredResources.
func listable(group string, res metav1.APIResource) bool {
	return !strings.Contains(res.Name, "/") && slices.Contains(res.Verbs, "list") &&
		!slices.Contains(IgnoredResources(), schema.GroupResource{Group: group, Resource: res.Name})
}

func compareObjectIDs(a, b ObjectID) int {
	return strings.Compare(a.String(), b.String())
}

// DiffObjects compares two sorted listings: what went and what came.
func DiffObjects(before, after []ObjectID) (gone, added []ObjectID) {
	for _, o := range before {
		if _, found := slices.BinarySearchFunc(after, o, compareObjectIDs); !found {
			gone = append(gone, o)
		}
	}
	for _, o := range after {
		if _, found := slices.BinarySearchFunc(before, o, compareObjectIDs); !found {
			added = append(added, o)
		}
	}
	return gone, added
}

// deletePoll is how often DeleteLabeled looks whether what it deleted is gone.
const deletePoll = 500 * time.Millisecond

// DeleteLabeled deletes every object that matches the label selector, in
// every API resource that can be listed and deleted (IgnoredResources
// aside), and waits, at most limit, until none is left. It returns what it
// deleted; a timeout names what is still there.
func DeleteLabeled(ctx context.Context, cfg *rest.Config, selector string, limit time.Duration) ([]ObjectID, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = requestTimeout
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("deleting objects labeled %s from %s: %w", selector, cfg.Host, err)
	}
	found, err := listLabeled(ctx, cfg, meta, selector)
	if err != nil {
		return nil, fmt.Errorf("deleting objects labeled %s from %s: %w", selector, cfg.Host, err)
	}
	background := metav1.DeletePropagationBackground
	for _, f := range found {
		err := meta.Resource(f.gvr).Namespace(f.id.Namespace).Delete(ctx, f.id.Name, metav1.DeleteOptions{PropagationPolicy: &background})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("deleting %s from %s: %w", f.id, cfg.Host, err)
		}
	}
	deleted := make([]ObjectID, 0, len(found))
	for _, f := range found {
		deleted = append(deleted, f.id)
	}
	spec := poll.Every(deletePoll).Within(limit).For(fmt.Sprintf("the objects labeled %s to be gone from %s", selector, cfg.Host))
	err = poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		left, err := listLabeled(ctx, cfg, meta, selector)
		if err != nil {
			return false, err
		}
		if len(left) > 0 {
			names := make([]string, 0, len(left))
			for _, l := range left {
				names = append(names, l.id.String())
			}
			return false, fmt.Errorf("still there: %s", strings.Join(names, ", "))
		}
		return true, nil
	})
	return deleted, err
}

// labeledObject is one object listLabeled found, with its resource.
type labeledObject struct {
	id  ObjectID
	gvr schema.GroupVersionResource
}

// listLabeled lists the objects matching selector in every resource that
// can be listed and deleted.
func listLabeled(ctx context.Context, cfg *rest.Config, meta metadata.Interface, selector string) ([]labeledObject, error) {
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lists, err := disc.ServerPreferredResources()
	if err != nil {
		return nil, fmt.Errorf("listing the API resources: %w", err)
	}
	var found []labeledObject
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			return nil, fmt.Errorf("group version %q: %w", list.GroupVersion, err)
		}
		for _, res := range list.APIResources {
			if !listable(gv.Group, res) || !slices.Contains(res.Verbs, "delete") {
				continue
			}
			gvr := gv.WithResource(res.Name)
			objs, err := meta.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return nil, fmt.Errorf("listing %s labeled %s: %w", gvr, selector, err)
			}
			for _, o := range objs.Items {
				found = append(found, labeledObject{id: ObjectID{Group: gv.Group, Kind: res.Kind, Namespace: o.Namespace, Name: o.Name}, gvr: gvr})
			}
		}
	}
	return found, nil
}
