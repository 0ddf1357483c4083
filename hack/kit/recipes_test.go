package main

import (
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestParseRecipes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		src       string
		wantFuncs map[string]string
		wantVars  map[string]string
		wantErr   string
	}{
		{
			name:      "one-line function",
			src:       "#!/bin/bash\nk8s() { echo \"v0.${V#v1.}\"; }\n",
			wantFuncs: map[string]string{"k8s": "k8s() { echo \"v0.${V#v1.}\"; }"},
		},
		{
			name:      "block with a comment on its first line and braces inside",
			src:       "# a comment\nf() { # out-dir\n  { echo a; } >&2\n  if x; then\n    y\n  fi\n}\nafter\n",
			wantFuncs: map[string]string{"f": "f() { # out-dir\n  { echo a; } >&2\n  if x; then\n    y\n  fi\n}"},
		},
		{
			name: "here-document holding a lone closing brace",
			src:  "f() {\n  cat >x <<'JSON'\n{\n  \"a\": 1\n}\nJSON\n  echo done\n}\ng() { :; }\n",
			wantFuncs: map[string]string{
				"f": "f() {\n  cat >x <<'JSON'\n{\n  \"a\": 1\n}\nJSON\n  echo done\n}",
				"g": "g() { :; }",
			},
		},
		{
			name:      "tab-stripping here-document",
			src:       "f() {\n  cat <<-EOF\n\t}\n\tEOF\n}\n",
			wantFuncs: map[string]string{"f": "f() {\n  cat <<-EOF\n\t}\n\tEOF\n}"},
		},
		{
			name:      "here-string opens no here-document",
			src:       "f() {\n  jq -r .Dir <<<\"$info\"\n}\ng() { :; }\n",
			wantFuncs: map[string]string{"f": "f() {\n  jq -r .Dir <<<\"$info\"\n}", "g": "g() { :; }"},
		},
		{
			name:      "two here-documents on one line",
			src:       "f() {\n  paste /dev/fd/3 3<<A - <<B\n}\nA\n}\nB\n}\n",
			wantFuncs: map[string]string{"f": "f() {\n  paste /dev/fd/3 3<<A - <<B\n}\nA\n}\nB\n}"},
		},
		{
			name:      "top-level assignments, continued over lines",
			src:       "REG=registry.k8s.io\nPKGS=\"a b \\\nc d\"\nf() { echo \"$REG\"; }\n  INDENTED=1\n",
			wantVars:  map[string]string{"REG": "REG=registry.k8s.io", "PKGS": "PKGS=\"a b \\\nc d\""},
			wantFuncs: map[string]string{"f": "f() { echo \"$REG\"; }"},
		},
		{name: "function never closed", src: "f() {\n  echo\n  }\n", wantErr: `recipes.sh:1: function f: no closing "}" at the start of a line`},
		{name: "here-document never closed", src: "f() {\n  cat <<EOF\n}\n", wantErr: "recipes.sh:1: function f: here-document EOF is never closed"},
		{name: "function defined twice", src: "f() { :; }\nf() { true; }\n", wantErr: "recipes.sh:2: function f is defined twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseRecipes("recipes.sh", []byte(tc.src))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantFuncs == nil {
				tc.wantFuncs = map[string]string{}
			}
			if tc.wantVars == nil {
				tc.wantVars = map[string]string{}
			}
			if !maps.Equal(r.funcs, tc.wantFuncs) {
				t.Errorf("funcs = %q\nwant    %q", r.funcs, tc.wantFuncs)
			}
			if !maps.Equal(r.vars, tc.wantVars) {
				t.Errorf("vars = %q\nwant   %q", r.vars, tc.wantVars)
			}
		})
	}
}

// readRecipes parses the kit's own recipes.sh.
func readRecipes(t *testing.T) *recipeFile {
	t.Helper()
	raw, err := os.ReadFile("recipes.sh")
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseRecipes("recipes.sh", raw)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRecipesFileAsBashSeesIt parses the real recipes.sh and checks that it
// finds exactly the functions bash defines when it sources the file, each
// function's text ending where bash ends it.
func TestRecipesFileAsBashSeesIt(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash:", err)
	}
	r := readRecipes(t)
	cmd := exec.Command(bash, "-c", `. ./recipes.sh && compgen -A function`)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no exported functions of the caller's
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sourcing recipes.sh: %v", err)
	}
	bashFuncs := strings.Fields(string(out))
	slices.Sort(bashFuncs)
	ours := slices.Sorted(maps.Keys(r.funcs))
	if !slices.Equal(ours, bashFuncs) {
		t.Fatalf("parsed functions %v\nbash defines     %v", ours, bashFuncs)
	}
	// Each text, sourced on its own, must define the function completely.
	for name, text := range r.funcs {
		if err := exec.Command(bash, "-n", "-c", text).Run(); err != nil {
			t.Errorf("the text of %s is not a complete definition: %v\n%s", name, err, text)
		}
	}
}

// A binary the kit ships built past release_build would carry DWARF the
// compiler wrote for nothing (and the old hashes of its artifact).
func TestEveryShippedBinaryGoesThroughReleaseBuild(t *testing.T) {
	r := readRecipes(t)
	for name, text := range r.funcs {
		if name != "release_build" && strings.Contains(text, "go build") {
			t.Errorf("%s runs go build itself; build shipped binaries with release_build", name)
		}
	}
	if !strings.Contains(r.funcs["release_build"], "-gcflags=all=-dwarf=false") {
		t.Errorf("release_build lost -gcflags=all=-dwarf=false:\n%s", r.funcs["release_build"])
	}
	// Its text is part of the hashes of what it builds.
	for _, recipe := range []string{"build_k8s_binaries", "build_flux_controller_image"} {
		funcs, err := r.closure([]string{recipe})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(funcs, "release_build") {
			t.Errorf("%s's hash leaves out release_build: %v", recipe, funcs)
		}
	}
}

