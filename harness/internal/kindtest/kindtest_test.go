package kindtest

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestEstablished(t *testing.T) {
	cond := func(typ, status string) any { return map[string]any{"type": typ, "status": status} }
	for _, tc := range []struct {
		name  string
		conds []any
		want  bool
	}{
		{"no status", nil, false},
		{"established", []any{cond("NamesAccepted", "True"), cond("Established", "True")}, true},
		{"not yet", []any{cond("NamesAccepted", "True"), cond("Established", "False")}, false},
		{"names only", []any{cond("NamesAccepted", "True")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{}}
			if tc.conds != nil {
				u.Object["status"] = map[string]any{"conditions": tc.conds}
			}
			if got := established(u); got != tc.want {
				t.Errorf("established() = %v, want %v", got, tc.want)
			}
		})
	}
}
