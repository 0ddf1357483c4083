package kitprofile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// VersionsFile is where the kit pins the versions it builds, relative to
// the repository root: the kit hashes and builds from it, the pre-flight
// renders charts for its KUBERNETES_VERSION.
const VersionsFile = "hack/kit/versions.env"

// Version is one assignment of the versions file.
type Version struct{ Name, Value string }

var (
	versionName  = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	versionValue = regexp.MustCompile(`^[A-Za-z0-9._+:@/-]*$`)
)

// ParseVersions reads a versions file: comments, blank lines and NAME=value
// lines whose value is one plain word (the kit's shell recipes and Go must
// read the same thing), in file order. path names the file in errors.
func ParseVersions(path string, src []byte) ([]Version, error) {
	var out []Version
	err := scanAssignments(path, src, func(_ int, name, value string) error {
		switch {
		case !versionName.MatchString(name):
			return fmt.Errorf("%q is not an upper-case NAME", name)
		case !versionValue.MatchString(value):
			return fmt.Errorf("%s: value %q is not one plain word (no quotes, blanks or $)", name, value)
		}
		out = append(out, Version{name, value})
		return nil
	})
	return out, err
}

// scanAssignments calls each for every NAME=value line of a file of
// assignments (profile.env, versions.env) in order, with its line number,
// skipping blank lines and comments; a line that is no assignment, a name
// set twice, or an error of each is reported with the file and line.
func scanAssignments(path string, src []byte, each func(line int, name, value string) error) error {
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		switch {
		case !ok:
			return fmt.Errorf("%s:%d: %q is not NAME=value", path, n, line)
		case seen[name]:
			return fmt.Errorf("%s:%d: %s is set twice", path, n, name)
		}
		seen[name] = true
		if err := each(n, name, value); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// ReadVersions reads the versions file of the repository at root.
func ReadVersions(root string) ([]Version, error) {
	p := filepath.Join(root, filepath.FromSlash(VersionsFile))
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the kit's versions: %w", err)
	}
	return ParseVersions(p, raw)
}

// LookupVersion returns the value of a version, or an error naming it.
func LookupVersion(versions []Version, name string) (string, error) {
	for _, v := range versions {
		if v.Name == name {
			return v.Value, nil
		}
	}
	return "", fmt.Errorf("%s sets no %s", filepath.Base(VersionsFile), name)
}
