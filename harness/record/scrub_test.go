package record

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestScrub(t *testing.T) {
	values := map[string]any{
		"password": "hunter2-long",
		"apiToken": "hunter2",
		"quoted":   `it's "x"`,
		"short":    "web",
		"flag":     "false",
		"n":        int64(30080),
		"list":     []any{"second-secret"},
		"image":    "ghcr.io/stefanprodan/podinfo:6.9.2",
		"host":     "Db.Internal",
		"logLevel": "Warn",
		"database": "postgres://app:s3cret@db:5432/app",
	}
	d := func(v string) string { return "<" + ValueDigest(v) + ">" }
	tests := []struct{ in, want string }{
		{"at '/password': 'hunter2-long' does not match", "at '/password': '" + d("hunter2-long") + "' does not match"},
		{"hunter2 then hunter2-long", d("hunter2") + " then " + d("hunter2-long")},
		{`'it\'s "x"' is not valid email`, "'" + d(`it's "x"`) + "' is not valid email"},
		{`value "it's \"x\""`, `value "` + d(`it's "x"`) + `"`},
		{"web false 30080 second-secret", "web false 30080 second-secret"},
		// A name-shaped value is kept unless its key holds credentials.
		{"pull ghcr.io/stefanprodan/podinfo:6.9.2 failed", "pull ghcr.io/stefanprodan/podinfo:6.9.2 failed"},
		{"host Db.Internal", "host " + d("Db.Internal")},
		// A value is replaced as a whole word, never inside a longer one.
		{"Warning: level Warn, Warn.", "Warning: level " + d("Warn") + ", " + d("Warn") + "."},
		{"xhunter2 hunter2x hunter2", "xhunter2 hunter2x " + d("hunter2")},
		// A URL with credentials is not a name, whatever its key.
		{"dial postgres://app:s3cret@db:5432/app: refused", "dial " + d("postgres://app:s3cret@db:5432/app") + ": refused"},
	}
	s := NewScrubber(values)
	for _, tt := range tests {
		if got := s.Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := (*Scrubber)(nil).Scrub("hunter2"); got != "hunter2" {
		t.Errorf("nil Scrubber changed the text: %q", got)
	}
}

func TestScrubbersScopeByObject(t *testing.T) {
	ks := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"name": "infra", "namespace": "flux-system"},
		"spec":     map[string]any{"postBuild": map[string]any{"substitute": map[string]any{"DB_HOST": "Db.Internal"}}}}}
	hr := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
		"metadata": map[string]any{"name": "nginx", "namespace": "web", "labels": map[string]any{
			"kustomize.toolkit.fluxcd.io/name": "infra", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
		"spec": map[string]any{"values": map[string]any{"className": "nginx", "auth": map[string]any{"password": "hunter2x"}}}}}
	s := NewScrubbers([]*unstructured.Unstructured{ks, hr})
	// className "nginx" names things and stays; the password and the
	// substituted host go, in the HelmRelease's own messages only.
	msg := "HelmRelease/web/nginx: hunter2x rejected, host Db.Internal"
	want := "HelmRelease/web/nginx: <" + ValueDigest("hunter2x") + "> rejected, host <" + ValueDigest("Db.Internal") + ">"
	if got := s.Object("HelmRelease/web/nginx", msg); got != want {
		t.Errorf("Object = %q, want %q", got, want)
	}
	if got := s.Object("Deployment/web/nginx", msg); got != msg {
		t.Errorf("a workload's message was scrubbed: %q", got)
	}
	if got := s.All("to hunter2x at Db.Internal"); strings.Contains(got, "hunter2x") || strings.Contains(got, "Db.Internal") {
		t.Errorf("All left a value: %q", got)
	}
}
