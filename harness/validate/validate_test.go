package validate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

func TestRepositoryFleetIsValid(t *testing.T) {
	root := testsupport.RepoRoot(t)
	res, err := Validate(context.Background(), root)
	if err != nil {
		t.Fatalf("validating the repository fleet: %v", err)
	}
	for _, f := range res.Findings {
		t.Errorf("finding: %s", f)
	}
	// Measured, not asserted: Validate has no bound of its own, and two
	// test lanes share the machine.
	t.Logf("validated %d environments, %d objects in %.2fs", len(res.Envs), res.ObjectCount(), res.Duration.Seconds())

	for _, env := range []string{"staging", "production"} {
		e := res.Env(env)
		if e == nil {
			t.Fatalf("environment %s not found", env)
		}
		// The objects the e2e tier waits for must be in the graph.
		for _, ref := range []ObjectRef{
			{Kind: "Kustomization", Namespace: "flux-system", Name: "infrastructure"},
			{Kind: "Kustomization", Namespace: "flux-system", Name: "apps"},
			{Kind: "HelmRelease", Namespace: "nginx", Name: "nginx"},
			{Kind: "HelmRelease", Namespace: "redis", Name: "redis"},
			{Kind: "HelmRelease", Namespace: "podinfo", Name: "podinfo"},
		} {
			if e.Object(ref) == nil {
				t.Errorf("%s: %s missing from the graph", env, ref)
			}
		}
		tree := res.Tree(env)
		if !strings.Contains(tree, "└── HelmRelease/podinfo/podinfo") {
			t.Errorf("%s tree lacks the podinfo release:\n%s", env, tree)
		}
		t.Logf("\n%s", tree)

		// Per-environment values must survive the overlays and substitutions.
		hr := e.Object(ObjectRef{Kind: "HelmRelease", Namespace: "podinfo", Name: "podinfo"})
		host := nested(hr.Raw, "spec", "values", "ingress", "hosts")
		if hosts, ok := host.([]any); !ok || len(hosts) != 1 || nested(hosts[0].(map[string]any), "host") != "podinfo."+env {
			t.Errorf("%s: podinfo ingress hosts = %v, want podinfo.%s", env, host, env)
		}
		redis := e.Object(ObjectRef{Kind: "HelmRelease", Namespace: "redis", Name: "redis"})
		if v := nested(redis.Raw, "spec", "values", "master", "persistence", "enabled"); v != (env == "production") {
			t.Errorf("%s: redis persistence = %v (%T), want the substituted boolean", env, v, v)
		}
	}
}

