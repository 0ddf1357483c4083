package main

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// realSource parses the repository's recipes.sh and versions.env, after
// edit (which may change either).
func realSource(t *testing.T, edit func(recipes, versions string) (string, string)) *source {
	t.Helper()
	recipes, err := os.ReadFile("recipes.sh")
	if err != nil {
		t.Fatal(err)
	}
	versions, err := os.ReadFile("versions.env")
	if err != nil {
		t.Fatal(err)
	}
	rs, vs := string(recipes), string(versions)
	if edit != nil {
		rs, vs = edit(rs, vs)
	}
	r, err := parseRecipes("recipes.sh", []byte(rs))
	if err != nil {
		t.Fatal(err)
	}
	v, err := kitprofile.ParseVersions("versions.env", []byte(vs))
	if err != nil {
		t.Fatal(err)
	}
	return &source{recipes: r, versions: v, goVersion: "go1.26.8"}
}

// allHashes hashes every artifact of the stage table in build order, as a
// build does, with fixed stand-ins for what a build reads at run time.
func allHashes(t *testing.T, src *source, values map[string]string) map[string]string {
	t.Helper()
	done := map[string]string{}
	digest := func(files []string) (string, error) { return "files:" + strings.Join(files, ","), nil }
	for _, s := range stages() {
		for _, a := range s.artifacts {
			var vals []string
			for _, in := range a.inputs {
				v := values[a.name+" "+in]
				if v == "" {
					v = "value of " + in
				}
				vals = append(vals, v)
			}
			h, err := hashArtifact(src, a, done, digest, vals)
			if err != nil {
				t.Fatal(err)
			}
			done[a.name] = h
		}
	}
	return done
}

// editFunc inserts a comment as the first line of function name's body.
func editFunc(name string) func(string, string) (string, string) {
	return func(recipes, versions string) (string, string) {
		re := regexp.MustCompile(`(?m)^` + name + `\(\) \{.*$`)
		loc := re.FindStringIndex(recipes)
		if loc == nil {
			panic("no function " + name)
		}
		if strings.HasSuffix(recipes[loc[0]:loc[1]], "}") { // one-liner
			return recipes[:loc[1]-1] + ": edited; }" + recipes[loc[1]:], versions
		}
		return recipes[:loc[1]] + "\n  # edited" + recipes[loc[1]:], versions
	}
}

func setVersion(name, value string) func(string, string) (string, string) {
	return func(recipes, versions string) (string, string) {
		re := regexp.MustCompile(`(?m)^` + name + `=.*$`)
		if !re.MatchString(versions) {
			panic("no version " + name)
		}
		return recipes, re.ReplaceAllString(versions, name+"="+value)
	}
}

