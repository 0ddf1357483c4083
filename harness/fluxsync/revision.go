package fluxsync

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

var gitRepositoryGVR = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}

// WaitForRevision watches the GitRepository until its artifact is the given
// revision (Flux's "<branch>@sha1:<commit>" form), so that what is waited on
// next is known to be the published snapshot and not an older one.
// ctx bounds the wait; on expiry the error names the revision the
// GitRepository has and its Ready message.
func WaitForRevision(ctx context.Context, cfg *rest.Config, namespace, name, revision string) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	res := dyn.Resource(gitRepositoryGVR).Namespace(namespace)
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
	var last *unstructured.Unstructured
	_, err = watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		obj, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		last = obj
		got, _, _ := unstructured.NestedString(obj.Object, "status", "artifact", "revision")
		return got == revision, nil
	})
	if err != nil {
		return fmt.Errorf("GitRepository %s/%s did not fetch %s: %w (%s)", namespace, name, revision, err, describeSource(last))
	}
	return nil
}

func describeSource(obj *unstructured.Unstructured) string {
	if obj == nil {
		return "it does not exist"
	}
	got, _, _ := unstructured.NestedString(obj.Object, "status", "artifact", "revision")
	ready := conditions.Get(conditions.UnstructuredGetter(obj), meta.ReadyCondition)
	if ready == nil {
		return fmt.Sprintf("it has revision %q and no Ready condition yet", got)
	}
	return fmt.Sprintf("it has revision %q, Ready=%s %s: %s", got, ready.Status, ready.Reason, ready.Message)
}
