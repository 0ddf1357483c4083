package preflight

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestRenderKubeVersion(t *testing.T) {
	dir := writeFleet(t, map[string]string{
		"Chart.yaml":          "apiVersion: v2\nname: kv\nversion: 0.1.0\nkubeVersion: \">=1.30.0-0\"\n",
		"templates/info.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kv\ndata:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n",
	})
	tests := []struct {
		kube, want, wantErr string
	}{
		{kube: "v1.37.2", want: "v1.37.2"},
		{kube: "", wantErr: "chart requires kubeVersion: >=1.30.0-0 which is incompatible with Kubernetes v1.20.0"},
		{kube: "banana", wantErr: `rendering chart ` + dir + `: Kubernetes version "banana": `},
	}
	for _, tt := range tests {
		t.Run(tt.kube, func(t *testing.T) {
			objs, err := Render(context.Background(), dir, RenderOptions{ReleaseName: "kv", Namespace: "kv", KubeVersion: tt.kube})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cm := objs.Get("ConfigMap", "", "kv")
			if cm == nil {
				t.Fatalf("no ConfigMap kv rendered; have %d objects", len(objs))
			}
			if got, _, _ := unstructured.NestedString(cm.Object, "data", "kube"); got != tt.want {
				t.Errorf(".Capabilities.KubeVersion.Version = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderErrorsNameTheChart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nochart")
	_, err := Render(context.Background(), dir, RenderOptions{ReleaseName: "x", Namespace: "x"})
	if err == nil || !strings.HasPrefix(err.Error(), "loading chart "+dir+": ") {
		t.Errorf("error = %v, want one starting with %q", err, "loading chart "+dir+": ")
	}
}

// TestRenderDoesNotModifyValues: Helm merges the chart's defaults (here
// service.port) into the values it is given; a caller's map must not change.
func TestRenderDoesNotModifyValues(t *testing.T) {
	const doc = `{image: "example/app:1", service: {}, env: [{name: A, value: b}]}`
	parse := func() map[string]any {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	values := parse()
	objs, err := Render(context.Background(), "testdata/charts/app", RenderOptions{ReleaseName: "app", Namespace: "apps", Values: values, KubeVersion: "v1.37.2"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(parse(), values); diff != "" {
		t.Errorf("values after Render (-before +after):\n%s", diff)
	}
	// The defaults did reach the chart: the port comes from values.yaml.
	d := objs.Get("Deployment", "apps", "app")
	if d == nil {
		t.Fatal("no Deployment apps/app rendered")
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 || !cmp.Equal(cs[0].(map[string]any)["ports"], []any{map[string]any{"containerPort": int64(8080)}}) {
		t.Errorf("containers = %v, want one with containerPort 8080 (values.yaml's service.port)", cs)
	}
}

// TestRenderSchema: Render lets Helm validate values.schema.json, so a
// rejection is Helm's own error, the text helm-controller reports.
func TestRenderSchema(t *testing.T) {
	_, err := Render(context.Background(), "testdata/charts/app", RenderOptions{ReleaseName: "app", Namespace: "apps",
		Values: map[string]any{"image": "x", "replicaCount": 0}, KubeVersion: "v1.37.2"})
	want := "values don't meet the specifications of the schema(s) in the following chart(s):\napp:\n- at '/replicaCount': minimum: got 0, want 1"
	if err == nil {
		t.Fatal("rendered, want a schema error")
	}
	if got := strings.TrimSpace(errors.Unwrap(err).Error()); got != want {
		t.Errorf("error:\n%s\nwant:\n%s", got, want)
	}
	if prefix := "rendering chart testdata/charts/app as release apps/app: "; !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("error %q does not start with %q", err, prefix)
	}
}
