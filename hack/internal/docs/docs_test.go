package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// The README's limits (issue #20): a front door, the detail in docs/.
const (
	maxReadmeLines    = 250
	maxTableCellRunes = 160
)

// documents are README.md and every markdown file of docs/, relative to
// the root, slash-separated.
func documents(t *testing.T, root string) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, d := range docs {
		files = append(files, "docs/"+filepath.Base(d))
	}
	return files
}

func read(t *testing.T, root, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	return string(data)
}

// outsideFences is a markdown file's lines outside fenced code blocks.
func outsideFences(text string) []string {
	var lines []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			lines = append(lines, line)
		}
	}
	return lines
}

var (
	codeSpan   = regexp.MustCompile("`[^`]*`")
	linkTarget = regexp.MustCompile(`\]\(([^)\s]+)\)`)
)

// links are the targets of a file's inline markdown links; a link inside
// code is an example, not a link.
func links(text string) []string {
	var targets []string
	for _, line := range outsideFences(text) {
		for _, m := range linkTarget.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			targets = append(targets, m[1])
		}
	}
	return targets
}

// anchors are the heading anchors GitHub gives a markdown file: lower
// case, punctuation dropped, spaces as hyphens, repeats numbered.
func anchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range outsideFences(text) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#"))) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

func TestAnchors(t *testing.T) {
	got := anchors("# Offline validation and the pre-flight\n```\n# not a heading\n```\n## Pre-flight — every HelmRelease\n### `.ci/run`: `make test`\n## Bounds\n## Bounds\n")
	want := []string{"offline-validation-and-the-pre-flight", "pre-flight--every-helmrelease", "cirun-make-test", "bounds", "bounds-1"}
	if len(got) != len(want) {
		t.Errorf("anchors = %v, want %v", got, want)
	}
	for _, a := range want {
		if !got[a] {
			t.Errorf("anchors = %v, lacks %q", got, a)
		}
	}
}

func TestLinks(t *testing.T) {
	got := links("see [a](docs/a.md) and [b](https://x.example/b)\n`[not](c.md)`\n```\n[not](d.md)\n```\n[e](e.md#top)\n")
	if want := []string{"docs/a.md", "https://x.example/b", "e.md#top"}; !slices.Equal(got, want) {
		t.Errorf("links = %q, want %q", got, want)
	}
}

// TestLinksResolve: every relative link of README.md and docs/ names a
// file of the repository, and its anchor a heading of that file.
func TestLinksResolve(t *testing.T) {
	root := testsupport.RepoRoot(t)
	for _, file := range documents(t, root) {
		for _, target := range links(read(t, root, file)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				resolved = filepath.ToSlash(filepath.Join(filepath.Dir(file), path))
				if strings.HasPrefix(resolved, "../") || filepath.IsAbs(path) {
					t.Errorf("%s: link %s leaves the repository", file, target)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(resolved))); err != nil {
					t.Errorf("%s: link %s: %s does not exist", file, target, resolved)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(resolved, ".md") && !anchors(read(t, root, resolved))[anchor] {
				t.Errorf("%s: link %s: %s has no heading with the anchor #%s", file, target, resolved, anchor)
			}
		}
	}
}

// TestReadmeIsAFrontDoor: short, and no table cell a paragraph.
func TestReadmeIsAFrontDoor(t *testing.T) {
	root := testsupport.RepoRoot(t)
	text := read(t, root, "README.md")
	if n := strings.Count(strings.TrimSuffix(text, "\n"), "\n") + 1; n > maxReadmeLines {
		t.Errorf("README.md has %d lines, want at most %d: move detail to docs/", n, maxReadmeLines)
	}
	for i, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		for _, cell := range strings.Split(strings.Trim(line, "|"), "|") {
			if n := utf8.RuneCountInString(strings.TrimSpace(cell)); n > maxTableCellRunes {
				t.Errorf("README.md:%d: a table cell of %d characters, want at most %d: %.60s…", i+1, n, maxTableCellRunes, strings.TrimSpace(cell))
			}
		}
	}
}

// TestGeneratedSectionsHaveTheirMarkers: the generators (the options table,
// make bench) rewrite what stands between these lines and refuse to run
// without them.
func TestGeneratedSectionsHaveTheirMarkers(t *testing.T) {
	root := testsupport.RepoRoot(t)
	for file, markers := range map[string][2]string{
		"README.md":       {"<!-- options:begin -->", "<!-- options:end -->"},
		"docs/timings.md": {"<!-- bench:begin -->", "<!-- bench:end -->"},
	} {
		lines := strings.Split(read(t, root, file), "\n")
		begin, end := slices.Index(lines, markers[0]), slices.Index(lines, markers[1])
		switch {
		case begin < 0 || end < 0:
			t.Errorf("%s: want the lines %s and %s", file, markers[0], markers[1])
		case end < begin:
			t.Errorf("%s: %s comes before %s", file, markers[1], markers[0])
		case slices.Index(lines[begin+1:], markers[0]) >= 0 || slices.Index(lines[end+1:], markers[1]) >= 0:
			t.Errorf("%s: a marker stands twice", file)
		}
	}
}

// harnessPackages are the directories under harness/ that hold Go code
// other than tests, slash-separated from the root.
func harnessPackages(t *testing.T, root string) []string {
	t.Helper()
	var pkgs []string
	err := filepath.WalkDir(filepath.Join(root, "harness"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !slices.Contains(pkgs, rel) {
			pkgs = append(pkgs, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(pkgs)
	return pkgs
}

var packageRow = regexp.MustCompile("^\\| `(harness/[^`]+)` \\|")

// TestDesignPackageMap: docs/design.md's package map has a row for every
// package under harness/ and none for a package that does not exist.
func TestDesignPackageMap(t *testing.T) {
	root := testsupport.RepoRoot(t)
	var mapped []string
	for _, line := range strings.Split(read(t, root, "docs/design.md"), "\n") {
		if m := packageRow.FindStringSubmatch(line); m != nil {
			mapped = append(mapped, m[1])
		}
	}
	pkgs := harnessPackages(t, root)
	for _, p := range pkgs {
		if !slices.Contains(mapped, p) {
			t.Errorf("docs/design.md: the package map lacks a row for %s", p)
		}
	}
	for _, p := range mapped {
		if !slices.Contains(pkgs, p) {
			t.Errorf("docs/design.md: the package map names %s, which is not a package", p)
		}
	}
}
