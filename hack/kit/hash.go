package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// hashLen is how many hex digits of a sha256 name an artifact (image label,
// tag suffix, directory suffix).
const hashLen = 12

// source is what every artifact's hash reads besides its own inputs:
// recipes.sh, versions.env and the Go toolchain.
type source struct {
	recipes   *recipeFile
	versions  []version
	goVersion string
}

// input is one hashed input besides the recipes' text: a previous
// artifact's hash, an image ID, a module version, a digest of project files.
type input struct{ name, value string }

// hashed is what an artifact's hash reads from recipes.sh and versions.env.
type hashed struct {
	funcs    []string  // the recipe functions and every function they call, by name
	vars     []string  // the recipes.sh top-level assignments their text names, by name
	versions []version // the versions.env assignments their text names, in file order
}

// hashed selects what the hash of an artifact built by recipes reads: the
// functions they call, directly or through others (log and die aside), and
// the variables that this text expands ($NAME or ${NAME...}).
func (s *source) hashed(recipes []string) (hashed, error) {
	var h hashed
	var err error
	if h.funcs, err = s.recipes.closure(recipes); err != nil {
		return h, err
	}
	var text strings.Builder
	for _, name := range h.funcs {
		text.WriteString(s.recipes.funcs[name])
		text.WriteByte('\n')
	}
	for name := range s.recipes.vars {
		if references(text.String(), name) {
			h.vars = append(h.vars, name)
		}
	}
	slices.Sort(h.vars)
	for _, name := range h.vars {
		text.WriteString(s.recipes.vars[name])
		text.WriteByte('\n')
	}
	for _, v := range s.versions {
		if references(text.String(), v.Name) {
			h.versions = append(h.versions, v)
		}
	}
	return h, nil
}

// hash returns the hash of an artifact: sha256 over, in this order, the
// artifact's name, what hashed selects (each function's text as written in
// recipes.sh, each assignment), the Go version and the inputs in the order
// given. Functions are taken by name, so moving one within the file changes
// nothing, and editing one changes the hashes of exactly the artifacts that
// use it.
func (s *source) hash(artifact string, recipes []string, inputs []input) (string, error) {
	sel, err := s.hashed(recipes)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", artifact, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "artifact %s\n", artifact)
	for _, name := range sel.funcs {
		fmt.Fprintf(h, "func %s\n%s\n", name, s.recipes.funcs[name])
	}
	for _, name := range sel.vars {
		fmt.Fprintf(h, "var %s\n", s.recipes.vars[name])
	}
	for _, v := range sel.versions {
		fmt.Fprintf(h, "version %s=%s\n", v.Name, v.Value)
	}
	fmt.Fprintf(h, "go %s\n", s.goVersion)
	for _, in := range inputs {
		fmt.Fprintf(h, "input %s=%s\n", in.name, in.value)
	}
	return hex.EncodeToString(h.Sum(nil))[:hashLen], nil
}

// hashFiles digests the regular files under paths (files or directories,
// relative to root): their relative names and contents, in name order, so
// that an edit, a rename or a new file changes it.
func hashFiles(root string, paths []string) (string, error) {
	var files []string
	for _, p := range paths {
		err := filepath.WalkDir(filepath.Join(root, p), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				rel, err := filepath.Rel(root, path)
				if err != nil {
					return err
				}
				files = append(files, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hashing project files: %w", err)
		}
	}
	slices.Sort(files)
	files = slices.Compact(files)
	h := sha256.New()
	for _, rel := range files {
		sum, err := fileSum(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return "", fmt.Errorf("hashing project files: %w", err)
		}
		fmt.Fprintf(h, "%s  %s\n", sum, rel)
	}
	return hex.EncodeToString(h.Sum(nil))[:hashLen], nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// kitHash is the kit's content hash: sha256 over every artifact's name and
// hash, in name order. Any input of any artifact changes it, so it keys a
// cache of the kit directory and images.
func kitHash(hashes map[string]string) string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(hashes)) {
		fmt.Fprintf(h, "%s %s\n", name, hashes[name])
	}
	return hex.EncodeToString(h.Sum(nil))[:hashLen]
}
