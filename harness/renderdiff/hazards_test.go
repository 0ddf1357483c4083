package renderdiff

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

const testOwner = "Kustomization/flux-system/apps"

// envOf builds one side of an environment from YAML documents, each
// applied by Kustomization flux-system/apps (or by the owner named in a
// "# owner: Kind/ns/name" first line).
func envOf(t *testing.T, docs ...string) *envObjects {
	t.Helper()
	e := newEnvObjects()
	for _, doc := range docs {
		owner := ref{Kind: "Kustomization", Namespace: "flux-system", Name: "apps"}
		if rest, ok := strings.CutPrefix(doc, "# owner: "); ok {
			line, _, _ := strings.Cut(rest, "\n")
			parts := strings.Split(line, "/")
			owner = ref{Kind: parts[0], Namespace: parts[1], Name: parts[2]}
		}
		var raw map[string]any
		if err := yaml.Unmarshal([]byte(doc), &raw); err != nil {
			t.Fatal(err)
		}
		md := raw["metadata"].(map[string]any)
		ns, _ := md["namespace"].(string)
		r := ref{Kind: raw["kind"].(string), Namespace: ns, Name: md["name"].(string)}
		e.objects[r] = newObject(r, owner, raw)
	}
	return e
}

const (
	statefulSet = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: data}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {resources: {requests: {storage: SIZE}}}
`
	claim = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: SIZE}}
`
	service = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: data}
spec: SPEC
`
	job = `apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: data, annotations: ANNOTATIONS}
spec:
  template: {spec: {containers: [{name: m, image: IMAGE}]}}
`
	configMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: conf, namespace: data}
`
	deploymentUsingConf = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: data}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: web:1
          envFrom: [{configMapRef: {name: conf}}]
`
	namespace = `apiVersion: v1
kind: Namespace
metadata: {name: data}
`
	helmRepository = `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: flux-system}
spec: {url: "https://charts.example.com"}
`
	helmRelease = `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web, namespace: data}
spec:
  chart: {spec: {chart: web, sourceRef: {kind: HelmRepository, name: charts, namespace: flux-system}}}
`
	crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec: {group: example.com, names: {kind: Widget}, scope: Namespaced}
`
	widget = `apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: data}
`
)

func with(doc string, replacements ...string) string {
	return strings.NewReplacer(replacements...).Replace(doc)
}

