package validate

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	yaml "go.yaml.in/yaml/v3"
)

// maxAliasNodes bounds the nodes a file's YAML aliases may add. kustomize
// and Flux expand aliases in full, and the build then costs seconds per
// hundred thousand nodes (a 1 KB file of nested aliases reaches billions);
// no hand-written manifest needs this many copies.
const maxAliasNodes = 100_000

// maxScannedFile: larger files are not scanned for aliases.
const maxScannedFile = 8 << 20

// unbuildableFile is a fleet file no environment is built past: one whose
// aliases expand past maxAliasNodes, or one that is not a regular file.
type unbuildableFile struct {
	file   string // relative to the fleet directory, slash separated
	reason string
}

func aliasBombReason(expanded int64) string {
	return fmt.Sprintf("expands to %d nodes through YAML aliases (more than %d added by aliases): "+
		"kustomize and Flux would expand it in full, so this environment was not built", expanded, maxAliasNodes)
}

// specialFileReason: a named pipe, socket or device. Reading a pipe blocks
// until someone writes, so the offline build would hang on one; and
// source-controller leaves anything but files and directories out of the
// artifact (fluxcd/pkg/artifact v0.18.0 storage/archive.go).
func specialFileReason(mode fs.FileMode) string {
	kind := "a special file"
	switch {
	case mode&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case mode&fs.ModeSocket != 0:
		kind = "a socket"
	case mode&fs.ModeDevice != 0:
		kind = "a device"
	}
	return "is " + kind + ", not a regular file: reading it could block the build, and source-controller " +
		"leaves it out of the artifact it serves, so this environment was not built; remove it from the fleet"
}

// findUnbuildableFiles scans every file under root that kustomize could read,
// without expanding or opening anything but regular files. Any extension
// counts (a kustomization may list resources by any name); dot-directories
// (.git, git-ignored work trees) are skipped, and symbolic links are not
// followed: their targets inside the fleet are scanned where they are, and
// the build's file system refuses those outside it. Files that are not YAML,
// or that cannot be read, are left to kustomize, whose error says more.
func findUnbuildableFiles(root string) []unbuildableFile {
	var found []unbuildableFile
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, path)
		switch {
		case err != nil:
			return nil // an unreadable directory: the build reports it if it matters
		case d.IsDir() && path != root && strings.HasPrefix(d.Name(), "."):
			return filepath.SkipDir
		case d.IsDir() || d.Type()&fs.ModeSymlink != 0:
			return nil
		case !d.Type().IsRegular():
			found = append(found, unbuildableFile{file: filepath.ToSlash(rel), reason: specialFileReason(d.Type())})
			return nil
		}
		// A bomb is small by nature; a fleet checked out beside large files
		// (test binaries, archives) is not read whole for nothing.
		if fi, err := d.Info(); err != nil || fi.Size() > maxScannedFile {
			return nil
		}
		data, err := readRegular(path)
		if err != nil {
			return nil
		}
		if n := aliasExpansion(data); n.expanded-n.written > maxAliasNodes {
			found = append(found, unbuildableFile{file: filepath.ToSlash(rel), reason: aliasBombReason(n.expanded)})
		}
		return nil
	})
	return found
}

// readRegular reads path only if it is still a regular file once open: a
// file swapped for a pipe between the walk and the read does not block.
func readRegular(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxScannedFile {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", path, maxScannedFile)
	}
	return io.ReadAll(f)
}

// nodeCount is a YAML stream's size as written and with its aliases expanded.
type nodeCount struct{ written, expanded int64 }

// aliasExpansion counts the nodes of every document of data. Counting stops
// at the first invalid document: only the aliases before it could expand.
func aliasExpansion(data []byte) nodeCount {
	var total nodeCount
	// Without both an anchor and an alias there is nothing to expand.
	if !bytes.ContainsRune(data, '&') || !bytes.ContainsRune(data, '*') {
		return total
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return total // io.EOF, or invalid YAML that kustomize will name better
		}
		c := &counter{memo: map[*yaml.Node]int64{}}
		total.expanded = satAdd(total.expanded, c.expanded(&doc))
		total.written += c.written
	}
}

// counter counts one document's nodes. An anchor always precedes its
// aliases, so a walk in document order has counted each anchored node once
// before any alias names it: the expanded size costs one pass, not the
// expansion.
type counter struct {
	memo    map[*yaml.Node]int64 // expanded size of each anchored node
	written int64
}

func (c *counter) expanded(n *yaml.Node) int64 {
	c.written++
	if n.Kind == yaml.AliasNode {
		if v, ok := c.memo[n.Alias]; ok {
			return v
		}
		return 1 // an alias inside its own anchor, which the decoders refuse
	}
	total := int64(1)
	for _, child := range n.Content {
		total = satAdd(total, c.expanded(child))
	}
	if n.Anchor != "" {
		c.memo[n] = total
	}
	return total
}

// satAdd adds two counts without overflowing: nested aliases reach 9^30.
func satAdd(a, b int64) int64 {
	if a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}
