package chartrepo

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
)

// A Set travels as a flat tar: IndexFile, EntriesFile (every entry but its
// archive, as JSON) and each archive under its file name.
const (
	IndexFile   = "index.yaml"
	EntriesFile = "charts.json"
)

// Limits bound what ReadTar accepts.
type Limits struct {
	FileBytes int64 // any one file of the tar
	Charts    int   // archives
}

// WriteTar writes s as ReadTar reads it.
func (s Set) WriteTar(w io.Writer) error {
	entries, err := json.Marshal(s.Entries)
	if err != nil {
		return fmt.Errorf("encoding the chart entries: %w", err)
	}
	tw := tar.NewWriter(w)
	files := []struct {
		name    string
		content []byte
	}{{IndexFile, s.Index}, {EntriesFile, entries}}
	for _, e := range s.Entries {
		files = append(files, struct {
			name    string
			content []byte
		}{e.File, e.Archive})
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.content)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("adding %s to the tar: %w", f.name, err)
		}
		if _, err := tw.Write(f.content); err != nil {
			return fmt.Errorf("adding %s to the tar: %w", f.name, err)
		}
	}
	return tw.Close()
}

// ReadTar reads a Set from the tar in r; Repository.Replace checks the
// rest (Set.Check). Only regular files directly at the top of the tar are accepted, within
// limits: a name with a directory, a ".." or an absolute path is refused,
// never resolved; every archive must belong to one entry and every entry
// have its archive.
func ReadTar(r io.Reader, limits Limits) (Set, error) {
	files, err := readFlatTar(r, limits)
	if err != nil {
		return Set{}, err
	}
	var set Set
	raw, ok := files[EntriesFile]
	if !ok {
		return Set{}, fmt.Errorf("the tar has no %s", EntriesFile)
	}
	if err := json.Unmarshal(raw, &set.Entries); err != nil {
		return Set{}, fmt.Errorf("%s: %w", EntriesFile, err)
	}
	if set.Index, ok = files[IndexFile]; !ok {
		return Set{}, fmt.Errorf("the tar has no %s", IndexFile)
	}
	delete(files, IndexFile)
	delete(files, EntriesFile)
	if len(set.Entries) > limits.Charts {
		return Set{}, fmt.Errorf("more than %d charts", limits.Charts)
	}
	for i := range set.Entries {
		e := &set.Entries[i]
		if e.Archive, ok = files[e.File]; !ok {
			return Set{}, fmt.Errorf("chart %s %s: its archive %q is not in the tar", e.Name, e.Version, e.File)
		}
		delete(files, e.File)
	}
	for name := range files {
		return Set{}, fmt.Errorf("entry %q is no chart's archive", name)
	}
	return set, nil
}

// readFlatTar reads the regular files at the top of the tar, by name.
func readFlatTar(r io.Reader, limits Limits) (map[string][]byte, error) {
	tr := tar.NewReader(r)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the tar of charts: %w", err)
		}
		_, seen := files[h.Name]
		switch {
		case h.Typeflag == tar.TypeXGlobalHeader:
			continue
		case h.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("entry %q is not a regular file", h.Name)
		case h.Name != path.Base(h.Name) || !filepath.IsLocal(h.Name) || strings.ContainsAny(h.Name, `/\`):
			return nil, fmt.Errorf("entry %q is not a plain file name: paths are refused", h.Name)
		case h.Name != IndexFile && h.Name != EntriesFile && !strings.HasSuffix(h.Name, ".tgz"):
			return nil, fmt.Errorf("entry %q is not a chart archive (.tgz), %s or %s", h.Name, IndexFile, EntriesFile)
		case seen:
			return nil, fmt.Errorf("entry %q appears twice", h.Name)
		case h.Size > limits.FileBytes:
			return nil, fmt.Errorf("entry %q has %d bytes: a file may have %d", h.Name, h.Size, limits.FileBytes)
		case len(files) == limits.Charts+2:
			return nil, fmt.Errorf("more than %d chart archives", limits.Charts)
		}
		b, err := io.ReadAll(io.LimitReader(tr, limits.FileBytes))
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", h.Name, err)
		}
		files[h.Name] = b
	}
}
