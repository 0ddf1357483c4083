package fleetenv

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
	"github.com/flux-fleet/flux-fleet/harness/record"
	"github.com/flux-fleet/flux-fleet/harness/report"
)

// kitWithBase writes a whole kit profile whose base Flux is version, or
// none when version is empty.
func kitWithBase(t *testing.T, version string) (string, kitprofile.Profile) {
	t.Helper()
	path, p := wholeKit(t)
	if version == "" {
		return path, p
	}
	dir := filepath.Dir(path)
	p.BaseFlux = kitprofile.FluxSet{
		Version:   version,
		Manifests: filepath.Dir(writeFile(t, filepath.Join(dir, "base-manifests", "source-controller.yaml"), "")),
		Images:    []string{"ghcr.io/fluxcd/source-controller:v1.8.0"},
	}
	if err := p.Write(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := kitprofile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, loaded
}

func TestFluxBaseOption(t *testing.T) {
	root := committedFleet(t)
	target, err := fluxinstall.FluxVersion()
	if err != nil {
		t.Fatal(err)
	}
	bareKit, _ := kitWithBase(t, "")
	otherKit, _ := kitWithBase(t, "v2.7.0")
	baseKit, withBase := kitWithBase(t, "v2.8.0")

	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // the error's text after the variable; "" resolves
	}{
		{"not a release", map[string]string{"E2E_FLUX_BASE": "2.8.0"}, `Flux version "2.8.0" is not a flux2 release: want vX.Y.Z, such as v2.8.0`},
		{"not older", map[string]string{"E2E_FLUX_BASE": target}, "the base Flux must be older than the version it is upgraded to, go.mod's " + target},
		{"kit without a base", map[string]string{"E2E_FLUX_BASE": "v2.8.0", kitprofile.PathVar: bareKit},
			"base Flux v2.8.0: the kit has no base Flux: build it with `go run ./hack/kit -flux-base v2.8.0`"},
		{"kit with another base", map[string]string{"E2E_FLUX_BASE": "v2.8.0", kitprofile.PathVar: otherKit},
			"base Flux v2.8.0: the kit's base Flux is v2.7.0: build v2.8.0 with `go run ./hack/kit -flux-base v2.8.0`"},
		{"kit with the base", map[string]string{"E2E_FLUX_BASE": "v2.8.0", kitprofile.PathVar: baseKit}, ""},
		{"online", map[string]string{"E2E_FLUX_BASE": "v2.8.0"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := resolve(t, root, tc.env, nil)
			if tc.want == "" {
				if err != nil || opts.FluxBase != "v2.8.0" {
					t.Fatalf("FluxBase = %q, %v; want v2.8.0", opts.FluxBase, err)
				}
				return
			}
			want := `E2E_FLUX_BASE="` + tc.env["E2E_FLUX_BASE"] + `": ` + tc.want
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, want)
			}
		})
	}

	opts, err := resolve(t, root, map[string]string{"E2E_FLUX_BASE": "v2.8.0", kitprofile.PathVar: baseKit}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := opts.fluxAtInstall()
	if err != nil || !slices.Equal(first.Images, withBase.BaseFlux.Images) || first.Version != "v2.8.0" || first.Manifests != withBase.BaseFlux.Manifests {
		t.Errorf("install with the kit's base = %+v, %v; want the kit's base set %+v", first, err, withBase.BaseFlux)
	}
	to, err := opts.fluxTarget()
	if err != nil || to.Version != target || to.Manifests != withBase.FluxManifests || len(to.Images) != 0 {
		t.Errorf("target = %+v, %v; want go.mod's %s from the kit's manifests %s", to, err, target, withBase.FluxManifests)
	}
}

// Without a base Flux the install is exactly the previous one: go.mod's
// version (left to fluxinstall) from the kit's manifests, nothing loaded.
func TestFluxAtInstallWithoutBase(t *testing.T) {
	o := Options{Kit: kitprofile.Profile{FluxManifests: "/kit/manifests"}}
	set, err := o.fluxAtInstall()
	if err != nil || set.Version != "" || set.Manifests != "/kit/manifests" || len(set.Images) != 0 {
		t.Errorf("fluxAtInstall = %+v, %v", set, err)
	}
	o = Options{FluxBase: "v2.8.0"}
	if set, err := o.fluxAtInstall(); err != nil || set.Version != "v2.8.0" || set.Manifests != "" {
		t.Errorf("online with a base: %+v, %v; want the release download of v2.8.0", set, err)
	}
}