// TestHashSensitivity edits one thing at a time and checks which artifacts
// change hash: exactly those built by the edited recipe, directly or
// through a recipe they call, and those that come after them.
func TestHashSensitivity(t *testing.T) {
	base := allHashes(t, realSource(t, nil), nil)
	debianAndAfter := []string{"debian-base", "controlplane-images", "node-image", "nginx", "redis"}
	flux := []string{"flux-controller/source-controller", "flux-controller/kustomize-controller", "flux-controller/helm-controller"}
	for _, tc := range []struct {
		name   string
		edit   func(string, string) (string, string)
		values map[string]string
		want   []string
	}{
		{name: "build_debian_image", edit: editFunc("build_debian_image"), want: debianAndAfter},
		{name: "debian_mirror, called by build_debian_image", edit: editFunc("debian_mirror"), want: debianAndAfter},
		{name: "build_nginx_image", edit: editFunc("build_nginx_image"), want: []string{"nginx"}},
		{name: "debian_layer", edit: editFunc("debian_layer"), want: []string{"node-image", "nginx", "redis"}},
		{name: "minimal_rootfs", edit: editFunc("minimal_rootfs"),
			want: append([]string{"controlplane-images", "node-image", "nginx", "redis", "fleet-app", "podinfo"}, flux...)},
		{name: "import_dir", edit: editFunc("import_dir"),
			want: append(slices.Clone(debianAndAfter), append([]string{"fleet-app", "podinfo"}, flux...)...)},
		{name: "build_k8s_binaries", edit: editFunc("build_k8s_binaries"), want: []string{"bin/kubernetes", "controlplane-images", "node-image"}},
		{name: "k8s_staging_version", edit: editFunc("k8s_staging_version"), want: []string{"bin/kubernetes", "controlplane-images", "node-image"}},
		{name: "scratch_module", edit: editFunc("scratch_module"),
			want: []string{"bin/kubernetes", "bin/etcd", "bin/coredns", "bin/crictl", "controlplane-images", "node-image"}},
		{name: "build_crictl_binary", edit: editFunc("build_crictl_binary"), want: []string{"bin/crictl", "node-image"}},
		{name: "controlplane_images", edit: editFunc("controlplane_images"), want: []string{"controlplane-images", "node-image"}},
		{name: "build_flux_manifests", edit: editFunc("build_flux_manifests"), want: []string{"flux-manifests"}},
		{name: "store_listing", edit: editFunc("store_listing"), want: []string{"node-image-preloaded"}},
		{name: "build_podinfo_image", edit: editFunc("build_podinfo_image"), want: []string{"podinfo"}},
		{name: "die only reports", edit: editFunc("die"), want: nil},
		{name: "log only reports", edit: editFunc("log"), want: nil},
		{name: "NODE_PACKAGES", edit: func(r, v string) (string, string) {
			return strings.Replace(r, "NODE_PACKAGES=\"systemd ", "NODE_PACKAGES=\"systemd less ", 1), v
		}, want: []string{"node-image"}},
		{name: "REG", edit: func(r, v string) (string, string) {
			return strings.Replace(r, "REG=registry.k8s.io", "REG=registry.example", 1), v
		}, want: []string{"controlplane-images", "node-image"}},
		{name: "KUBERNETES_VERSION", edit: setVersion("KUBERNETES_VERSION", "v1.37.3"), want: []string{"bin/kubernetes", "controlplane-images", "node-image"}},
		{name: "ETCD_IMAGE_TAG", edit: setVersion("ETCD_IMAGE_TAG", "3.7.1-0"), want: []string{"controlplane-images", "node-image"}},
		{name: "CRI_TOOLS_VERSION", edit: setVersion("CRI_TOOLS_VERSION", "v1.37.1"), want: []string{"bin/crictl", "node-image"}},
		{name: "DEBIAN_SUITE", edit: setVersion("DEBIAN_SUITE", "trixie"), want: debianAndAfter},
		{name: "CONTROLLER_TOOLS_VERSION", edit: setVersion("CONTROLLER_TOOLS_VERSION", "v0.23.1"), want: []string{"flux-manifests"}},
		{name: "PODINFO_MODULE_VERSION", edit: setVersion("PODINFO_MODULE_VERSION", "v1.8.2"), want: []string{"podinfo"}},
		{name: "a comment between functions", edit: func(r, v string) (string, string) {
			return strings.Replace(r, "\nbuild_etcd_binary() {", "\n# a new comment\nbuild_etcd_binary() {", 1), v
		}, want: nil},
		{name: "functions reordered", edit: func(r, v string) (string, string) {
			re := regexp.MustCompile(`(?s)\n(build_etcd_binary\(\) \{.*?\n\}\n)\n(build_coredns_binary\(\) \{.*?\n\}\n)`)
			if !re.MatchString(r) {
				panic("etcd and coredns builders are not adjacent")
			}
			return re.ReplaceAllString(r, "\n$2\n$1"), v
		}, want: nil},
		{name: "one controller's version", values: map[string]string{"flux-controller/helm-controller version": "v9.9.9"},
			want: []string{"flux-controller/helm-controller"}},
		{name: "kind version", values: map[string]string{"node-image " + kindModule: "v0.99.0"}, want: []string{"node-image"}},
		{name: "a baked image's ID", values: map[string]string{"node-image-preloaded image IDs": "a=sha256:1"}, want: []string{"node-image-preloaded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := allHashes(t, realSource(t, tc.edit), tc.values)
			var changed []string
			for name, h := range got {
				if h != base[name] {
					changed = append(changed, name)
				}
			}
			slices.Sort(changed)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(changed, want) {
				t.Errorf("changed hashes: %v\nwant:           %v", changed, want)
			}
		})
	}
}

