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

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// fakeDockerTags puts a docker command first on PATH that records its
// calls, lists those of tags in the repository that docker images asks
// for, and succeeds at everything else. It returns the recorded calls.
func fakeDockerTags(t *testing.T, tags ...string) func() []string {
	t.Helper()
	dir := t.TempDir()
	calls, list := filepath.Join(dir, "calls"), filepath.Join(dir, "tags")
	if err := os.WriteFile(list, []byte(strings.Join(tags, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"$*\" >>" + calls + "\n" +
		"if [ \"$1\" = images ]; then grep \"^$2:\" " + list + " || true; fi\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() []string {
		raw, err := os.ReadFile(calls)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(raw)), "\n")
	}
}

// kitTags are a kit's images at hash h, as its profile names them.
func kitTags(h string) kitImages {
	return kitImages{
		node:     "fleet-kit/node-preloaded:v1.37.2-" + h,
		nodeBare: "fleet-kit/node:v1.37.2-" + h,
		server:   "fleet-kit/fleet-server:" + h,
	}
}

// writeKitProfile writes a profile naming imgs into kitDir, with the files
// a profile must point at for Load to accept it.
func writeKitProfile(t *testing.T, kitDir string, imgs kitImages) {
	t.Helper()
	writeTree(t, kitDir, map[string]string{
		"kind-config.yaml":                        "kind: Cluster\n",
		"flux-manifests-0/source-controller.yaml": "",
		"podinfo/Chart.yaml":                      "name: podinfo\n",
	})
	p := kitprofile.Profile{
		NodeImage:        imgs.node,
		NodeImageBare:    imgs.nodeBare,
		KindConfigPath:   filepath.Join(kitDir, "kind-config.yaml"),
		FluxManifests:    filepath.Join(kitDir, "flux-manifests-0"),
		ExtraCharts:      []string{filepath.Join(kitDir, "podinfo")},
		FleetServerImage: imgs.server,
	}
	if err := p.Write(filepath.Join(kitDir, kitprofile.ProfileFile)); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveSupersededImages: of the tags on a shared engine, a build
// removes only those its kit directory's previous profile named and the
// new one replaced: never another kit directory's (hash cccc…), nor its own
// new ones, and it says why it removed what it did.
func TestRemoveSupersededImages(t *testing.T) {
	old, cur, other := kitTags("aaaaaaaaaaaa"), kitTags("bbbbbbbbbbbb"), kitTags("cccccccccccc")
	var tags []string
	for _, k := range []kitImages{old, cur, other} {
		tags = append(tags, k.node, k.nodeBare, k.server)
	}
	calls := fakeDockerTags(t, tags...)
	var log bytes.Buffer
	b := &builder{kitDir: t.TempDir(), log: &logger{w: &log, now: time.Now}}
	writeKitProfile(t, b.kitDir, old)

	prev := b.previousImages()
	writeKitProfile(t, b.kitDir, cur) // the build's new profile
	b.out.nodeImage, b.out.nodeBare, b.out.serverImage = cur.node, cur.nodeBare, cur.server
	b.removeSupersededImages(context.Background(), prev)

	var removed []string
	for _, c := range calls() {
		if img, ok := strings.CutPrefix(c, "rmi "); ok {
			removed = append(removed, img)
		}
	}
	if want := []string{old.node, old.nodeBare, old.server}; !slices.Equal(removed, want) {
		t.Errorf("docker rmi ran for %q, want exactly %q (calls: %q)", removed, want, calls())
	}
	for _, want := range []string{
		"removing " + old.node + ": superseded in this kit's profile by " + cur.node,
		"left 1 other fleet-kit/node-preloaded image(s) alone",
		"left 1 other fleet-kit/fleet-server image(s) alone",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// TestRemoveSupersededNothing: a build removes no image when its images
// are unchanged, when its kit directory has no profile yet, or when the
// previous profile does not load (saying so): nothing goes that this kit
// cannot show it recorded.
func TestRemoveSupersededNothing(t *testing.T) {
	old, cur := kitTags("aaaaaaaaaaaa"), kitTags("bbbbbbbbbbbb")
	for _, tc := range []struct {
		name    string
		profile func(t *testing.T, dir string)
		wantLog string
	}{
		{"unchanged", func(t *testing.T, dir string) { writeKitProfile(t, dir, cur) }, ""},
		{"no profile", func(*testing.T, string) {}, ""},
		{"unreadable profile", func(t *testing.T, dir string) {
			writeKitProfile(t, dir, old)
			if err := os.RemoveAll(filepath.Join(dir, "flux-manifests-0")); err != nil {
				t.Fatal(err)
			}
		}, "no superseded image will be removed: reading this kit's previous profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := fakeDockerTags(t, old.node, cur.node)
			var log bytes.Buffer
			b := &builder{kitDir: t.TempDir(), log: &logger{w: &log, now: time.Now}}
			tc.profile(t, b.kitDir)
			prev := b.previousImages()
			b.out.nodeImage, b.out.nodeBare, b.out.serverImage = cur.node, cur.nodeBare, cur.server
			b.removeSupersededImages(context.Background(), prev)
			if got := calls(); len(got) > 0 {
				t.Errorf("docker ran: %q", got)
			}
			if !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, log.String())
			}
		})
	}
}

func TestRepository(t *testing.T) {
	for image, want := range map[string]string{
		"fleet-kit/node:v1.37.2-0123456789ab": "fleet-kit/node",
		"fleet-kit/fleet-server:0123456789ab": "fleet-kit/fleet-server",
		"localhost:5000/fleet-kit/node":       "localhost:5000/fleet-kit/node",
		"localhost:5000/fleet-kit/node:v1":    "localhost:5000/fleet-kit/node",
		"":                                    "",
	} {
		if got := repository(image); got != want {
			t.Errorf("repository(%q) = %q, want %q", image, got, want)
		}
	}
}