func TestBringUpEndsWithTheFluxUpgrade(t *testing.T) {
	names := func(o Options) []string {
		var out []string
		for _, s := range BringUp(o) {
			out = append(out, s.Name)
		}
		return out
	}
	plain := names(Options{})
	if slices.Contains(plain, fluxUpgradeStep) {
		t.Errorf("without a base Flux: %v", plain)
	}
	if got := names(Options{FluxBase: "v2.8.0"}); !slices.Equal(got, append(slices.Clone(plain), "flux upgrade")) {
		t.Errorf("with a base Flux: %v", got)
	}
	if got := names(Options{FluxBase: "v2.8.0", Base: "HEAD~1"}); !slices.Equal(got[len(got)-2:], []string{"upgrade", "flux upgrade"}) {
		t.Errorf("with both bases: %v, want the fleet's upgrade, then Flux's", got)
	}
}

func TestRevisionChanges(t *testing.T) {
	before := &record.Record{
		Kustomizations: []record.Kustomization{{Ref: "Kustomization/flux-system/apps", AppliedRevision: "main@sha1:aaa"}, {Ref: "Kustomization/flux-system/infra", AppliedRevision: "main@sha1:aaa"}},
		HelmReleases:   []record.HelmRelease{{Ref: "HelmRelease/apps/redis", Chart: "redis", Version: "1.0.0", ConfigDigest: "sha256:1"}},
	}
	same := &record.Record{Kustomizations: slices.Clone(before.Kustomizations), HelmReleases: slices.Clone(before.HelmReleases)}
	if got := revisionChanges(before, same); len(got) != 0 {
		t.Errorf("identical records: %+v", got)
	}
	moved := &record.Record{
		Kustomizations: []record.Kustomization{{Ref: "Kustomization/flux-system/apps", AppliedRevision: "main@sha1:bbb"}},
		HelmReleases:   []record.HelmRelease{{Ref: "HelmRelease/apps/redis", Chart: "redis", Version: "1.0.0", ConfigDigest: "sha256:2"}},
	}
	want := []RevisionChange{
		{Object: "HelmRelease/apps/redis", From: "chart redis 1.0.0, values sha256:1", To: "chart redis 1.0.0, values sha256:2"},
		{Object: "Kustomization/flux-system/apps", From: "main@sha1:aaa", To: "main@sha1:bbb"},
		{Object: "Kustomization/flux-system/infra", From: "main@sha1:aaa"},
	}
	if got := revisionChanges(before, moved); !slices.Equal(got, want) {
		t.Errorf("revisionChanges = %+v\nwant %+v", got, want)
	}
}

func TestFleetNamespacesAndReplacedPods(t *testing.T) {
	rec := &record.Record{Workloads: []record.Workload{
		{Ref: "Deployment/flux-system/helm-controller"}, {Ref: "Deployment/kube-system/coredns"},
		{Ref: "Deployment/apps/fleet-app"}, {Ref: "StatefulSet/redis/redis"}, {Ref: "Deployment/apps/other"},
	}}
	if got := fleetNamespaces(rec); !slices.Equal(got, []string{"apps", "redis"}) {
		t.Errorf("fleetNamespaces = %v, want apps and redis only", got)
	}
	before := map[string]workloadPod{
		"apps/fleet-app-1": {uid: "u1", owner: "ReplicaSet/fleet-app-abc"},
		"redis/redis-0":    {uid: "u2", owner: "StatefulSet/redis"},
		"apps/kept":        {uid: "u3", owner: "ReplicaSet/kept-abc"},
	}
	after := map[string]workloadPod{
		"redis/redis-0": {uid: types.UID("u9"), owner: "StatefulSet/redis"},
		"apps/kept":     {uid: "u3", owner: "ReplicaSet/kept-abc"},
		"apps/new":      {uid: "u4", owner: "ReplicaSet/new"},
	}
	want := []string{
		"pod apps/fleet-app-1 (of ReplicaSet/fleet-app-abc) is gone after the Flux upgrade",
		"pod redis/redis-0 (of StatefulSet/redis) was replaced: uid u2 → u9",
	}
	if got := replacedPods(before, after); !slices.Equal(got, want) {
		t.Errorf("replacedPods = %q\nwant %q", got, want)
	}
	if got := replacedPods(before, before); len(got) != 0 {
		t.Errorf("unchanged pods: %q", got)
	}
}

// helmStorageRelease encodes a release as Helm's storage Secret holds it
// (its data, as the API returns it decoded once): base64 of gzipped JSON.
func helmStorageRelease(t *testing.T, description string, values map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"name": "redis", "version": 2,
		"info": map[string]any{"description": description, "status": "deployed"}, "config": values})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(gz.Bytes()))
}

