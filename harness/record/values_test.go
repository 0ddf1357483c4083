package record

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// plantedPassword must never reach a record unless raw values are asked for.
const plantedPassword = "pl4nted-Passw0rd-7f3e"

// sha12 is the digest format records promise for a value: "sha256:" and the
// first 12 hex digits of the sha256 of the value's canonical JSON, given
// here as text so the expectation does not come from the code under test.
func sha12(canonicalJSON string) string {
	sum := sha256.Sum256([]byte(canonicalJSON))
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}

func TestValues(t *testing.T) {
	tree := map[string]any{
		"auth":     map[string]any{"password": plantedPassword, "enabled": true},
		"replicas": int64(3),
		"ratio":    0.5,
		"hosts":    []any{map[string]any{"host": "a.example", "paths": []any{"/"}}},
		"empty":    map[string]any{},
		"none":     nil,
		"a.b":      "dotted key",
		"nested":   map[string]any{"z": "1", "a": "2"},
	}
	want := map[string]string{
		"auth.enabled":      sha12(`true`),
		"auth.password":     sha12(`"` + plantedPassword + `"`),
		"replicas":          sha12(`3`),
		"ratio":             sha12(`0.5`),
		"hosts[0].host":     sha12(`"a.example"`),
		"hosts[0].paths[0]": sha12(`"/"`),
		"empty":             sha12(`{}`),
		"none":              sha12(`null`),
		`a\.b`:              sha12(`"dotted key"`),
		"nested.a":          sha12(`"2"`),
		"nested.z":          sha12(`"1"`),
	}
	if got := Values(tree, false); !reflect.DeepEqual(got, want) {
		t.Errorf("Values(tree, false) =\n%v\nwant\n%v", got, want)
	}

	raw := Values(tree, true)
	if raw["auth.password"] != `"`+plantedPassword+`"` || raw["replicas"] != "3" || raw["empty"] != "{}" {
		t.Errorf("Values(tree, true) does not hold the values as JSON: %v", raw)
	}
	// A substitution map as the API returns it (map[string]any) and as a
	// typed client holds it (map[string]string) digest alike.
	if a, b := Values(map[string]any{"PASSWORD": plantedPassword}, false), Values(map[string]string{"PASSWORD": plantedPassword}, false); !reflect.DeepEqual(a, b) {
		t.Errorf("substitutions digest differently by Go type: %v vs %v", a, b)
	}
	if got := Values(nil, false); got == nil || len(got) != 0 {
		t.Errorf("Values(nil) = %#v, want an empty, non-nil map", got)
	}
	if got := Values("just a string", false); !reflect.DeepEqual(got, map[string]string{RootKey: sha12(`"just a string"`)}) {
		t.Errorf("Values of a scalar = %v", got)
	}

	red := RedactValues(tree).(map[string]any)
	if got := red["auth"].(map[string]any)["password"]; got != sha12(`"`+plantedPassword+`"`) {
		t.Errorf("RedactValues kept auth.password as %v", got)
	}
	if got := red["hosts"].([]any)[0].(map[string]any)["paths"].([]any)[0]; got != sha12(`"/"`) {
		t.Errorf("RedactValues: hosts[0].paths[0] = %v", got)
	}
	if got := red["empty"]; got != sha12(`{}`) {
		t.Errorf("RedactValues: empty = %v", got)
	}
	if tree["auth"].(map[string]any)["password"] != plantedPassword {
		t.Error("RedactValues changed its input")
	}
	if RedactValues(nil) != nil {
		t.Error("RedactValues(nil) is not nil")
	}
}

