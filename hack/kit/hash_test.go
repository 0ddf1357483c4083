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
// build does, with fixed stand-ins for what a build reads at run time:
// values["<artifact> <input>"] and values["<artifact> files"] replace the
// stand-in of that input or of that artifact's file digest.
func allHashes(t *testing.T, src *source, values map[string]string) map[string]string {
	t.Helper()
	done := map[string]string{}
	for _, s := range stages() {
		for _, a := range s.artifacts {
			digest := func(files []string) (string, error) {
				if v := values[a.name+" files"]; v != "" {
					return v, nil
				}
				return "files:" + strings.Join(files, ","), nil
			}
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

// changed lists the artifacts whose hashes differ from base, sorted.
func changed(base, got map[string]string) []string {
	var names []string
	for name, h := range got {
		if h != base[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// withDependents returns names and every artifact that comes after one of
// them, directly or through others, sorted: what a change to names must
// rebuild.
func withDependents(names []string) []string {
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	for grew := true; grew; {
		grew = false
		for _, s := range stages() {
			for _, a := range s.artifacts {
				if !set[a.name] && slices.ContainsFunc(a.after, func(n string) bool { return set[n] }) {
					set[a.name] = true
					grew = true
				}
			}
		}
	}
	out := slices.Sorted(maps.Keys(set))
	if out == nil {
		out = []string{}
	}
	return out
}

// selecting returns the artifacts whose hashed selection (source.hashed,
// tested on its own in TestHashedSelection and TestClosure) satisfies has.
func selecting(t *testing.T, src *source, has func(hashed) bool) []string {
	t.Helper()
	var names []string
	for _, s := range stages() {
		for _, a := range s.artifacts {
			sel, err := src.hashed(a.recipes)
			if err != nil {
				t.Fatal(err)
			}
			if has(sel) {
				names = append(names, a.name)
			}
		}
	}
	return names
}

func equalSets(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// TestStageGraph checks the stage table as a graph: artifact names are
// unique, every artifact an artifact comes after exists and is hashed
// before it (so the graph has no cycles and a build never hashes an
// artifact before its predecessors), every recipe it names is a function
// of recipes.sh, and every project path it digests exists; the base Flux's
// stages, which follow the kit's, included.
func TestStageGraph(t *testing.T) {
	src := realSource(t, nil)
	position := map[string]int{}
	var order []artifact
	for _, s := range append(stages(), fluxBaseStages()...) {
		for _, a := range s.artifacts {
			if _, dup := position[a.name]; dup {
				t.Errorf("artifact %s is defined twice", a.name)
			}
			position[a.name] = len(order)
			order = append(order, a)
		}
	}
	for i, a := range order {
		for _, dep := range a.after {
			p, ok := position[dep]
			switch {
			case !ok:
				t.Errorf("%s comes after %s, which no stage builds", a.name, dep)
			case p >= i:
				t.Errorf("%s comes after %s, which is hashed no earlier than it", a.name, dep)
			}
		}
		if len(a.recipes) == 0 {
			t.Errorf("%s names no recipe: editing recipes.sh could never rebuild it", a.name)
		}
		for _, fn := range a.recipes {
			if _, ok := src.recipes.funcs[fn]; !ok {
				t.Errorf("%s names the recipe %s, which recipes.sh does not define", a.name, fn)
			}
		}
		for _, f := range a.files {
			if _, err := os.Stat(filepath.Join("..", "..", filepath.FromSlash(f))); err != nil {
				t.Errorf("%s digests %s: %v", a.name, f, err)
			}
		}
	}
}

// TestHashFollowsRecipes edits each function of recipes.sh in turn: the
// hashes that change are exactly those of the artifacts whose recipes
// call it, directly or through other functions, and of every artifact
// that comes after one of them. Every function but those that only report
// rebuilds something, so no edit of recipes.sh that matters goes unnoticed.
func TestHashFollowsRecipes(t *testing.T) {
	base := allHashes(t, realSource(t, nil), nil)
	for _, fn := range slices.Sorted(maps.Keys(realSource(t, nil).recipes.funcs)) {
		t.Run(fn, func(t *testing.T) {
			src := realSource(t, nil)
			users := selecting(t, src, func(h hashed) bool { return slices.Contains(h.funcs, fn) })
			src.recipes.funcs[fn] += "\n# edited"
			got := changed(base, allHashes(t, src, nil))
			if want := withDependents(users); !equalSets(got, want) {
				t.Errorf("changed hashes: %v\nwant:           %v", got, want)
			}
			if len(got) == 0 && !reportsOnly(fn) {
				t.Errorf("editing %s rebuilds nothing", fn)
			}
			if len(got) > 0 && reportsOnly(fn) {
				t.Errorf("editing %s, which only reports, rebuilds %v", fn, got)
			}
		})
	}
}

// TestHashFollowsVariables changes each versions.env value and each
// recipes.sh assignment in turn: exactly the artifacts whose recipes
// expand it change hash, with every artifact that comes after one of
// them, and each of them rebuilds something.
func TestHashFollowsVariables(t *testing.T) {
	base := allHashes(t, realSource(t, nil), nil)
	for i, v := range realSource(t, nil).versions {
		t.Run(v.Name, func(t *testing.T) {
			src := realSource(t, nil)
			users := selecting(t, src, func(h hashed) bool {
				return slices.ContainsFunc(h.versions, func(u version) bool { return u.Name == v.Name })
			})
			src.versions[i].Value += "-edited"
			got := changed(base, allHashes(t, src, nil))
			if want := withDependents(users); !equalSets(got, want) || len(got) == 0 {
				t.Errorf("changed hashes: %v\nwant:           %v (and not none)", got, want)
			}
		})
	}
	for _, name := range slices.Sorted(maps.Keys(realSource(t, nil).recipes.vars)) {
		t.Run(name, func(t *testing.T) {
			src := realSource(t, nil)
			users := selecting(t, src, func(h hashed) bool { return slices.Contains(h.vars, name) })
			src.recipes.vars[name] += " # edited"
			got := changed(base, allHashes(t, src, nil))
			if want := withDependents(users); !equalSets(got, want) || len(got) == 0 {
				t.Errorf("changed hashes: %v\nwant:           %v (and not none)", got, want)
			}
		})
	}
}

// TestHashFollowsInputs changes each value a stage supplies at run time
// (a module version, image IDs) and each artifact's digest of project
// files: that artifact changes hash, with every artifact that comes after
// it, and no other.
func TestHashFollowsInputs(t *testing.T) {
	src := realSource(t, nil)
	base := allHashes(t, src, nil)
	for _, s := range stages() {
		for _, a := range s.artifacts {
			keys := []string{}
			for _, in := range a.inputs {
				keys = append(keys, a.name+" "+in)
			}
			if len(a.files) > 0 {
				keys = append(keys, a.name+" files")
			}
			for _, key := range keys {
				t.Run(key, func(t *testing.T) {
					got := changed(base, allHashes(t, src, map[string]string{key: "changed"}))
					if want := withDependents([]string{a.name}); !equalSets(got, want) {
						t.Errorf("changed hashes: %v\nwant:           %v", got, want)
					}
				})
			}
		}
	}
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

// TestHashIgnores edits recipes.sh in ways that change no artifact: the
// messages of the functions that only report (editing a message must not
// rebuild the kit), a comment between functions, and the order of the
// functions (they are hashed by name).
func TestHashIgnores(t *testing.T) {
	base := allHashes(t, realSource(t, nil), nil)
	for _, tc := range []struct {
		name string
		edit func(string, string) (string, string)
	}{
		{"die", editFunc("die")},
		{"log", editFunc("log")},
		{"on_error", editFunc("on_error")},
		{"a comment between functions", func(r, v string) (string, string) {
			return strings.Replace(r, "\nbuild_etcd_binary() {", "\n# a new comment\nbuild_etcd_binary() {", 1), v
		}},
		{"functions reordered", func(r, v string) (string, string) {
			re := regexp.MustCompile(`(?s)\n(build_crictl_binary\(\) \{.*?\n\}\n)\n(build_pause_binary\(\) \{.*?\n\}\n)`)
			if !re.MatchString(r) {
				panic("crictl and pause builders are not adjacent")
			}
			return re.ReplaceAllString(r, "\n$2\n$1"), v
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited, _ := tc.edit(mustRead(t, "recipes.sh"), "")
			if edited == mustRead(t, "recipes.sh") {
				t.Fatal("the edit changed nothing: recipes.sh no longer has what it edits")
			}
			if got := changed(base, allHashes(t, realSource(t, tc.edit), nil)); len(got) > 0 {
				t.Errorf("changed hashes: %v, want none", got)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
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
