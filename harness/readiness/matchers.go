package readiness

import (
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/onsi/gomega/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/internal/typedstatus"
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
		if u, err := typedstatus.Unstructured(o); err == nil {
			return u, nil
		}
		// A type neither client-go nor Flux defines: named by its Go type.
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("converting %T to unstructured: %w", actual, err)
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" {
			u.SetKind(fmt.Sprintf("%T", actual))
		}
		return u, nil
	default:
		return nil, fmt.Errorf("expected a Kubernetes object, got %T", actual)
	}
}

// describeCondition renders "Kind ns/name: Ready=False reason: message".
func describeCondition(u *unstructured.Unstructured, t string) string {
	c := fluxobj.Condition(u, t)
	if c == nil {
		return fmt.Sprintf("%s has no %s condition", fluxobj.RefOf(u), t)
	}
	s := fmt.Sprintf("%s: %s=%s", fluxobj.RefOf(u), c.Type, c.Status)
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
}

func (m conditionMatcher) judge(actual any) (bool, string, error) {
	u, err := toUnstructured(actual)
	if err != nil {
		return false, "", err
	}
	desc := describeCondition(u, m.condition)
	c := fluxobj.Condition(u, m.condition)
	if c == nil || c.Status != m.status {
		return false, desc, nil
	}
	return true, desc, nil
}

func (m conditionMatcher) Match(actual any) (bool, error) {
	ok, _, err := m.judge(actual)
	return ok, err
}

func (m conditionMatcher) want() string {
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

// BeReady succeeds for a Flux object (unstructured or typed) that
// fluxobj.Judge calls Ready: Ready=True for its current generation, or no
// conditions where Flux itself counts that healthy. The failure message
// names the object and shows its Ready status, reason and message.
func BeReady() types.GomegaMatcher { return readyMatcher{} }

// readyMatcher is BeReady: the harness's one judgement, as a matcher.
type readyMatcher struct{}

func (readyMatcher) judge(actual any) (bool, string, error) {
	u, err := toUnstructured(actual)
	if err != nil {
		return false, "", err
	}
	v := fluxobj.Judge(u, "")
	desc := describeCondition(u, meta.ReadyCondition)
	if fluxobj.Condition(u, meta.ReadyCondition) == nil {
		desc = fmt.Sprintf("%s is %s: %s", fluxobj.RefOf(u), v.Reason, v.Message)
	}
	return v.Phase == fluxobj.Ready, desc, nil
}

func (m readyMatcher) Match(actual any) (bool, error) {
	ok, _, err := m.judge(actual)
	return ok, err
}

func (m readyMatcher) FailureMessage(actual any) string {
	_, desc, err := m.judge(actual)
	if err != nil {
		return err.Error()
	}
	return "expected object to be Ready, but " + desc
}

func (m readyMatcher) NegatedFailureMessage(actual any) string {
	_, desc, err := m.judge(actual)
	if err != nil {
		return err.Error()
	}
	return "expected object not to be Ready, but " + desc
}

// HaveCondition succeeds when the object has a condition of type t with the
// given status.
func HaveCondition(t string, status metav1.ConditionStatus) types.GomegaMatcher {
	return conditionMatcher{condition: t, status: status}
}