func nested(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func TestInvalidFleets(t *testing.T) {
	type want struct {
		env, file, object, reason string
	}
	cases := map[string][]want{
		"bad-yaml": {{
			"staging", "apps/base/release.yaml", "Kustomization/flux-system/apps",
			"invalid YAML: line 11: mapping values are not allowed",
		}},
		"wrong-kustomization-path": {{
			"staging", "clusters/staging/apps.yaml", "Kustomization/flux-system/apps",
			`spec.path "./apps/stagin" does not exist`,
		}},
		"unknown-field-helmrelease": {{
			"staging", "apps/base/release.yaml", "HelmRelease/podinfo/podinfo",
			`unknown field "spec.chart.spec.verison"`,
		}},
		"dependson-missing": {{
			"staging", "clusters/staging/apps.yaml", "Kustomization/flux-system/apps",
			"spec.dependsOn Kustomization/flux-system/infra is not defined",
		}},
		"dependson-cycle": {{
			"staging", "clusters/staging/apps.yaml", "Kustomization/flux-system/apps",
			"cycle: flux-system/apps -> flux-system/infrastructure -> flux-system/apps",
		}},
		"helmrelease-source-missing": {{
			"staging", "apps/base/release.yaml", "HelmRelease/podinfo/podinfo",
			"spec.chart.spec.sourceRef HelmRepository/podinfo/podinfo is not defined in this environment (did you mean HelmRepository/flux-system/podinfo?)",
		}},
		"patch-targets-nothing": {
			{
				"production", "apps/production/podinfo-patch.yaml", "Kustomization/flux-system/apps",
				"patch targets HelmRelease podinfo/podinfo-web, which no resource of this build defines",
			},
			{
				"staging", "apps/staging/podinfo-patch.yaml", "Kustomization/flux-system/apps",
				"targets {kind=HelmRelease name=podinfo-web}, which matches no resource",
			},
		},
		"namespace-never-created": {{
			"staging", "apps/base/release.yaml", "HelmRelease/podinfo/podinfo",
			`namespace "podinfo" is never created`,
		}},
	}

	dir := filepath.Join(testsupport.RepoRoot(t), "fixtures", "invalid")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := cases[e.Name()]; !ok && e.IsDir() {
			t.Errorf("fixture %s has no test case", e.Name())
		}
	}
	for name, wants := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := Validate(context.Background(), filepath.Join(dir, name))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if len(res.Findings) != len(wants) {
				t.Errorf("got %d findings, want %d", len(res.Findings), len(wants))
			}
			// Findings are sorted by env, file, object: same order as wants.
			for i, w := range wants {
				if i >= len(res.Findings) {
					t.Errorf("missing finding %+v", w)
					continue
				}
				f := res.Findings[i]
				if f.Env != w.env || f.File != w.file || f.Object.String() != w.object || !strings.Contains(f.Reason, w.reason) {
					t.Errorf("finding %d:\n got: %s\nwant: %s: %s: %s: ...%s...", i, f, w.env, w.file, w.object, w.reason)
				}
			}
			for _, f := range res.Findings[min(len(wants), len(res.Findings)):] {
				t.Errorf("unexpected finding: %s", f)
			}
		})
	}
}

func TestValidateDeterministic(t *testing.T) {
	dir := filepath.Join(testsupport.RepoRoot(t), "fixtures", "invalid", "patch-targets-nothing")
	var first []Finding
	for i := range 3 {
		res, err := Validate(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res.Findings
			continue
		}
		if len(res.Findings) != len(first) {
			t.Fatalf("run %d: %d findings, first run %d", i, len(res.Findings), len(first))
		}
		for j := range first {
			if res.Findings[j] != first[j] {
				t.Errorf("run %d finding %d: %s, first run %s", i, j, res.Findings[j], first[j])
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Load(ctx, t.TempDir()); err == nil {
		t.Error("a directory without clusters/ loaded without error")
	}
	empty := t.TempDir()
	if err := os.Mkdir(filepath.Join(empty, "clusters"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, empty); err == nil {
		t.Error("a fleet without environments loaded without error")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Load(cancelled, testsupport.RepoRoot(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestCycleReportedOnce(t *testing.T) {
	env := &Env{Name: "e", index: map[ObjectRef]*Object{}}
	a := ObjectRef{Kind: "Kustomization", Namespace: "ns", Name: "a"}
	b := ObjectRef{Kind: "Kustomization", Namespace: "ns", Name: "b"}
	c := ObjectRef{Kind: "Kustomization", Namespace: "ns", Name: "c"}
	for _, r := range []ObjectRef{a, b, c} {
		env.index[r] = &Object{Ref: r, File: r.Name + ".yaml"}
	}
	ch := &checker{env: env}
	ch.cycles(map[ObjectRef][]ObjectRef{a: {b}, b: {c}, c: {a, b}})
	var reasons []string
	for _, f := range ch.findings {
		reasons = append(reasons, f.Object.Name+": "+f.Reason)
	}
	got := strings.Join(reasons, "\n")
	for _, want := range []string{"ns/a -> ns/b -> ns/c -> ns/a", "ns/b -> ns/c -> ns/b"} {
		if !strings.Contains(got, want) {
			t.Errorf("cycle %q not reported in:\n%s", want, got)
		}
	}
	if len(ch.findings) != 2 {
		t.Errorf("got %d cycle findings, want 2:\n%s", len(ch.findings), got)
	}
}
