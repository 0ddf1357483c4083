package fluxsync

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// DefaultFetchFailureGrace is how long WaitForRevision lets a GitRepository
// keep failing to fetch (server unreachable, credentials rejected) before it
// gives up: long enough for a git server that is still starting.
const DefaultFetchFailureGrace = 10 * time.Second

// fetchFailurePoll is how often WaitForRevision judges the GitRepository
// again between watch events, so that a grace ends on time.
const fetchFailurePoll = time.Second

// WaitForRevision watches the GitRepository until its artifact is the given
// revision (Flux's "<branch>@sha1:<commit>" form), so that what is waited on
// next is known to be the published snapshot and not an older one. It gives
// up once the GitRepository has failed to fetch for failAfter (0:
// DefaultFetchFailureGrace), with its message; ctx bounds the rest.
func WaitForRevision(ctx context.Context, c *fluxobj.Clients, namespace, name, revision string, failAfter time.Duration) error {
	if failAfter <= 0 {
		failAfter = DefaultFetchFailureGrace
	}
	k, _ := fluxobj.KindOf(gitRepositoryGK.Kind)
	res := c.Dynamic.Resource(k.GVR()).Namespace(namespace)
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return res.Watch(ctx, o)
		},
	}
	// A failing fetch produces no event between retries: re-judge every
	// fetchFailurePoll too.
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var failingSince time.Time
	var last atomic.Pointer[unstructured.Unstructured]
	judge := func(obj *unstructured.Unstructured, now time.Time) error {
		v := fluxobj.Judge(obj, "")
		if !v.Graced {
			failingSince = time.Time{}
			return nil
		}
		if failingSince.IsZero() {
			failingSince = now
			if !v.FailingSince.IsZero() && v.FailingSince.Before(now) {
				failingSince = v.FailingSince
			}
		}
		if now.Sub(failingSince) >= failAfter {
			return fmt.Errorf("%s keeps failing to fetch %s for %s: %s: %s", fluxobj.RefOf(obj), revision,
				now.Sub(failingSince).Round(time.Second), v.Reason, v.Message)
		}
		return nil
	}
	// The grace's end stops the watch with the judgement as the cause; when
	// the watch ends first, wctx ends this poll and cancel keeps the cause
	// it already has.
	go func() {
		spec := poll.Every(fetchFailurePoll).For("the fetch-failure grace of GitRepository " + namespace + "/" + name + " to run out")
		cancel(poll.Until(wctx, spec, func(context.Context) (bool, error) {
			if obj := last.Load(); obj != nil {
				if err := judge(obj, time.Now()); err != nil {
					return true, err
				}
			}
			return false, nil
		}))
	}()
	_, err := watchtools.UntilWithSync(wctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		obj, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		last.Store(obj)
		got := fluxobj.ArtifactRevision(obj)
		return got == revision, nil
	})
	if err != nil {
		if cause := context.Cause(wctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
			return cause
		}
		return fmt.Errorf("GitRepository %s/%s did not fetch %s: %w (%s)", namespace, name, revision, err, describeSource(last.Load()))
	}
	return nil
}

func describeSource(obj *unstructured.Unstructured) string {
	if obj == nil {
		return "it does not exist"
	}
	got := fluxobj.ArtifactRevision(obj)
	ready := fluxobj.Condition(obj, meta.ReadyCondition)
	if ready == nil {
		return fmt.Sprintf("it has revision %q and no Ready condition yet", got)
	}
	return fmt.Sprintf("it has revision %q, Ready=%s %s: %s", got, ready.Status, ready.Reason, ready.Message)
}