func TestClosure(t *testing.T) {
	src := `log() { echo "$*"; }
die() { log "$*"; exit 1; }
leaf() { echo leaf; }
mid() {
  leaf
  die "x"
}
top() {
  mid | grep leafy
}
other() { leaf; }
`
	r, err := parseRecipes("recipes.sh", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		roots   []string
		want    []string
		wantErr string
	}{
		{roots: []string{"top"}, want: []string{"leaf", "mid", "top"}},
		{roots: []string{"other", "leaf"}, want: []string{"leaf", "other"}},
		{roots: []string{"die"}, want: []string{}},
		{roots: []string{"missing"}, wantErr: "recipes.sh has no function missing"},
	} {
		t.Run(strings.Join(tc.roots, ","), func(t *testing.T) {
			got, err := r.closure(tc.roots)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("closure(%v) = %v, %v; want %v", tc.roots, got, err, tc.want)
			}
		})
	}
}

func TestReferences(t *testing.T) {
	for _, tc := range []struct {
		text, name string
		want       bool
	}{
		{`echo "$KUBERNETES_VERSION"`, "KUBERNETES_VERSION", true},
		{`echo "v0.${KUBERNETES_VERSION#v1.}"`, "KUBERNETES_VERSION", true},
		{`x=$ETCD_IMAGE_TAG`, "ETCD_IMAGE_TAG", true},
		{`echo ETCD_IMAGE_TAG`, "ETCD_IMAGE_TAG", false},
		{`echo $ETCD_IMAGE_TAGS`, "ETCD_IMAGE_TAG", false},
		{`echo ${ETCD_IMAGE_TAG_OLD:-x}`, "ETCD_IMAGE_TAG", false},
		{`echo $ETCD_IMAGE_TAGS $ETCD_IMAGE_TAG`, "ETCD_IMAGE_TAG", true},
		{`echo $REG/pause`, "REG", true},
	} {
		if got := references(tc.text, tc.name); got != tc.want {
			t.Errorf("references(%q, %s) = %v, want %v", tc.text, tc.name, got, tc.want)
		}
	}
}

// TestMoveSnapshotsOut runs recipes.sh's move_snapshots_out on a store laid
// out the way an import leaves it: new snapshot directories move to
// SNAPSHOT_DIR and are reached through their old path; symlinks from an
// earlier image are left as they are; a name taken in SNAPSHOT_DIR stops it.
func TestMoveSnapshotsOut(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash:", err)
	}
	const (
		snapshots   = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
		snapshotDir = "opt/fleet-kit/containerd-snapshots"
	)
	tests := []struct {
		name      string
		dirs      []string // new snapshot directories, each with fs/marker
		links     []string // snapshots an earlier layer moved (dangling here)
		taken     []string // names already in SNAPSHOT_DIR
		wantMoved []string
		wantErr   string
	}{
		{name: "new snapshots move", dirs: []string{"1", "2"}, wantMoved: []string{"1", "2"}},
		{name: "earlier ones stay links", dirs: []string{"9"}, links: []string{"1", "2"}, wantMoved: []string{"9"}},
		{name: "name taken", dirs: []string{"3"}, taken: []string{"3"}, wantErr: snapshotDir + "/3 exists already"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(os.MkdirAll(root+"/"+snapshots, 0o700))
			must(os.MkdirAll(root+"/"+snapshotDir, 0o755))
			for _, d := range tt.dirs {
				must(os.MkdirAll(root+"/"+snapshots+"/"+d+"/fs", 0o755))
				must(os.WriteFile(root+"/"+snapshots+"/"+d+"/fs/marker", []byte(d), 0o644))
			}
			for _, l := range tt.links {
				must(os.Symlink("../../../../../"+snapshotDir+"/"+l, root+"/"+snapshots+"/"+l))
			}
			for _, n := range tt.taken {
				must(os.MkdirAll(root+"/"+snapshotDir+"/"+n, 0o755))
			}
			cmd := exec.Command(bash, "-c", `. ./recipes.sh && move_snapshots_out "$1"`, "test", root)
			out, err := cmd.CombinedOutput()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(string(out), tt.wantErr) {
					t.Fatalf("move_snapshots_out: err %v, output %q; want a failure saying %q", err, out, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("move_snapshots_out: %v\n%s", err, out)
			}
			for _, d := range tt.wantMoved {
				if fi, err := os.Lstat(root + "/" + snapshots + "/" + d); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("%s/%s: want a symlink, got %v (err %v)", snapshots, d, fi, err)
				}
				if b, err := os.ReadFile(root + "/" + snapshots + "/" + d + "/fs/marker"); err != nil || string(b) != d {
					t.Errorf("%s/%s/fs/marker through the symlink = %q, %v; want %q", snapshots, d, b, err, d)
				}
				if fi, err := os.Lstat(root + "/" + snapshotDir + "/" + d); err != nil || !fi.IsDir() {
					t.Errorf("%s/%s: want the moved directory, got %v (err %v)", snapshotDir, d, fi, err)
				}
			}
			for _, l := range tt.links {
				if target, err := os.Readlink(root + "/" + snapshots + "/" + l); err != nil || target != "../../../../../"+snapshotDir+"/"+l {
					t.Errorf("%s/%s = %q, %v; want the earlier symlink untouched", snapshots, l, target, err)
				}
			}
		})
	}
}
