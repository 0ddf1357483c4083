// Package typedstatus computes kstatus's verdict on typed objects as a
// client returns them. Those carry no kind, and kstatus judges by kind: a
// Deployment without one would get the generic rules, not the rollout
// checks (updated, ready and available replicas).
package typedstatus

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// Compute returns kstatus's status of obj, a built-in Kubernetes type
// (Deployment, StatefulSet, DaemonSet, Pod, ...), with its kind taken from
// client-go's scheme when the object does not carry one.
func Compute(obj runtime.Object) (*status.Result, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T for kstatus: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	if u.GetKind() == "" {
		gvks, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil {
			return nil, fmt.Errorf("finding the kind of %T for kstatus: %w", obj, err)
		}
		u.SetGroupVersionKind(gvks[0])
	}
	return status.Compute(u)
}
