package fluxsync

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

var kustomizationGVR = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}

// NudgeDependents shortens dependency chains until ctx ends: when a
// Kustomization becomes Ready at a revision, every Kustomization that
// dependsOn it and is not Ready gets a reconcile request. Without it,
// kustomize-controller re-checks a dependency only every 30s
// (--requeue-dependency), which dominates a fresh sync and every re-sync.
// Requests are logged to out (nil: silent).
func NudgeDependents(ctx context.Context, cfg *rest.Config, out io.Writer) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	if out == nil {
		out = io.Discard
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	informer := factory.ForResource(kustomizationGVR).Informer()
	n := &nudger{dyn: dyn, store: informer.GetStore(), out: out, done: map[string]bool{}}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.onChange(ctx, obj) },
		UpdateFunc: func(_, obj any) { n.onChange(ctx, obj) },
	}); err != nil {
		return fmt.Errorf("watching Kustomizations: %w", err)
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	return nil
}

type nudger struct {
	dyn   dynamic.Interface
	store cache.Store
	out   io.Writer

	mu   sync.Mutex
	done map[string]bool // dependent + dependency revision already nudged
}

func (n *nudger) onChange(ctx context.Context, obj any) {
	dep, ok := obj.(*unstructured.Unstructured)
	if !ok || !kustomizationReady(dep) {
		return
	}
	revision, _, _ := unstructured.NestedString(dep.Object, "status", "lastAppliedRevision")
	for _, item := range n.store.List() {
		k, ok := item.(*unstructured.Unstructured)
		if !ok || kustomizationReady(k) || !dependsOn(k, dep.GetNamespace(), dep.GetName()) {
			continue
		}
		key := fmt.Sprintf("%s/%s<-%s/%s@%s", k.GetNamespace(), k.GetName(), dep.GetNamespace(), dep.GetName(), revision)
		n.mu.Lock()
		seen := n.done[key]
		n.done[key] = true
		n.mu.Unlock()
		if seen {
			continue
		}
		_, err := n.dyn.Resource(kustomizationGVR).Namespace(k.GetNamespace()).Patch(ctx, k.GetName(),
			types.MergePatchType, annotationPatch(time.Now()), metav1.PatchOptions{FieldManager: FieldManager})
		if err == nil {
			fmt.Fprintf(n.out, "Kustomization %s/%s  reconcile requested: dependency %s/%s is Ready\n",
				k.GetNamespace(), k.GetName(), dep.GetNamespace(), dep.GetName())
		}
	}
}

// dependsOn reports whether k lists namespace/name in spec.dependsOn
// (an entry without namespace means k's own).
func dependsOn(k *unstructured.Unstructured, namespace, name string) bool {
	deps, _, _ := unstructured.NestedSlice(k.Object, "spec", "dependsOn")
	for _, d := range deps {
		m, _ := d.(map[string]any)
		ns, _ := m["namespace"].(string)
		if ns == "" {
			ns = k.GetNamespace()
		}
		if m["name"] == name && ns == namespace {
			return true
		}
	}
	return false
}

// kustomizationReady is Ready=True for the object's current generation.
func kustomizationReady(k *unstructured.Unstructured) bool {
	observed, _, _ := unstructured.NestedInt64(k.Object, "status", "observedGeneration")
	return observed == k.GetGeneration() && conditions.IsReady(conditions.UnstructuredGetter(k))
}
