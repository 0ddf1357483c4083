package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

func TestUnknownKeys(t *testing.T) {
	defaults := `
image: {repository: nginx, tag: ""}
podAnnotations: {}
resources:
  limits:
hosts:
  - host: example.local
    paths: [{path: /, pathType: Prefix}]
tolerations: []
global:
  security: {allowInsecureImages: false}
`
	tests := []struct {
		name   string
		values string
		want   []string
	}{
		{"all known", `{image: {repository: x, tag: "1"}, hosts: [{host: a, paths: [{path: /b}]}]}`, nil},
		{"top-level typo", `{imagee: {repository: x}}`, []string{"imagee"}},
		{"nested typo", `{image: {repositry: x}}`, []string{"image.repositry"}},
		{"free-form under an empty map", `{podAnnotations: {a: b, c: {d: e}}}`, nil},
		{"free-form under a null default", `{resources: {limits: {memory: 1Gi, cpu: 1}}}`, nil},
		{"list element typo, compared with the first default element", `{hosts: [{host: a}, {hots: b, paths: [{pathTyp: Exact}]}]}`,
			[]string{"hosts[1].hots", "hosts[1].paths[0].pathTyp"}},
		{"list without default elements is free-form", `{tolerations: [{key: a, operator: Exists}]}`, nil},
		{"global typo", `{global: {security: {allowInsecureImage: true}}}`, []string{"global.security.allowInsecureImage"}},
		{"several, sorted", `{zeta: 1, alpha: 2}`, []string{"alpha", "zeta"}},
	}
	var def map[string]any
	if err := yaml.Unmarshal([]byte(defaults), &def); err != nil {
		t.Fatal(err)
	}
	c := &chart.Chart{Metadata: &chart.Metadata{Name: "t", Version: "1.0.0"}, Values: def}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(tc.values), &vals); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, unknownKeys(vals, knownValues(c), "")); diff != "" {
				t.Errorf("unknown keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKnownValuesSubchartsAndSchema(t *testing.T) {
	sub := &chart.Chart{Metadata: &chart.Metadata{Name: "common", Version: "2.0.0"},
		Values: map[string]any{"global": map[string]any{"imageRegistry": ""}, "level": 1}}
	parent := &chart.Chart{
		Metadata: &chart.Metadata{Name: "app", Version: "1.0.0", Dependencies: []*chart.Dependency{{Name: "common", Alias: "shared"}}},
		Values:   map[string]any{"image": "x"},
		Schema:   []byte(`{"properties": {"service": {"properties": {"nodePort": {"type": "integer"}}}}}`),
	}
	parent.SetDependencies(sub)
	vals := map[string]any{
		"common":  map[string]any{"level": 2},
		"shared":  map[string]any{"levle": 2},
		"global":  map[string]any{"imageRegistry": "r", "imageRegistri": "r"},
		"service": map[string]any{"nodePort": 30000, "port": 80},
	}
	want := []string{"global.imageRegistri", "service.port", "shared.levle"}
	if diff := cmp.Diff(want, unknownKeys(vals, knownValues(parent), "")); diff != "" {
		t.Errorf("unknown keys (-want +got):\n%s", diff)
	}
}

func TestPickIndexVersion(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	cv := func(v string, d int) *repov1.ChartVersion {
		return &repov1.ChartVersion{Metadata: &chart.Metadata{Name: "c", Version: v}, Created: day(d)}
	}
	cvs := repov1.ChartVersions{cv("6.9.4", 1), cv("6.10.0", 2), cv("7.0.0-rc.1", 3), cv("6.9.1", 4), cv("6.9", 5), cv("latest", 6)}
	tests := []struct {
		constraint, want, err string
	}{
		{"", "6.10.0", ""},
		{"*", "6.10.0", ""},
		{">=6.9.1 <6.10.0", "6.9.4", ""},
		{">=6.0.0-alpha <8.0.0", "7.0.0-rc.1", ""},
		{">=6.0.0 <8.0.0", "6.10.0", ""}, // pre-releases only for a range that names one
		{"6.9.1", "6.9.1", ""},
		{"latest", "latest", ""}, // an exact string matches before any semver
		{">=24.1.0 <24.2.0", "", "no chart version matches"},
		{"not a range", "", `not a semver range: improper constraint: "not a range"`},
	}
	for _, tc := range tests {
		got, err := pickIndexVersion(cvs, tc.constraint)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.constraint, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.constraint, err)
		case got.Version != tc.want:
			t.Errorf("%q: picked %s, want %s", tc.constraint, got.Version, tc.want)
		}
	}
}

