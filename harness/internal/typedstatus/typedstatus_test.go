package typedstatus

import (
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// A Deployment as a typed client returns it: no kind, observed and rolled
// out as far as the generic rules can tell, but with old replicas still
// running. Only the Deployment rules see that it is still rolling.
func rollingDeployment() *appsv1.Deployment {
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns", Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: &one},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 2,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: "True"},
				{Type: appsv1.DeploymentProgressing, Status: "True", Reason: "ReplicaSetUpdated"},
			},
		},
	}
}

func TestComputeJudgesATypedObjectByItsKind(t *testing.T) {
	d := rollingDeployment()
	if d.Kind != "" {
		t.Fatal("the fixture must carry no kind, as a typed client's objects do")
	}
	res, err := Compute(d)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != status.InProgressStatus {
		t.Errorf("a Deployment with 2 replicas of which 1 updated is %s (%q); want InProgress", res.Status, res.Message)
	}
	if d.Kind != "" {
		t.Error("Compute set the kind on the caller's object")
	}

	d.Status.Replicas = 1
	if res, err := Compute(d); err != nil || res.Status != status.CurrentStatus {
		t.Errorf("a rolled-out Deployment: got %v, %v; want Current", res, err)
	}
}

// notRegistered is a runtime.Object that client-go's scheme does not know.
type notRegistered struct{ metav1.TypeMeta }

func (n *notRegistered) DeepCopyObject() runtime.Object { c := *n; return &c }

func TestComputeNamesAnUnknownType(t *testing.T) {
	_, err := Compute(&notRegistered{})
	if err == nil {
		t.Fatal("want an error for a type the scheme does not know")
	}
	if want := "finding the kind of *typedstatus.notRegistered"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