func TestHashStable(t *testing.T) {
	a := allHashes(t, realSource(t, nil), nil)
	b := allHashes(t, realSource(t, nil), nil)
	if !maps.Equal(a, b) {
		t.Fatalf("two hashings of the same sources differ:\n%v\n%v", a, b)
	}
	seen := map[string]string{}
	for name, h := range a {
		if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(h) {
			t.Errorf("%s: hash %q is not 12 hex digits", name, h)
		}
		if other, dup := seen[h]; dup {
			t.Errorf("%s and %s share the hash %s", name, other, h)
		}
		seen[h] = name
	}

	// A fixed source hashes to a fixed value: a change of the hash format
	// rebuilds every kit, so it must be deliberate (update the value then).
	r, err := parseRecipes("recipes.sh", []byte("b() { echo \"$V\"; }\n"))
	if err != nil {
		t.Fatal(err)
	}
	src := &source{recipes: r, versions: []version{{Name: "V", Value: "1"}, {Name: "W", Value: "2"}}, goVersion: "go1.26.8"}
	h, err := src.hash("x", []string{"b"}, []input{{"after", "0123"}})
	if err != nil {
		t.Fatal(err)
	}
	const golden = "76ef8e12e382" // sha256("artifact x\nfunc b\nb() { echo \"$V\"; }\nversion V=1\ngo go1.26.8\ninput after=0123\n")[:12]
	if h != golden {
		t.Errorf("hash = %s, want %s", h, golden)
	}
}

func TestHashedSelection(t *testing.T) {
	src := `REG=registry.k8s.io
UNUSED=x
top() { echo "$REG/${K#v1.}" "$K2"; helper; }
helper() { echo "$E" L; }
`
	r, err := parseRecipes("recipes.sh", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s := &source{recipes: r, versions: []version{{Name: "K", Value: "v1.37.2"}, {Name: "K2", Value: "b"}, {Name: "E", Value: "c"}, {Name: "L", Value: "d"}, {Name: "KX", Value: "e"}}}
	got, err := s.hashed([]string{"top"})
	if err != nil {
		t.Fatal(err)
	}
	want := hashed{funcs: []string{"helper", "top"}, vars: []string{"REG"}, versions: []version{{Name: "K", Value: "v1.37.2"}, {Name: "K2", Value: "b"}, {Name: "E", Value: "c"}}}
	if !slices.Equal(got.funcs, want.funcs) || !slices.Equal(got.vars, want.vars) || !slices.Equal(got.versions, want.versions) {
		t.Errorf("hashed = %+v\nwant     %+v", got, want)
	}
}

func TestHashArtifactInputs(t *testing.T) {
	src := realSource(t, nil)
	a := artifact{name: "node-image", recipes: []string{"build_node_image"}, after: []string{"debian-base"}, inputs: []string{kindModule}}
	digest := func([]string) (string, error) { return "", nil }
	if _, err := hashArtifact(src, a, map[string]string{}, digest, []string{"v0.33.0"}); err == nil ||
		err.Error() != "hashing node-image: debian-base is not hashed yet (stage order)" {
		t.Errorf("missing predecessor: err = %v", err)
	}
	if _, err := hashArtifact(src, a, map[string]string{"debian-base": "x"}, digest, nil); err == nil ||
		!strings.Contains(err.Error(), "hashing node-image: 0 input values for the inputs [sigs.k8s.io/kind]") {
		t.Errorf("missing input value: err = %v", err)
	}
}

func TestHashFiles(t *testing.T) {
	root := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("pause/main.go", "package main\n")
	write("go.mod", "module x\n")
	h := func(paths ...string) string {
		t.Helper()
		d, err := hashFiles(root, paths)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := h("pause", "go.mod")
	if h("go.mod", "pause") != base {
		t.Error("the order of the paths changes the digest")
	}
	write("pause/main.go", "package main // edited\n")
	edited := h("pause", "go.mod")
	if edited == base {
		t.Error("editing a file leaves the digest unchanged")
	}
	if err := os.Rename(filepath.Join(root, "pause/main.go"), filepath.Join(root, "pause/pause.go")); err != nil {
		t.Fatal(err)
	}
	renamed := h("pause", "go.mod")
	if renamed == edited {
		t.Error("renaming a file leaves the digest unchanged")
	}
	write("pause/extra.go", "package main\n")
	if h("pause", "go.mod") == renamed {
		t.Error("a new file leaves the digest unchanged")
	}
	if _, err := hashFiles(root, []string{"nope"}); err == nil || !strings.Contains(err.Error(), "hashing project files: lstat "+filepath.Join(root, "nope")) {
		t.Errorf("missing path: err = %v", err)
	}
}
