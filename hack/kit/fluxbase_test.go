package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckFluxVersion(t *testing.T) {
	for _, v := range []string{"", "v2.8.0", "v2.10.12", "v2.9.0-rc.1"} {
		if err := checkFluxVersion(v); err != nil {
			t.Errorf("checkFluxVersion(%q) = %v, want nil", v, err)
		}
	}
	for _, v := range []string{"2.8.0", "v2.8", "v1.8.0", "v3.0.0", "v2.8.0 ", "latest", "v2.8.0/../x"} {
		if err := checkFluxVersion(v); err == nil || !strings.Contains(err.Error(), "is not a flux2 release version") {
			t.Errorf("checkFluxVersion(%q) = %v, want it refused", v, err)
		}
	}
}

// TestFluxBaseRefused: a malformed version is a usage error, and a version
// no module source serves an error naming the module, both before any
// lock, kit directory or Docker call. GOPROXY=off stands for a module proxy
// that does not serve it, so the test needs no network.
func TestFluxBaseRefused(t *testing.T) {
	kit := filepath.Join(t.TempDir(), "kit")
	t.Setenv("FLEET_KIT_DIR", kit)
	t.Setenv("GOPROXY", "off")
	t.Setenv("PATH", fakeDocker(t)+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, tc := range []struct {
		version string
		code    int
		want    string
	}{
		{"2.8", 2, `kit: -flux-base: "2.8" is not a flux2 release version`},
		{"v2.999.0", 1, "base Flux v2.999.0: the Go module proxy does not serve github.com/fluxcd/flux2/v2@v2.999.0"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			var out, errOut bytes.Buffer
			start := time.Now()
			code := run([]string{"-flux-base", tc.version}, &out, &errOut)
			t.Logf("refused in %s", time.Since(start).Round(time.Millisecond))
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut.String(), tc.code, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", out.String())
			}
		})
	}
	if _, err := os.Stat(kit); !os.IsNotExist(err) {
		t.Errorf("a refused base Flux left the kit directory %s (stat: %v)", kit, err)
	}
	assertNoDocker(t)
}

// testBuilder is a builder over the repository's recipes with every
// artifact of the stage table, its kit directory a temporary one, and
// images fresh exactly when fresh says so.
func testBuilder(t *testing.T, fresh func(image string) bool) (*builder, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{
		repo:      repo,
		kitDir:    t.TempDir(),
		src:       realSource(t, nil),
		log:       &logger{w: &log, now: time.Now},
		artifacts: map[string]artifact{},
		hashes:    map[string]string{},
		fresh: func(_ context.Context, _ string, images ...string) (bool, error) {
			for _, img := range images {
				if !fresh(img) {
					return false, nil
				}
			}
			return true, nil
		},
	}
	for _, s := range append(stages(), fluxBaseStages()...) {
		for _, a := range s.artifacts {
			b.artifacts[a.name] = a
		}
	}
	return b, &log
}

func baseRelease() *fluxRelease {
	return &fluxRelease{version: "v2.8.0", dir: "/nonexistent/flux2", controllers: map[string]string{
		"source-controller": "v1.8.0", "kustomize-controller": "v1.8.0", "helm-controller": "v1.5.0"}}
}

// TestKeptBase: a run without -flux-base keeps the base Flux of the previous
// profile when its images and manifests are current, and otherwise drops it
// from the profile, saying why, without building anything (the recipes are
// never run: the builder has no runner).
func TestKeptBase(t *testing.T) {
	wantImages := []string{"ghcr.io/fluxcd/source-controller:v1.8.0", "ghcr.io/fluxcd/kustomize-controller:v1.8.0", "ghcr.io/fluxcd/helm-controller:v1.5.0"}
	t.Run("current", func(t *testing.T) {
		b, _ := testBuilder(t, func(string) bool { return true })
		b.base = baseFlux{version: "v2.8.0", keep: true, release: baseRelease(), napi: "v1.8.0"}
		if err := b.fluxBaseControllers(context.Background()); err != nil {
			t.Fatal(err)
		}
		h, err := b.hash("flux-base-manifests", "v2.8.0", "v1.8.0", "source-controller=v1.8.0 kustomize-controller=v1.8.0 helm-controller=v1.5.0")
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(b.kitDir, "flux-base-manifests-"+h)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "rbac.yaml"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := b.fluxBaseManifests(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := b.out.base; got.Version != "v2.8.0" || got.Manifests != dir || !slices.Equal(got.Images, wantImages) {
			t.Errorf("kept base = %+v, want v2.8.0, %s, %v", got, dir, wantImages)
		}
		// Hashed as the current controllers are: the same image for the same version.
		current, err := b.hashAs("probe", "flux-controller/helm-controller", "v1.5.0")
		if err != nil || b.hashes["flux-base-controller/helm-controller"] != current {
			t.Errorf("base helm-controller hash %q, want the flux-controller artifact's %q (%v)", b.hashes["flux-base-controller/helm-controller"], current, err)
		}
	})
	t.Run("image out of date", func(t *testing.T) {
		b, log := testBuilder(t, func(img string) bool { return !strings.Contains(img, "helm-controller") })
		b.base = baseFlux{version: "v2.8.0", keep: true, release: baseRelease(), napi: "v1.8.0"}
		for _, run := range []func(*builder, context.Context) error{(*builder).fluxBaseControllers, (*builder).fluxBaseManifests} {
			if err := run(b, context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if b.out.base.Version != "" || b.out.base.Manifests != "" || b.base.release != nil {
			t.Errorf("base kept though helm-controller is out of date: %+v", b.out.base)
		}
		if want := "the base Flux v2.8.0 leaves the profile: its images ghcr.io/fluxcd/helm-controller:v1.5.0 are missing or out of date (build it again: go run ./hack/kit -flux-base v2.8.0)"; !strings.Contains(log.String(), want) {
			t.Errorf("log = %q, want it to say %q", log.String(), want)
		}
	})
	t.Run("manifests missing", func(t *testing.T) {
		b, log := testBuilder(t, func(string) bool { return true })
		b.base = baseFlux{version: "v2.8.0", keep: true, release: baseRelease(), napi: "v1.8.0"}
		for _, run := range []func(*builder, context.Context) error{(*builder).fluxBaseControllers, (*builder).fluxBaseManifests} {
			if err := run(b, context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if b.out.base.Version != "" || !strings.Contains(log.String(), "its manifests directory "+b.kitDir) {
			t.Errorf("base = %+v, log %q; want it dropped for its manifests", b.out.base, log.String())
		}
	})
}

// TestPlan: the base Flux's stages come right after the current Flux's,
// and only when there is a base to build or keep.
func TestPlan(t *testing.T) {
	names := func(ss []stage) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.name)
		}
		return out
	}
	b, _ := testBuilder(t, nil)
	if got, want := names(b.plan()), names(stages()); !slices.Equal(got, want) {
		t.Errorf("plan without a base = %v, want %v", got, want)
	}
	b.base.release = baseRelease()
	got := names(b.plan())
	i := slices.Index(got, "flux-manifests")
	if len(got) != len(stages())+2 || i < 0 || !slices.Equal(got[i+1:i+3], []string{"flux-base-controllers", "flux-base-manifests"}) {
		t.Errorf("plan with a base = %v, want the base stages right after flux-manifests", got)
	}
}
