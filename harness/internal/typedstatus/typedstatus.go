// Package typedstatus turns typed objects, as a client returns them, into
// unstructured ones with their kind, and computes kstatus's verdict on
// them. A client's typed objects carry no kind, and kstatus judges by kind:
// a Deployment without one would get the generic rules, not the rollout
// checks (updated, ready and available replicas).
package typedstatus

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// kinds maps the Go types of client-go's built-ins and of the Flux kinds
// the harness judges to their API kinds. It is only read.
var kinds = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(sourcev1.AddToScheme(s))
	utilruntime.Must(kustomizev1.AddToScheme(s))
	utilruntime.Must(helmv2.AddToScheme(s))
	return s
}()

// Unstructured returns obj's unstructured form, with its kind taken from
// the scheme when obj does not carry one; an error for a type the scheme
// does not know.
func Unstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T to unstructured: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	if u.GetKind() == "" {
		gvks, _, err := kinds.ObjectKinds(obj)
		if err != nil {
			return nil, fmt.Errorf("finding the kind of %T: %w", obj, err)
		}
		u.SetGroupVersionKind(gvks[0])
	}
	return u, nil
}

// Compute returns kstatus's status of obj, a built-in Kubernetes type
// (Deployment, StatefulSet, DaemonSet, Pod, ...), typed or not.
func Compute(obj runtime.Object) (*status.Result, error) {
	u, err := Unstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("judging with kstatus: %w", err)
	}
	return status.Compute(u)
}