// TestDiffValues shows the record diff naming a changed value by its key and
// digests, never the value.
func TestDiffValues(t *testing.T) {
	rec := func(password, replicas string, extra map[string]any) *Record {
		r := baseRecord()
		values := map[string]any{"auth": map[string]any{"password": password}, "replicas": replicas}
		for k, v := range extra {
			values[k] = v
		}
		r.HelmReleases[1].Values = Values(values, false)
		r.Kustomizations[1].Substitute = Values(map[string]any{"REDIS_PASSWORD": password, "NGINX_REPLICAS": replicas}, false)
		return r
	}
	before := rec(plantedPassword, "1", map[string]any{"gone": "x"})
	after := rec(plantedPassword+"-rotated", "1", map[string]any{"new": "y"})
	c := Diff(before, after)
	got := c.String()
	old, rotated := sha12(`"`+plantedPassword+`"`), sha12(`"`+plantedPassword+`-rotated"`)
	for _, want := range []string{
		"Kustomization/flux-system/infrastructure: 1 substitution changed\n  ~ substitute REDIS_PASSWORD " + old + " → " + rotated + "\n",
		"HelmRelease/redis/redis: chart redis 0.1.0 → 0.1.0 (values changed)\n" +
			"  ~ values auth.password " + old + " → " + rotated + "\n" +
			"  - values gone (was " + sha12(`"x"`) + ")\n" +
			"  + values new " + sha12(`"y"`) + "\n",
		"HelmRelease/podinfo/podinfo: chart podinfo 6.9.2 → 6.9.2 (unchanged)\n",
	} {
		if !strings.Contains(got+"\n", want) {
			t.Errorf("diff lacks\n%s\ngot:\n%s", want, got)
		}
	}
	if strings.Contains(got, plantedPassword) {
		t.Errorf("diff shows the password:\n%s", got)
	}
	if c.Empty() {
		t.Error("Empty() = true with a changed value")
	}

	// The same values, one record raw (opted in) and one by digest: no
	// change, and a change is shown by digest.
	rawBefore := rec(plantedPassword, "1", map[string]any{"gone": "x"})
	rawBefore.RawValues = true
	rawBefore.HelmReleases[1].Values = Values(map[string]any{"auth": map[string]any{"password": plantedPassword}, "replicas": "1", "gone": "x"}, true)
	rawBefore.Kustomizations[1].Substitute = Values(map[string]any{"REDIS_PASSWORD": plantedPassword, "NGINX_REPLICAS": "1"}, true)
	if d := Diff(rawBefore, rec(plantedPassword, "1", map[string]any{"gone": "x"})); !d.Empty() {
		t.Errorf("raw and digested records of the same values differ:\n%s", d)
	}
	mixed := Diff(rawBefore, after).String()
	if !strings.Contains(mixed, "~ substitute REDIS_PASSWORD "+old+" → "+rotated) || strings.Contains(mixed, plantedPassword) {
		t.Errorf("raw against digested record: want the change by digest only:\n%s", mixed)
	}
	// A record written before values were recorded compares as unchanged.
	older := baseRecord()
	if d := Diff(older, rec(plantedPassword, "1", nil)); !d.Empty() {
		t.Errorf("a record without values against one with values:\n%s", d)
	}
}

// fakeClients serve one Kustomization with a post-build substitution and one
// HelmRelease with values, both holding plantedPassword.
func fakeClients(t *testing.T) *fluxobj.Clients {
	t.Helper()
	listKinds := map[schema.GroupVersionResource]string{}
	for _, kind := range []string{"Kustomization", "HelmRelease", "HelmChart"} {
		k, _ := fluxobj.KindOf(kind)
		listKinds[k.GVR()] = kind + "List"
	}
	ks := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"namespace": "flux-system", "name": "infrastructure"},
		"spec":     map[string]any{"postBuild": map[string]any{"substitute": map[string]any{"REDIS_PASSWORD": plantedPassword}}},
	}}
	hr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
		"metadata": map[string]any{"namespace": "redis", "name": "redis"},
		"spec": map[string]any{"chart": map[string]any{"spec": map[string]any{"chart": "redis", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}}},
			"values": map[string]any{"auth": map[string]any{"password": plantedPassword}}},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, ks, hr)
	return &fluxobj.Clients{Dynamic: dyn, Kube: kubefake.NewClientset()}
}

func TestCollectWritesDigestsUnlessRaw(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "artifacts")
	path := filepath.Join(dir, FileName("staging", ""))
	rec, err := Collect(ctx, fakeClients(t), "staging", Fleet{Served: "1111"})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if err := Write(path, rec); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), plantedPassword) {
		t.Errorf("record %s holds the planted password:\n%s", path, data)
	}
	digest := sha12(`"` + plantedPassword + `"`)
	for _, want := range []string{`"REDIS_PASSWORD": "` + digest + `"`, `"auth.password": "` + digest + `"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("record lacks %s:\n%s", want, data)
		}
	}
	assertMode(t, path, 0o600)
	assertMode(t, dir, 0o700|os.ModeDir)

	raw, err := CollectWith(ctx, fakeClients(t), "staging", Fleet{Served: "1111"}, Options{RawValues: true})
	if err != nil {
		t.Fatalf("CollectWith(RawValues): %v", err)
	}
	if !raw.RawValues || raw.HelmReleases[0].Values["auth.password"] != `"`+plantedPassword+`"` || raw.Kustomizations[0].Substitute["REDIS_PASSWORD"] != `"`+plantedPassword+`"` {
		t.Errorf("CollectWith(RawValues) did not record the values: %+v %+v", raw.HelmReleases, raw.Kustomizations)
	}
}

func TestWriteReplacesModeOfOlderRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName("staging", ""))
	if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, baseRecord()); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("Write left %d files, want only the record: %v", len(entries), entries)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode() & (os.ModePerm | os.ModeDir); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}