// The Helm storage Secret holds the release's values (passwords among
// them): the upgrade reads only Helm's description from it, and neither
// the report nor the run report's check carries a value.
func TestReleaseDescriptionKeepsValuesOut(t *testing.T) {
	const planted = "planted-helm-password-0xC0FFEE"
	data := helmStorageRelease(t, "Upgrade complete", map[string]any{"auth": map[string]any{"password": planted}})
	got, err := decodeReleaseDescription(data)
	if err != nil || got != "Upgrade complete" {
		t.Fatalf("description = %q, %v; want Helm's %q", got, err, "Upgrade complete")
	}
	latest := &helmv2.Snapshot{Name: "redis", Version: 2, Status: "deployed", Action: "upgrade"}
	why := whyNewRelease(got, latest, record.HelmRelease{Version: "1.0.0", ConfigDigest: "sha256:1"}, record.HelmRelease{Version: "1.0.0", ConfigDigest: "sha256:1"})
	if want := `Helm: "Upgrade complete" (history: upgrade deployed v2); same chart and values: made by the new helm-controller itself`; why != want {
		t.Errorf("why = %q\nwant %q", why, want)
	}
	rep := &FluxUpgradeReport{Env: "staging", From: "v2.8.0", To: "v2.9.5",
		Releases: []HelmRevision{{HelmRelease: "HelmRelease/redis/redis", Release: "redis/redis", Before: 1, After: 2, Why: why}}}
	c := rep.check()
	for what, text := range map[string]string{"report": rep.String(), "check": c.Name + c.Failure} {
		if strings.Contains(text, planted) {
			t.Errorf("the %s carries the planted value:\n%s", what, text)
		}
	}

	for _, bad := range [][]byte{[]byte("not base64!"), []byte(base64.StdEncoding.EncodeToString([]byte{0x1f, 0x8b, 0x08, 0}))} {
		if _, err := decodeReleaseDescription(bad); err == nil {
			t.Errorf("decodeReleaseDescription(%q) = nil error", bad)
		}
	}
	// Helm may store a release uncompressed.
	plain := base64.StdEncoding.EncodeToString([]byte(`{"info":{"description":"Install complete"}}`))
	if got, err := decodeReleaseDescription([]byte(plain)); err != nil || got != "Install complete" {
		t.Errorf("uncompressed release: %q, %v", got, err)
	}
}

func TestFluxUpgradeReportProblems(t *testing.T) {
	green := &FluxUpgradeReport{Env: "staging", From: "v2.8.0", To: "v2.9.5",
		Controllers: []ControllerImages{{Deployment: "helm-controller", From: []string{"h:v1.5.0"}, To: []string{"h:v1.6.4"}}},
		Releases:    []HelmRevision{{HelmRelease: "HelmRelease/apps/podinfo", Release: "apps/podinfo", Before: 1, After: 1}}}
	if p := green.Problems(); len(p) != 0 {
		t.Errorf("green report: %q", p)
	}
	if c := green.check(); c.Result != report.Passed || c.Name != "flux upgrade v2.8.0 → v2.9.5" || c.Env != "staging" {
		t.Errorf("check = %+v", c)
	}
	for _, line := range []string{
		"flux upgrade v2.8.0 → v2.9.5: fleet untouched;",
		"controller helm-controller: h:v1.5.0 → h:v1.6.4",
		"every Kustomization and HelmRelease Ready at the same revision",
		"HelmRelease/apps/podinfo: no new Helm release (apps/podinfo v1)",
		"no workload pod replaced",
	} {
		if !strings.Contains(green.String(), line) {
			t.Errorf("report lacks %q:\n%s", line, green)
		}
	}

	bad := &FluxUpgradeReport{Env: "staging", From: "v2.8.0", To: "v2.9.5",
		Ready:        errors.New("HelmRelease/apps/podinfo: upgrade failed"),
		Revisions:    []RevisionChange{{Object: "Kustomization/flux-system/apps", From: "a", To: "b"}},
		Releases:     []HelmRevision{{HelmRelease: "HelmRelease/apps/podinfo", Release: "apps/podinfo", Before: 1, After: 2}},
		PodsReplaced: []string{"pod apps/x (of ReplicaSet/x) is gone after the Flux upgrade"},
		Traffic:      ErrNotChecked}
	want := []string{
		"not Ready under Flux v2.9.5: HelmRelease/apps/podinfo: upgrade failed",
		`Kustomization/flux-system/apps moved from revision "a" to "b"`,
		"HelmRelease/apps/podinfo: new Helm release revision 2 (was 1) without an explanation",
		"pod apps/x (of ReplicaSet/x) is gone after the Flux upgrade",
	}
	if got := bad.Problems(); !slices.Equal(got, want) {
		t.Errorf("Problems = %q\nwant %q", got, want)
	}
	if c := bad.check(); c.Result != report.Failed || c.Failure != strings.Join(want, "; ") {
		t.Errorf("check = %+v", c)
	}
}
