package readiness

import (
	"fmt"

	"github.com/onsi/gomega/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// toUnstructured accepts unstructured objects and any typed API object (Flux
// types, client.Object) and returns its unstructured form.
func toUnstructured(actual any) (*unstructured.Unstructured, error) {
	switch o := actual.(type) {
	case nil:
		return nil, fmt.Errorf("expected a Kubernetes object, got nil")
	case *unstructured.Unstructured:
		if o == nil {
			return nil, fmt.Errorf("expected a Kubernetes object, got a nil *unstructured.Unstructured")
		}
		return o, nil
	case unstructured.Unstructured:
		return &o, nil
	case runtime.Object:
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("converting %T to unstructured: %w", actual, err)
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" {
			// Typed objects read from a client often have an empty TypeMeta.
			if gvks := o.GetObjectKind().GroupVersionKind(); !gvks.Empty() {
				u.SetGroupVersionKind(gvks)
			} else {
				u.SetKind(fmt.Sprintf("%T", actual))
			}
		}
		return u, nil
	default:
		return nil, fmt.Errorf("expected a Kubernetes object, got %T", actual)
	}
}

// describeCondition renders "Kind ns/name: Ready=False reason: message".
func describeCondition(u *unstructured.Unstructured, t string) string {
	c := condition(u, t)
	if c == nil {
		return fmt.Sprintf("%s has no %s condition", refOf(u), t)
	}
	s := fmt.Sprintf("%s: %s=%s", refOf(u), c.Type, c.Status)
	if c.Reason != "" {
		s += " " + c.Reason
	}
	if c.Message != "" {
		s += ": " + c.Message
	}
	return s
}

// conditionMatcher matches a condition of any object. It computes its
// description from the actual value in the failure message itself, so the
// message is right even when the matcher is reused.
type conditionMatcher struct {
	condition string
	status    metav1.ConditionStatus
	// current also requires status.observedGeneration == metadata.generation.
	current bool
}

func (m conditionMatcher) judge(actual any) (bool, string, error) {
	u, err := toUnstructured(actual)
	if err != nil {
		return false, "", err
	}
	desc := describeCondition(u, m.condition)
	c := condition(u, m.condition)
	if c == nil || c.Status != m.status {
		return false, desc, nil
	}
	if m.current {
		obs, found, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
		if found && u.GetGeneration() != 0 && obs != u.GetGeneration() {
			return false, desc + fmt.Sprintf(" (but observedGeneration %d != generation %d)", obs, u.GetGeneration()), nil
		}
	}
	return true, desc, nil
}

func (m conditionMatcher) Match(actual any) (bool, error) {
	ok, _, err := m.judge(actual)
	return ok, err
}

func (m conditionMatcher) want() string {
	if m.condition == "Ready" && m.status == metav1.ConditionTrue && m.current {
		return "be Ready"
	}
	return fmt.Sprintf("have condition %s=%s", m.condition, m.status)
}

func (m conditionMatcher) FailureMessage(actual any) string {
	_, desc, err := m.judge(actual)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("expected object to %s, but %s", m.want(), desc)
}

func (m conditionMatcher) NegatedFailureMessage(actual any) string {
	_, desc, err := m.judge(actual)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("expected object not to %s, but %s", m.want(), desc)
}

// BeReady succeeds for an object (unstructured or typed) whose Ready
// condition is True for its current generation. The failure message names
// the object and shows its Ready status, reason and message.
func BeReady() types.GomegaMatcher {
	return conditionMatcher{condition: "Ready", status: metav1.ConditionTrue, current: true}
}

// HaveCondition succeeds when the object has a condition of type t with the
// given status.
func HaveCondition(t string, status metav1.ConditionStatus) types.GomegaMatcher {
	return conditionMatcher{condition: t, status: status}
}
