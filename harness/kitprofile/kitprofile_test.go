package kitprofile

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestFluxImages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		preload []string
		want    []string
	}{
		{"none", nil, nil},
		{"only controllers kept", []string{"ghcr.io/fluxcd/source-controller:v1.9.5", "fleet-kit/nginx:bookworm", "ghcr.io/fluxcd/kustomize-controller:v1.9.5"},
			[]string{"ghcr.io/fluxcd/source-controller:v1.9.5", "ghcr.io/fluxcd/kustomize-controller:v1.9.5"}},
		{"no controllers", []string{"fleet-kit/redis:bookworm"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Profile{PreloadImages: tc.preload}).FluxImages(); !slices.Equal(got, tc.want) {
				t.Errorf("FluxImages() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	chart := t.TempDir()
	if err := os.WriteFile(filepath.Join(chart, "Chart.yaml"), []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	manifests := t.TempDir()
	if err := os.WriteFile(filepath.Join(manifests, "source-controller.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	kindConfig := filepath.Join(t.TempDir(), "kind.yaml")
	if err := os.WriteFile(kindConfig, []byte("kind: Cluster\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, p Profile)
	}{
		{"no kit", nil, "", func(t *testing.T, p Profile) {
			if p.Offline() || len(p.Missing()) != 3 {
				t.Errorf("got %+v, missing %v", p, p.Missing())
			}
		}},
		{"whole profile", map[string]string{NodeImageVar: "n:1", NodeImageBareVar: "b:1", KindConfigVar: kindConfig, FluxManifestsVar: manifests,
			FluxComponentsVar: "source-controller, helm-controller", PreloadImagesVar: "a:1,b:2", ExtraChartsVar: chart}, "", func(t *testing.T, p Profile) {
			if !p.Offline() || len(p.Missing()) != 0 || string(p.KindConfig) != "kind: Cluster\n" || p.NodeImageBare != "b:1" ||
				!slices.Equal(p.FluxComponents, []string{"source-controller", "helm-controller"}) ||
				!slices.Equal(p.PreloadImages, []string{"a:1", "b:2"}) || !slices.Equal(p.ExtraCharts, []string{chart}) {
				t.Errorf("got %+v", p)
			}
		}},
		{"kind config missing", map[string]string{KindConfigVar: filepath.Join(chart, "nope.yaml")}, KindConfigVar, nil},
		{"not a manifests directory", map[string]string{FluxManifestsVar: chart}, "is not an offline manifests directory", nil},
		{"extra chart that is not a chart", map[string]string{ExtraChartsVar: manifests}, "is not a chart directory", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(PathVar, "")
			for _, v := range []string{NodeImageVar, NodeImageBareVar, KindConfigVar, FluxManifestsVar, FluxComponentsVar, PreloadImagesVar, ExtraChartsVar} {
				t.Setenv(v, tt.env[v])
			}
			p, err := FromEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

// TestFromEnvReadsKitPath: with E2E_KIT set, the profile comes from that
// file alone; a variable of the profile left in the environment is ignored.
func TestFromEnvReadsKitPath(t *testing.T) {
	want := wholeProfile(t)
	path := filepath.Join(t.TempDir(), ProfileFile)
	if err := want.Write(path); err != nil {
		t.Fatal(err)
	}
	t.Setenv(PathVar, path)
	t.Setenv(NodeImageVar, "stale/node:from-the-environment")
	got, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want.KindConfig = []byte("kind: Cluster\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromEnv with %s = %+v\nwant %+v", PathVar, got, want)
	}

	missing := filepath.Join(t.TempDir(), ProfileFile)
	t.Setenv(PathVar, missing)
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "kit profile "+missing+" does not exist") {
		t.Errorf("FromEnv with %s=%s (no such file): err = %v, want it to name the missing file", PathVar, missing, err)
	}
}

func TestUnset(t *testing.T) {
	p := Profile{NodeImage: "n:1", PreloadImages: []string{"a:1"}}
	got := p.Unset(NodeImageVar, KindConfigVar, PreloadImagesVar, ExtraChartsVar, "FLEET_NOT_A_VARIABLE")
	want := []string{KindConfigVar, ExtraChartsVar, "FLEET_NOT_A_VARIABLE"}
	if !slices.Equal(got, want) {
		t.Errorf("Unset = %v, want %v", got, want)
	}
}

// kitFiles makes what a whole profile points at: a kind config, a manifests
// directory and a chart directory.
func kitFiles(t *testing.T) (kindConfig, manifests, chart string) {
	t.Helper()
	dir := t.TempDir()
	kindConfig = filepath.Join(dir, "kind-config.yaml")
	manifests = filepath.Join(dir, "flux-manifests-0123abcd")
	chart = filepath.Join(dir, "mod", "podinfo@v1.8.1-0.20250910200901-e86405a8674e", "charts", "podinfo")
	for _, d := range []string{manifests, chart} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, data := range map[string]string{
		kindConfig: "kind: Cluster\n",
		filepath.Join(manifests, "source-controller.yaml"): "",
		filepath.Join(chart, "Chart.yaml"):                 "apiVersion: v2\nname: podinfo\nversion: 6.9.2\n",
	} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return kindConfig, manifests, chart
}

func wholeProfile(t *testing.T) Profile {
	kindConfig, manifests, chart := kitFiles(t)
	return Profile{
		NodeImage:        "fleet-kit/node-preloaded:v1.37.2-0123456789ab",
		NodeImageBare:    "fleet-kit/node:v1.37.2-ba9876543210",
		KindConfigPath:   kindConfig,
		FluxManifests:    manifests,
		FluxComponents:   []string{"source-controller", "kustomize-controller", "helm-controller"},
		PreloadImages:    []string{"ghcr.io/fluxcd/source-controller:v1.9.5", "fleet-kit/nginx:bookworm", "ghcr.io/stefanprodan/podinfo:6.9.2"},
		ExtraCharts:      []string{chart},
		FleetServerImage: "fleet-kit/fleet-server:0123456789ab",
		BaseFlux: FluxSet{Version: "v2.8.0", Manifests: manifests,
			Images: []string{"ghcr.io/fluxcd/source-controller:v1.8.0", "ghcr.io/fluxcd/helm-controller:v1.5.0"}},
	}
}

func TestServerImageAndFluxBase(t *testing.T) {
	p := wholeProfile(t)
	if got := p.ServerImage(); got != "fleet-kit/fleet-server:0123456789ab" {
		t.Errorf("ServerImage() = %q", got)
	}
	if set, ok := p.FluxBase(); !ok || !reflect.DeepEqual(set, p.BaseFlux) {
		t.Errorf("FluxBase() = %+v, %v; want %+v, true", set, ok, p.BaseFlux)
	}
	var none Profile
	if none.ServerImage() != "" {
		t.Errorf("ServerImage() of no kit = %q, want empty", none.ServerImage())
	}
	if set, ok := none.FluxBase(); ok || !reflect.DeepEqual(set, FluxSet{}) {
		t.Errorf("FluxBase() of no kit = %+v, %v; want none", set, ok)
	}
	// Optional: a profile without them is still a whole kit.
	p.FleetServerImage, p.BaseFlux = "", FluxSet{}
	if missing := p.Missing(); len(missing) != 0 {
		t.Errorf("Missing() without server image and base Flux = %v, want none", missing)
	}
	path := filepath.Join(t.TempDir(), ProfileFile)
	if err := p.Write(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ServerImage() != "" {
		t.Errorf("loaded ServerImage() = %q, want empty", got.ServerImage())
	}
	if _, ok := got.FluxBase(); ok {
		t.Errorf("loaded FluxBase() reports a base Flux that was not written")
	}
}

// TestLoadRejectsPartialFluxBase: a base Flux is whole or absent; the error
// names the file, the line of the variable at fault and the variable.
func TestLoadRejectsPartialFluxBase(t *testing.T) {
	_, manifests, _ := kitFiles(t)
	for _, tc := range []struct{ name, file, want string }{
		{"version only", "FLEET_FLUX_BASE_VERSION=v2.8.0\n", ":1: " + FluxBaseManifestsVar + " is unset while the base Flux's other variables are set"},
		{"no images", "FLEET_FLUX_BASE_VERSION=v2.8.0\nFLEET_FLUX_BASE_MANIFESTS=" + manifests + "\n", FluxBaseImagesVar + " is unset"},
		{"no version", "# a comment\nFLEET_FLUX_BASE_MANIFESTS=" + manifests + "\nFLEET_FLUX_BASE_IMAGES=a:1\n", ":2: " + FluxBaseVersionVar + " is unset"},
		{"manifests not there, on line 2", "FLEET_FLUX_BASE_VERSION=v2.8.0\nFLEET_FLUX_BASE_MANIFESTS=/nonexistent\nFLEET_FLUX_BASE_IMAGES=a:1\n",
			":2: " + FluxBaseManifestsVar + "=/nonexistent is not an offline manifests directory (run go run ./hack/kit -flux-base v2.8.0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ProfileFile)
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: err = %v, want it to name %s and contain %q", err, path, tc.want)
			}
		})
	}
}

// TestCheckWhole: Load reads an empty or truncated profile (hack/kit reads
// an old one before it rebuilds it); CheckWhole, which the harness calls,
// names the file and what the profile lacks.
func TestCheckWhole(t *testing.T) {
	if err := wholeProfile(t).CheckWhole("profile.env"); err != nil {
		t.Errorf("CheckWhole of a whole profile: %v", err)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"empty", "", "has no FLEET_NODE_IMAGE, FLEET_KIND_CONFIG, FLEET_FLUX_MANIFESTS: it is empty, truncated or not the kit's (rebuild the kit: go run ./hack/kit)"},
		{"node image only", "FLEET_NODE_IMAGE=x\n", "has no FLEET_KIND_CONFIG, FLEET_FLUX_MANIFESTS: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ProfileFile)
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v; want an incomplete profile to load", err)
			}
			if err := p.CheckWhole(path); err == nil || !strings.Contains(err.Error(), "kit profile "+path+" "+tc.want) {
				t.Fatalf("CheckWhole: err = %v, want it to contain %q", err, "kit profile "+path+" "+tc.want)
			}
		})
	}
}

func TestWriteLoadRoundTrip(t *testing.T) {
	want := wholeProfile(t)
	path := filepath.Join(t.TempDir(), ProfileFile)
	if err := want.Write(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want.KindConfig = []byte("kind: Cluster\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(Write(p)) = %+v\nwant %+v", got, want)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "# Offline kit profile, generated by go run ./hack/kit") {
		t.Errorf("profile.env does not start with the generated-file header:\n%s", raw)
	}
	if !strings.Contains(string(raw), "\n"+FluxComponentsVar+"=source-controller,kustomize-controller,helm-controller\n") {
		t.Errorf("profile.env lists components otherwise than comma-separated:\n%s", raw)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Errorf("Write left temporary files: %v", left)
	}
}

// TestWriteSourcedByShell reads the profile the way make does — a shell
// sourcing it with set -a — and then through FromEnv.
func TestWriteSourcedByShell(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no bash to source the profile with:", err)
		}
		t.Skip("no bash:", err)
	}
	want := wholeProfile(t)
	path := filepath.Join(t.TempDir(), ProfileFile)
	if err := want.Write(path); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, "-c", `set -eu; set -a; . "$1"; set +a; env -0`, "bash", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sourcing %s: %v", path, err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(out), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	t.Setenv(PathVar, "")
	for _, v := range variables() {
		t.Setenv(v.name, env[v.name])
	}
	got, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want.KindConfig = []byte("kind: Cluster\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromEnv after sourcing = %+v\nwant %+v", got, want)
	}
}

func TestWriteRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*Profile)
		wantErr string
	}{
		{"no node image", func(p *Profile) { p.NodeImage = "" }, NodeImageVar + " unset"},
		{"no manifests", func(p *Profile) { p.FluxManifests = "" }, FluxManifestsVar + " unset"},
		{"blank in a path", func(p *Profile) { p.KindConfigPath = "/srv/my kit/kind.yaml" }, KindConfigVar + `: value "/srv/my kit/kind.yaml" holds ' '`},
		{"dollar", func(p *Profile) { p.NodeImageBare = "n:$TAG" }, NodeImageBareVar + `: value "n:$TAG" holds '$'`},
		{"comma inside a list item", func(p *Profile) { p.PreloadImages = []string{"a:1,b:2"} }, PreloadImagesVar + `: item "a:1,b:2"`},
		{"empty list item", func(p *Profile) { p.ExtraCharts = []string{""} }, ExtraChartsVar + `: item ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wholeProfile(t)
			tc.edit(&p)
			path := filepath.Join(t.TempDir(), ProfileFile)
			err := p.Write(path)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Write: err = %v, want it to contain %q", err, tc.wantErr)
			}
			if _, serr := os.Stat(path); !os.IsNotExist(serr) {
				t.Errorf("a refused Write left %s (stat: %v)", path, serr)
			}
		})
	}
}

// TestLoadRejects: every error names the profile file, and the line at
// fault ("<path>:<line>: ...") when one is; a file that is not there says so.
func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		name, file, wantErr string
	}{
		{"not an assignment", "# c\nFLEET_NODE_IMAGE\n", ":2: \"FLEET_NODE_IMAGE\" is not NAME=value"},
		{"unknown variable", "FLEET_NODE_IMAGES=n:1\n", `:1: unknown variable "FLEET_NODE_IMAGES"`},
		// What is not plain shows quoted: a blank, a byte order mark, no name, binary.
		{"blank before =", "FLEET_NODE_IMAGE =n:1\n", `:1: unknown variable "FLEET_NODE_IMAGE "`},
		{"byte order mark", "\ufeffFLEET_NODE_IMAGE=n:1\n", `:1: unknown variable "\ufeffFLEET_NODE_IMAGE"`},
		{"line starting with =", "=n:1\n", `:1: unknown variable ""`},
		{"binary with =", "\x7fELF\x02\x01=\xff\n", `:1: unknown variable "\x7fELF\x02\x01"`},
		{"binary without =", "\x7fELF\x02\x01\x00\xff\n", `:1: "\x7fELF\x02\x01\x00\xff" is not NAME=value`},
		{"set twice", "FLEET_NODE_IMAGE=\nFLEET_NODE_IMAGE=n:1\n", ":2: FLEET_NODE_IMAGE is set twice"},
		{"quoted value", "FLEET_NODE_IMAGE=\"n:1\"\n", ":1: FLEET_NODE_IMAGE: value"},
		{"missing kind config", "FLEET_KIND_CONFIG=/nonexistent/kind.yaml\n", ":1: " + KindConfigVar + ": open /nonexistent/kind.yaml"},
		{"manifests directory without manifests, on line 4", "# generated\n\nFLEET_NODE_IMAGE=n:1\nFLEET_FLUX_MANIFESTS=/nonexistent\n",
			":4: " + FluxManifestsVar + "=/nonexistent is not an offline manifests directory"},
		{"extra chart that is not a chart, on line 2", "FLEET_NODE_IMAGE=n:1\nFLEET_EXTRA_CHARTS=/nonexistent\n",
			":2: " + ExtraChartsVar + ": /nonexistent is not a chart directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ProfileFile)
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), path+tc.wantErr) {
				t.Fatalf("Load: err = %v, want it to contain %q", err, path+tc.wantErr)
			}
		})
	}
	t.Run("no such file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), ProfileFile)
		_, err := Load(path)
		if want := "kit profile " + path + " does not exist"; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Load: err = %v, want it to contain %q", err, want)
		}
	})
}

func TestDefaultDir(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name              string
		kitDir, xdg, home string
		want              string
	}{
		{"FLEET_KIT_DIR wins", "/srv/kit", "/xdg", "/home/u", "/srv/kit"},
		{"relative FLEET_KIT_DIR made absolute", "kit", "", "/home/u", filepath.Join(cwd, "kit")},
		{"XDG cache", "", "/xdg", "/home/u", "/xdg/flux-fleet/kit"},
		{"home cache", "", "", "/home/u", "/home/u/.cache/flux-fleet/kit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(KitDirVar, tc.kitDir)
			t.Setenv("XDG_CACHE_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			got, err := DefaultDir()
			if err != nil || got != tc.want {
				t.Fatalf("DefaultDir() = %q, %v; want %q", got, err, tc.want)
			}
			if p, err := ProfilePath(); err != nil || p != filepath.Join(tc.want, "profile.env") {
				t.Errorf("ProfilePath() = %q, %v; want %q", p, err, filepath.Join(tc.want, "profile.env"))
			}
		})
	}
}