func TestVersionMatches(t *testing.T) {
	tests := []struct {
		rng, version string
		want         bool
		err          string
	}{
		// The real fleet's podinfo ranges and the kit's podinfo chart.
		{">=6.0.0-alpha <7.0.0", "6.9.2", true, ""},
		{">=6.9.1 <6.10.0", "6.9.2", true, ""},
		{">=6.9.1 <6.10.0", "6.10.0", false, ""},
		{"", "0.2.0", true, ""},
		{"*", "7.0.0-rc.1", false, ""}, // pre-releases only for a range that names one
		{">=7.0.0-0", "7.0.0-rc.1", true, ""},
		{"0.2.0", "0.2.0", true, ""},
		{">=9.0.0", "0.1.0", false, ""},
		{"not a range", "0.1.0", false, `version range "not a range": not a semver range: improper constraint: "not a range"`},
		{"*", "6.9", false, `chart version "6.9": invalid semantic version`},
	}
	for _, tc := range tests {
		got, err := VersionMatches(tc.rng, tc.version)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q %q: error %v, want %q", tc.rng, tc.version, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q %q: got %v, %v; want %v", tc.rng, tc.version, got, err, tc.want)
		}
	}
}

func TestPickTag(t *testing.T) {
	tags := []string{"2.6.3", "2.6.4", "2.7.0-rc.1", "1.0.0_build.5", "latest", "sha256-abc.sig"}
	tests := []struct {
		constraint string
		helm       bool
		want, err  string
	}{
		{">=2.6.4 <2.7.0", false, "2.6.4", ""},
		{"2.6.x", false, "2.6.4", ""},
		{">=2.7.0-0", false, "2.7.0-rc.1", ""},
		{">=2.7.2 <2.8.0", false, "", "no tag matches"},
		{"1.0.0+build.5", true, "1.0.0_build.5", ""}, // Helm writes semver's + as _ in tags
	}
	for _, tc := range tests {
		got, err := pickTag(tags, tc.constraint, tc.helm)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.constraint, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.constraint, got, err, tc.want)
		}
	}
}

func TestRewrite(t *testing.T) {
	r := &runner{opts: Options{HostRewrites: map[string]string{
		"chart-server.flux-system.svc.cluster.local": "127.0.0.1:41234",
		"registry.example:5000":                      "127.0.0.1:5001",
		"mirror.example":                             "10.0.0.9",
	}}}
	tests := map[string]string{
		"chart-server.flux-system.svc.cluster.local:80": "127.0.0.1:41234",
		"registry.example:5000":                         "127.0.0.1:5001",
		"registry.example:443":                          "registry.example:443",
		"mirror.example:443":                            "10.0.0.9:443",
		"ghcr.io:443":                                   "ghcr.io:443",
	}
	for in, want := range tests {
		if got := r.rewrite(in); got != want {
			t.Errorf("rewrite(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImagesOf(t *testing.T) {
	manifests := []string{`
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: a, image: "busybox:1"}]
  ephemeralContainers: [{name: dbg, image: "debug:1"}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{name: i, image: "init:2"}]
          containers: [{name: a, image: "busybox:1"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-workload}
data: {image: "ignored:1"}
`, `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s}
spec:
  template:
    spec:
      containers: [{name: r, image: "docker.io/bitnamilegacy/redis:8.2.1-debian-12-r0"}]
`}
	objs, err := decodeManifests(manifests)
	if err != nil {
		t.Fatal(err)
	}
	got := imagesOf(objs)
	want := []string{"busybox:1", "debug:1", "docker.io/bitnamilegacy/redis:8.2.1-debian-12-r0", "init:2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
}

func TestKitKubeVersion(t *testing.T) {
	tests := []struct {
		name, content, want, err string
	}{
		{"set", "# versions\nKUBERNETES_VERSION=v1.37.2\nETCD=3\n", "v1.37.2", ""},
		{"quoted", `KUBERNETES_VERSION="v1.36.0"` + "\n", "", `versions.env:1: KUBERNETES_VERSION: value "\"v1.36.0\"" is not one plain word (no quotes, blanks or $)`},
		{"missing", "ETCD=3\n", "", "reading the kind node's Kubernetes version: hack/kit/versions.env sets no KUBERNETES_VERSION"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, filepath.FromSlash(KitVersionsFile))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := KitKubeVersion(root)
			if tc.err != "" {
				if err == nil || !strings.HasSuffix(err.Error(), tc.err) {
					t.Errorf("error %v, want it to end with %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// The repository's own kit pins the kind node's version.
	if v, err := KitKubeVersion("../.."); err != nil || v == "" {
		t.Errorf("KitKubeVersion(repository root) = %q, %v", v, err)
	}
}

func TestPodSpec(t *testing.T) {
	cron := map[string]any{"kind": "CronJob", "spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{
		"template": map[string]any{"spec": map[string]any{"restartPolicy": "Never"}}}}}}
	if got := PodSpec(cron); got["restartPolicy"] != "Never" {
		t.Errorf("PodSpec(CronJob) = %v", got)
	}
	if got := PodSpec(map[string]any{"kind": "ConfigMap"}); got != nil {
		t.Errorf("PodSpec(ConfigMap) = %v, want nil", got)
	}
	if got := strings.Join(PodSpecPath("Deployment"), "."); got != "spec.template.spec" {
		t.Errorf("PodSpecPath(Deployment) = %q", got)
	}
	if PodSpecPath("Service") != nil {
		t.Error("PodSpecPath(Service) is not nil")
	}
}