// TestHazards covers each hazard on a pair of small environments.
func TestHazards(t *testing.T) {
	tests := []struct {
		name       string
		base, head []string
		want       []Hazard
	}{
		{"a StatefulSet's claim template grows", []string{with(statefulSet, "SIZE", "1Gi")}, []string{with(statefulSet, "SIZE", "2Gi")},
			[]Hazard{{Object: "StatefulSet/data/db", Field: "spec.volumeClaimTemplates", Reason: reasonStatefulSet,
				Base: `[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}]`,
				Head: `[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"2Gi"}}}}]`}}},
		{"a claim shrinks", []string{with(claim, "SIZE", "2Gi")}, []string{with(claim, "SIZE", "1536Mi")},
			[]Hazard{{Object: "PersistentVolumeClaim/data/data", Field: "spec.resources.requests.storage",
				Reason: "field can not be less than previous value: the API server refuses to shrink a claim", Base: "2Gi", Head: "1536Mi"}}},
		{"a claim grows", []string{with(claim, "SIZE", "1Gi")}, []string{with(claim, "SIZE", "2Gi")}, nil},
		{"a Service's clusterIP changes", []string{with(service, "SPEC", "{clusterIP: 10.96.0.10}")}, []string{with(service, "SPEC", "{clusterIP: 10.96.0.11}")},
			[]Hazard{{Object: "Service/data/web", Field: "spec.clusterIP", Reason: reasonImmutable, Base: "10.96.0.10", Head: "10.96.0.11"}}},
		{"a Service becomes headless", []string{with(service, "SPEC", "{type: ClusterIP}")}, []string{with(service, "SPEC", "{clusterIP: None}")},
			[]Hazard{{Object: "Service/data/web", Field: "spec.clusterIP", Reason: reasonImmutable + " (unless it is the address the cluster allocated)",
				Base: "allocated by the cluster", Head: "None"}}},
		{"a headless Service becomes a NodePort", []string{with(service, "SPEC", "{clusterIP: None}")}, []string{with(service, "SPEC", "{type: NodePort}")},
			[]Hazard{{Object: "Service/data/web", Field: "spec.type",
				Reason: "the cluster keeps clusterIP None (immutable), which a NodePort Service may not have: the API server refuses the update",
				Base:   "type ClusterIP, clusterIP None", Head: "type NodePort"}}},
		{"a ClusterIP Service becomes a NodePort", []string{with(service, "SPEC", "{type: ClusterIP}")}, []string{with(service, "SPEC", "{type: NodePort}")}, nil},
		{"a Job's template changes, forced", []string{with(job, "ANNOTATIONS", "{kustomize.toolkit.fluxcd.io/force: enabled}", "IMAGE", "m:1")},
			[]string{with(job, "ANNOTATIONS", "{kustomize.toolkit.fluxcd.io/force: enabled}", "IMAGE", "m:2")},
			[]Hazard{{Object: "Job/data/migrate", Field: "spec.template",
				Reason: reasonImmutable + "; forced: Flux deletes and re-creates the object (its pods, claims or data go with it)",
				Base:   `{"spec":{"containers":[{"image":"m:1","name":"m"}]}}`, Head: `{"spec":{"containers":[{"image":"m:2","name":"m"}]}}`}}},
		{"a ConfigMap a Deployment reads is removed", []string{configMap, deploymentUsingConf}, []string{deploymentUsingConf},
			[]Hazard{{Object: "ConfigMap/data/conf", Reason: "removed while still in use: Flux prunes it and what uses it breaks", Base: "applied by " + testOwner,
				Head: "gone; still used by Deployment/data/web (spec.template.spec.containers[0].envFrom[0].configMapRef.name)"}}},
		{"a ConfigMap nothing reads is removed", []string{configMap}, nil, nil},
		{"a HelmRepository a HelmRelease uses is removed", []string{helmRepository, helmRelease}, []string{helmRelease},
			[]Hazard{{Object: "HelmRepository/flux-system/charts", Reason: "removed while still in use: Flux prunes it and what uses it breaks",
				Base: "applied by " + testOwner, Head: "gone; still used by HelmRelease/data/web (spec.chart.spec.sourceRef)"}}},
		{"a namespace that keeps objects is removed", []string{namespace, configMap}, []string{configMap},
			[]Hazard{{Object: "Namespace/data", Reason: "namespace removed while objects stay in it: deleting it deletes them",
				Base: "applied by " + testOwner, Head: "gone; still used by ConfigMap/data/conf"}}},
		{"a CRD is removed", []string{crd, widget}, []string{widget},
			[]Hazard{{Object: "CustomResourceDefinition/widgets.example.com", Reason: "CRD removed: every custom resource of it is deleted with it",
				Base: "applied by " + testOwner, Head: "gone; still used by Widget/data/w"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.want {
				tt.want[i].Env, tt.want[i].Owner = "staging", testOwner
			}
			if tt.want == nil {
				tt.want = []Hazard{}
			}
			got := hazards("staging", envOf(t, tt.base...), envOf(t, tt.head...))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("hazards (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMajorChartVersion is a release whose chart moves from 6.x to 7.x;
// a minor move is none.
func TestMajorChartVersion(t *testing.T) {
	side := func(version string) *envObjects {
		e := envOf(t, helmRelease)
		e.releases[ref{Kind: "HelmRelease", Namespace: "data", Name: "web"}] = &release{chart: "web", version: version}
		return e
	}
	got := hazards("staging", side("6.9.2"), side("7.0.0"))
	want := []Hazard{{Env: "staging", Owner: testOwner, Object: "HelmRelease/data/web", Field: "chart",
		Reason: "chart moves to another major version: its values and objects may change incompatibly (read its upgrade notes)",
		Base:   "web 6.9.2", Head: "web 7.0.0"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hazards (-want +got):\n%s", diff)
	}
	if got := hazards("staging", side("6.9.2"), side("6.10.0")); len(got) != 0 {
		t.Errorf("a minor version move: %v", got)
	}
}

func TestUnifiedDiff(t *testing.T) {
	from := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n"
	to := "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n"
	want := `--- x
+++ y
@@ -1,5 +1,5 @@
 a
-b
+B
 c
 d
 e
@@ -9,3 +9,4 @@
 i
 j
 k
+l
`
	if got := unifiedDiff("x", "y", from, to); got != want {
		t.Errorf("unifiedDiff =\n%s\nwant\n%s", got, want)
	}
	if got := unifiedDiff("x", "y", from, from); got != "" {
		t.Errorf("equal texts: %q", got)
	}
	added := unifiedDiff("/dev/null", "y", "", "a\n")
	if want := "--- /dev/null\n+++ y\n@@ -0,0 +1 @@\n+a\n"; added != want {
		t.Errorf("added = %q, want %q", added, want)
	}
}

func TestMarkdownCode(t *testing.T) {
	for in, want := range map[string]string{
		"plain":  "`plain`",
		"a`b":    "``a`b``",
		"`edge`": "`` `edge` ``",
	} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
}
