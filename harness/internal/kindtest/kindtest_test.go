package kindtest

import (
	"fmt"
	"strings"
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

// outcome records what Require did to a test instead of doing it.
type outcome struct {
	testing.TB
	skipped, failed string
}

type stopped struct{}

func (o *outcome) Helper() {}
func (o *outcome) Skip(args ...any) {
	o.skipped = fmt.Sprint(args...)
	panic(stopped{})
}
func (o *outcome) Skipf(format string, args ...any) {
	o.skipped = fmt.Sprintf(format, args...)
	panic(stopped{})
}
func (o *outcome) Fatalf(format string, args ...any) {
	o.failed = fmt.Sprintf(format, args...)
	panic(stopped{})
}

func requireOutcome(t *testing.T) (o *outcome) {
	o = &outcome{TB: t}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopped); !ok {
				panic(r)
			}
		}
	}()
	Require(o)
	return o
}

// Without a Docker engine (no docker binary on PATH) Require skips, except
// under CI=true, where it fails.
func TestRequireWithoutDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("Require skips everything under -short before looking for Docker")
	}
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		ci       string
		wantSkip bool
	}{
		{"", true},
		{"false", true},
		{"true", false},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			o := requireOutcome(t)
			msg := o.failed
			if tc.wantSkip {
				msg = o.skipped
				if o.failed != "" {
					t.Errorf("failed (%s), want a skip", o.failed)
				}
			} else if o.skipped != "" {
				t.Errorf("skipped (%s), want a failure", o.skipped)
			}
			if !strings.HasPrefix(msg, "docker info failed (") || !strings.Contains(msg, "no Docker engine for kind") {
				t.Errorf("message %q does not say docker info failed", msg)
			}
			if !tc.wantSkip && !strings.HasSuffix(msg, "(CI=true: real-kind tests must run)") {
				t.Errorf("failure %q does not say why CI fails", msg)
			}
		})
	}
}
