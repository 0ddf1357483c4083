package e2e

import (
	"context"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
)

// perEnv builds one feature per environment, named after it, so that
// -run 'TestX/staging' selects a single environment.
func perEnv(t *testing.T, build func(b *features.FeatureBuilder, env string) *features.FeatureBuilder) []types.Feature {
	t.Helper()
	skipWithoutClusters(t)
	opts, err := options()
	if err != nil {
		t.Fatal(err)
	}
	var fs []types.Feature
	for _, env := range opts.Envs {
		fs = append(fs, build(features.New(env), env).Feature())
	}
	return fs
}

// skipWithoutClusters skips when TestMain brought nothing up: -short, or no
// Docker engine (and CI is not set).
func skipWithoutClusters(t *testing.T) {
	t.Helper()
	if testenv != nil {
		return
	}
	if testing.Short() {
		t.Skip("creates kind clusters; skipped with -short")
	}
	t.Skip(fleetenv.Available(t.Context()))
}

// environment returns the brought-up environment or stops the test: a
// check of an environment whose readiness wait failed skips at once with
// that verdict (TestReadinessVerdict fails with it), instead of waiting for
// the same failure again.
func environment(ctx context.Context, t *testing.T, name string) *fleetenv.Environment {
	t.Helper()
	e := readyOrNot(ctx, t, name)
	if e.Ready != nil {
		t.Skipf("%s is not Ready (the harness's verdict, see TestReadinessVerdict): %v", name, e.Ready)
	}
	return e
}

// readyOrNot returns the brought-up environment, Ready or not.
func readyOrNot(ctx context.Context, t *testing.T, name string) *fleetenv.Environment {
	t.Helper()
	run := fleetenv.From(ctx)
	if run == nil {
		t.Fatalf("no fleet run in the context: setup did not run")
	}
	e := run.Env(name)
	if e == nil {
		t.Fatalf("environment %s was not brought up (see the setup log above)", name)
	}
	return e
}

// TestReadinessVerdict asserts the harness's own verdict: the readiness wait
// found every object the fleet defines Ready. The checks below look at the
// cluster themselves; this one fails when the wait said NOT READY even if the
// cluster converged later.
func TestReadinessVerdict(t *testing.T) {
	testenv.Test(t, perEnv(t, func(b *features.FeatureBuilder, env string) *features.FeatureBuilder {
		return b.Assess("the harness's readiness wait found the fleet Ready", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			e := readyOrNot(ctx, t, env)
			if e.Ready != nil {
				t.Fatalf("%s: the readiness wait failed: %v%s", env, e.Ready, summaryOf(e))
			}
			if e.Report == nil || len(e.Report.Objects) == 0 {
				t.Fatalf("%s: the readiness wait reported Ready without having waited for any object of the fleet (report: %v)", env, e.Report)
			}
			t.Logf("%s: readiness wait Ready: %d object(s) in %s", env, len(e.Report.Objects), e.Report.Total.Round(100*time.Millisecond))
			return ctx
		})
	})...)
}

func summaryOf(e *fleetenv.Environment) string {
	if e.Summary == "" {
		return ""
	}
	return "\n" + e.Summary
}

func TestFluxControllers(t *testing.T) {
	testenv.Test(t, perEnv(t, func(b *features.FeatureBuilder, env string) *features.FeatureBuilder {
		return b.Assess("every Flux controller Deployment is available", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			assertControllersAvailable(ctx, t, environment(ctx, t, env))
			return ctx
		})
	})...)
}

func TestInfrastructure(t *testing.T) {
	testenv.Test(t, perEnv(t, func(b *features.FeatureBuilder, env string) *features.FeatureBuilder {
		return b.
			Assess("Kustomization infrastructure is Ready", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				assertKustomizationReady(ctx, t, environment(ctx, t, env), "infrastructure")
				return ctx
			}).
			Assess("nginx is Ready", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				assertNamespaceReady(ctx, t, environment(ctx, t, env), "nginx")
				return ctx
			}).
			Assess("redis is Ready", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				assertNamespaceReady(ctx, t, environment(ctx, t, env), "redis")
				return ctx
			})
	})...)
}

func TestApps(t *testing.T) {
	testenv.Test(t, perEnv(t, func(b *features.FeatureBuilder, env string) *features.FeatureBuilder {
		return b.
			Assess("Kustomization apps is Ready", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				assertKustomizationReady(ctx, t, environment(ctx, t, env), "apps")
				return ctx
			}).
			Assess("every release and workload of apps is Ready", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				assertInventoryReady(ctx, t, environment(ctx, t, env), "apps")
				return ctx
			})
	})...)
}

func TestTraffic(t *testing.T) {
	testenv.Test(t, perEnv(t, func(b *features.FeatureBuilder, env string) *features.FeatureBuilder {
		return b.Assess("a request through the nginx ingress with the environment's host reaches the app", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			assertTrafficReachesApp(ctx, t, environment(ctx, t, env))
			return ctx
		})
	})...)
}

func TestAppUsesRedis(t *testing.T) {
	testenv.Test(t, perEnv(t, func(b *features.FeatureBuilder, env string) *features.FeatureBuilder {
		return b.Assess("a value written through the app's cache API is read back, and stored in the fleet's redis", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			assertAppUsesRedis(ctx, t, environment(ctx, t, env))
			return ctx
		})
	})...)
}

// TestResync publishes a new revision of the fleet (the edit → re-run loop
// of a kept cluster) and waits until every environment applied it.
func TestResync(t *testing.T) {
	skipWithoutClusters(t)
	f := features.New("every environment").Assess("a new revision is fetched, applied and Ready", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
		run := fleetenv.From(ctx)
		for _, env := range run.Options().Envs {
			environment(ctx, t, env) // skips when the first revision was not Ready
		}
		took, err := run.Publisher().Republish(ctx)
		if err != nil {
			t.Fatalf("re-sync after publishing a new revision: %v", err)
		}
		for _, env := range run.Options().Envs {
			if e := run.Env(env); e.Ready != nil {
				t.Errorf("%s: not Ready after re-sync: %v", env, e.Ready)
			}
		}
		t.Logf("new revision %s applied and Ready in every environment %s after publishing", run.Git().Revision(), took.Round(100*time.Millisecond))
		return ctx
	})
	testenv.Test(t, f.Feature())
}
