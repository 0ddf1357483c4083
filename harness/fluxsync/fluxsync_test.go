package fluxsync

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/sourceignore"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestObjects(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantSecret bool
		wantPath   string
		wantIgnore string
		wantIntv   string
	}{
		{
			name:       "with credentials",
			opts:       Options{URL: "http://172.18.0.1:8080/fleet.git", Path: "./clusters/staging", Username: "u", Password: "p"},
			wantSecret: true,
			wantPath:   "./clusters/staging",
			wantIgnore: "/clusters/staging/flux-system/",
			wantIntv:   "1m0s",
		},
		{
			name:       "anonymous, path without ./ and custom interval",
			opts:       Options{URL: "http://172.18.0.1:8080/fleet.git", Path: "clusters/production/", Interval: 30 * time.Second},
			wantPath:   "./clusters/production/",
			wantIgnore: "/clusters/production/flux-system/",
			wantIntv:   "30s",
		},
		{
			name:       "repository root",
			opts:       Options{URL: "http://h/r.git", Path: "./"},
			wantPath:   "./",
			wantIgnore: "/flux-system/",
			wantIntv:   "1m0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := objects(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			byKind := map[string]*unstructured.Unstructured{}
			for _, o := range objs {
				if o.GetNamespace() != "flux-system" || o.GetName() != "flux-system" {
					t.Errorf("%s is %s/%s, want flux-system/flux-system", o.GetKind(), o.GetNamespace(), o.GetName())
				}
				byKind[o.GetKind()] = o
			}
			if len(objs) != len(byKind) {
				t.Fatalf("duplicate kinds in %d objects", len(objs))
			}

			repo := byKind["GitRepository"]
			if repo == nil || repo.GetAPIVersion() != "source.toolkit.fluxcd.io/v1" {
				t.Fatalf("no source.toolkit.fluxcd.io/v1 GitRepository in %v", byKind)
			}
			if url, _, _ := unstructured.NestedString(repo.Object, "spec", "url"); url != tt.opts.URL {
				t.Errorf("url = %q, want %q", url, tt.opts.URL)
			}
			if br, _, _ := unstructured.NestedString(repo.Object, "spec", "ref", "branch"); br != "main" {
				t.Errorf("branch = %q, want main", br)
			}
			if iv, _, _ := unstructured.NestedString(repo.Object, "spec", "interval"); iv != tt.wantIntv {
				t.Errorf("GitRepository interval = %q, want %q", iv, tt.wantIntv)
			}
			ignore, _, _ := unstructured.NestedString(repo.Object, "spec", "ignore")
			lines := strings.Split(ignore, "\n")
			for _, want := range []string{tt.wantIgnore, ".git/", "*.tar.gz", ".github/", "**/.flux.yaml"} {
				if !contains(lines, want) {
					t.Errorf("spec.ignore lacks %q:\n%s", want, ignore)
				}
			}
			ref, hasRef, _ := unstructured.NestedString(repo.Object, "spec", "secretRef", "name")
			secret := byKind["Secret"]
			if tt.wantSecret {
				if !hasRef || ref != "flux-system" {
					t.Errorf("secretRef.name = %q (present %v), want flux-system", ref, hasRef)
				}
				if secret == nil {
					t.Fatal("no Secret")
				}
				data, _, _ := unstructured.NestedStringMap(secret.Object, "stringData")
				if data["username"] != "u" || data["password"] != "p" {
					t.Errorf("Secret stringData = %v", data)
				}
				if objs[0].GetKind() != "Secret" {
					t.Errorf("Secret is not applied first: %s", objs[0].GetKind())
				}
			} else {
				if _, found, _ := unstructured.NestedFieldNoCopy(repo.Object, "spec", "secretRef"); found {
					t.Error("secretRef present without credentials")
				}
				if secret != nil {
					t.Error("Secret generated without credentials")
				}
			}

			ks := byKind["Kustomization"]
			if ks == nil || ks.GetAPIVersion() != "kustomize.toolkit.fluxcd.io/v1" {
				t.Fatalf("no kustomize.toolkit.fluxcd.io/v1 Kustomization in %v", byKind)
			}
			if p, _, _ := unstructured.NestedString(ks.Object, "spec", "path"); p != tt.wantPath {
				t.Errorf("path = %q, want %q", p, tt.wantPath)
			}
			if iv, _, _ := unstructured.NestedString(ks.Object, "spec", "interval"); iv != tt.wantIntv {
				t.Errorf("Kustomization interval = %q, want %q", iv, tt.wantIntv)
			}
			if prune, _, _ := unstructured.NestedBool(ks.Object, "spec", "prune"); !prune {
				t.Error("prune is off")
			}
			if name, _, _ := unstructured.NestedString(ks.Object, "spec", "sourceRef", "name"); name != "flux-system" {
				t.Errorf("sourceRef.name = %q", name)
			}
		})
	}
}

func TestObjectsInvalid(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no URL", Options{Path: "./clusters/staging"}},
		{"username only", Options{URL: "http://h/r.git", Username: "u"}},
		{"password only", Options{URL: "http://h/r.git", Password: "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := objects(tt.opts); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestCustomNames(t *testing.T) {
	objs, err := objects(Options{URL: "http://h/r.git", Path: "./x", Namespace: "ns", Name: "root", Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetNamespace() != "ns" || o.GetName() != "root" {
			t.Errorf("%s is %s/%s, want ns/root", o.GetKind(), o.GetNamespace(), o.GetName())
		}
		if o.GetKind() == "GitRepository" {
			if ref, _, _ := unstructured.NestedString(o.Object, "spec", "secretRef", "name"); ref != "root" {
				t.Errorf("secretRef.name = %q, want root", ref)
			}
		}
		if o.GetKind() == "Kustomization" {
			if ref, _, _ := unstructured.NestedString(o.Object, "spec", "sourceRef", "name"); ref != "root" {
				t.Errorf("sourceRef.name = %q, want root", ref)
			}
		}
	}
}

func TestAnnotationPatch(t *testing.T) {
	now := time.Date(2026, 11, 25, 23, 0, 0, 123, time.UTC)
	var p struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(annotationPatch(now), &p); err != nil {
		t.Fatal(err)
	}
	if got := p.Metadata.Annotations[meta.ReconcileRequestAnnotation]; got != "2026-11-25T23:00:00.000000123Z" {
		t.Errorf("annotation = %q", got)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestIgnoreRulesMatch runs the rules through the matcher source-controller
// uses for a non-empty spec.ignore (VCS patterns plus spec.ignore).
func TestIgnoreRulesMatch(t *testing.T) {
	domain := []string{"", "tmp", "checkout"}
	ps := append(sourceignore.VCSPatterns(domain), sourceignore.ReadPatterns(strings.NewReader(ignoreRules("./clusters/staging")), domain)...)
	m := sourceignore.NewMatcher(ps)
	tests := []struct {
		path    string
		ignored bool
	}{
		{"clusters/staging/flux-system/gotk-components.yaml", true},
		{"clusters/staging/flux-system/kustomization.yaml", true},
		{"clusters/staging/infrastructure.yaml", false},
		{"clusters/production/flux-system/gotk-sync.yaml", false},
		{"apps/staging/flux-system/kustomization.yaml", false},
		{"infrastructure/nginx/release.yaml", false},
		{".github/workflows/e2e.yaml", true},
		{"docs/diagram.png", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			parts := append(slices.Clone(domain), strings.Split(tt.path, "/")...)
			if got := m.Match(parts, false); got != tt.ignored {
				t.Errorf("ignored = %v, want %v", got, tt.ignored)
			}
		})
	}
}
