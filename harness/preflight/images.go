package preflight

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/flux-fleet/flux-fleet/harness/validate"
)

// podSpecPath is where each workload kind keeps its pod spec.
var podSpecPath = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// PodSpecPath is where a workload kind keeps its pod spec (a Pod's spec,
// the template of a Deployment, StatefulSet, DaemonSet, ReplicaSet,
// ReplicationController or Job, a CronJob's job template); nil for other
// kinds.
func PodSpecPath(kind string) []string {
	return slices.Clone(podSpecPath[kind])
}

// PodSpec returns the pod spec of a workload object, or nil for kinds
// without one (see PodSpecPath).
func PodSpec(obj map[string]any) map[string]any {
	kind, _ := obj["kind"].(string)
	path, ok := podSpecPath[kind]
	if !ok {
		return nil
	}
	return nested(obj, path)
}

// imagesOf lists, sorted and without duplicates, the images of every
// container, init container and ephemeral container of the workloads.
func imagesOf(objs Objects) []string {
	seen := map[string]bool{}
	for _, u := range objs {
		spec := PodSpec(u.Object)
		for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
			list, _ := spec[field].([]any)
			for _, c := range list {
				cm, _ := c.(map[string]any)
				if img, _ := cm["image"].(string); img != "" {
					seen[img] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func nested(obj map[string]any, path []string) map[string]any {
	cur := obj
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

// checkImages checks every image the environment's releases use, a few at
// a time; an image used in two environments is asked for once per run.
func (r *runner) checkImages(ctx context.Context, env string, releases []*Release) []*Image {
	users := map[string][]validate.ObjectRef{}
	for _, rel := range releases {
		for _, img := range rel.Images {
			users[img] = append(users[img], rel.Object)
		}
	}
	refs := make([]string, 0, len(users))
	for img := range users {
		refs = append(refs, img)
	}
	sort.Strings(refs)
	out := make([]*Image, len(refs))
	var mu sync.Mutex
	g := &errgroup.Group{}
	g.SetLimit(8)
	for i, ref := range refs {
		g.Go(func() error {
			st, _ := r.images.do(ref, func() (*Image, error) { return r.checkImage(ctx, ref), nil })
			img := *st
			img.UsedBy = users[ref]
			mu.Lock()
			out[i] = &img
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// known reports whether the image is in Options.KnownImages, comparing
// normalised names so that "redis:7" and "docker.io/library/redis:7" match.
func (r *runner) known(ref string) bool {
	if slices.Contains(r.opts.KnownImages, ref) {
		return true
	}
	want, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return false
	}
	for _, k := range r.opts.KnownImages {
		if got, err := name.ParseReference(k, name.WeakValidation); err == nil && got.Name() == want.Name() {
			return true
		}
	}
	return false
}

// checkImage asks the image's registry, anonymously, for its manifest (a
// HEAD request), as the kubelet of a cluster without pull secrets would.
func (r *runner) checkImage(ctx context.Context, ref string) *Image {
	img := &Image{Ref: ref}
	if r.known(ref) {
		img.Known, img.Present = true, true
		return img
	}
	parsed, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		img.Reason = fmt.Sprintf("not a valid image reference: %v", err)
		return img
	}
	if r.opts.KnownImagesOnly {
		img.Reason = "not among the images the clusters have (KnownImages), and they cannot pull others"
		return img
	}
	registry := parsed.Context().RegistryStr()
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	_, err = remote.Head(parsed, r.remoteOptions(ctx, nil)...)
	if err == nil {
		img.Present = true
		return img
	}
	var tErr *transport.Error
	switch {
	case isUnreachable(err):
		img.Unreachable = true
		img.Reason = fmt.Sprintf("registry %s unreachable: %s", registry, describeErr(err, r.opts.RequestTimeout))
	case errors.As(err, &tErr) && tErr.StatusCode == http.StatusNotFound:
		img.Reason = fmt.Sprintf("not found in registry %s (%s)", registry, describeTransportErr(tErr))
	case errors.As(err, &tErr) && (tErr.StatusCode == http.StatusUnauthorized || tErr.StatusCode == http.StatusForbidden):
		img.Reason = fmt.Sprintf("registry %s refuses anonymous pulls (%s): the repository does not exist or is private", registry, describeTransportErr(tErr))
	default:
		img.Reason = fmt.Sprintf("registry %s: %s", registry, describeErr(err, r.opts.RequestTimeout))
	}
	return img
}
