package chartrepo

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Set is what a Repository serves: the Helm repository index and the
// charts, each with its OCI artifact.
type Set struct {
	// Index is index.yaml, its urls relative to the repository root
	// ("charts/<File>").
	Index   []byte
	Entries []Entry
}

// Entry is one chart of a Set.
type Entry struct {
	Chart
	// File is the archive's file name, "<name>-<version>.tgz", served at
	// charts/<File>.
	File    string
	Archive []byte `json:"-"` // sent beside the entry, as its own file
	// Tag is the OCI tag of the chart in the repository charts/<Name>;
	// Manifest (an OCI image manifest) and Config are its artifact, whose
	// one layer is Archive.
	Tag              string
	Manifest, Config []byte
	// Source names where the chart came from in messages; it is not sent.
	Source string `json:"-"`
}

// pushHost names the in-process registry in the references Replace pushes
// to; the in-process transport never resolves it.
const pushHost = "chart-server.in-process"

// RepositoryPrefix is the path under which charts are served by OCI:
// oci://<host>/charts/<name>.
const RepositoryPrefix = "charts/"

func reference(chartName, tag string) (name.Tag, error) {
	return name.NewTag(pushHost+"/"+RepositoryPrefix+chartName+":"+tag, name.Insecure, name.StrictValidation)
}

// Charts lists the set's charts in its order.
func (s Set) Charts() []Chart {
	out := make([]Chart, len(s.Entries))
	for i, e := range s.Entries {
		out[i] = e.Chart
	}
	return out
}

// sorted is s with its entries sorted by name and version.
func (s Set) sorted() Set {
	s.Entries = slices.Clone(s.Entries)
	slices.SortStableFunc(s.Entries, func(a, b Entry) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version))
	})
	return s
}

// Check reports the first reason s cannot be served: an index missing, an
// entry whose archive, manifest and config do not agree, or two entries
// with one file name, one name and version, or one name and tag.
func (s Set) Check() error {
	if len(s.Index) == 0 {
		return fmt.Errorf("chart set: no index.yaml")
	}
	files, versions, tags := map[string]string{}, map[string]string{}, map[string]string{}
	for _, e := range s.Entries {
		if err := e.check(); err != nil {
			return err
		}
		for _, u := range []struct {
			seen      map[string]string
			key, what string
		}{
			// One name and version first: it is what a user meant twice.
			{versions, e.Name + "\x00" + e.Version, "are both " + e.Name + " version " + e.Version},
			{tags, e.Name + "\x00" + e.Tag, "have one tag " + e.Tag},
			{files, e.File, "have one file name"},
		} {
			if other, ok := u.seen[u.key]; ok {
				return fmt.Errorf("charts %s and %s %s: one archive and one tag cannot serve both", other, e.source(), u.what)
			}
			u.seen[u.key] = e.source()
		}
	}
	return nil
}

// check reports whether the entry's archive, digest, manifest and config
// agree, and its file name and tag are plain.
func (e Entry) check() error {
	wrap := func(format string, a ...any) error {
		return fmt.Errorf("chart %s: %s", e.source(), fmt.Sprintf(format, a...))
	}
	switch {
	case e.Name == "" || e.Version == "":
		return wrap("no name or version")
	case e.File != path.Base(e.File) || !filepath.IsLocal(e.File) || strings.ContainsAny(e.File, `/\`) || !strings.HasSuffix(e.File, ".tgz"):
		return wrap("file name %q is not a plain chart archive name (.tgz)", e.File)
	case e.Digest != digestOf(e.Archive):
		return wrap("digest %s is not the archive's (%s)", e.Digest, digestOf(e.Archive))
	}
	if _, err := reference(e.Name, e.Tag); err != nil {
		return wrap("name %q and tag %q cannot form an OCI reference: %v", e.Name, e.Tag, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(e.Manifest))
	if err != nil {
		return wrap("manifest: %v", err)
	}
	switch {
	case m.MediaType == "":
		return wrap("the manifest names no media type")
	case len(m.Layers) != 1 || m.Layers[0].Digest.String() != e.Digest || m.Layers[0].Size != int64(len(e.Archive)):
		return wrap("the manifest's one layer must be the archive (%s, %d bytes)", e.Digest, len(e.Archive))
	case m.Config.Digest.String() != digestOf(e.Config) || m.Config.Size != int64(len(e.Config)):
		return wrap("the manifest's config is not the config sent")
	}
	return nil
}

func (e Entry) source() string { return cmp.Or(e.Source, e.File) }

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pushOCI tags the chart in the registry; an existing tag is moved, so an
// edited chart at an unchanged version is what the next pull gets.
func (r *Repository) pushOCI(ctx context.Context, e *Entry) error {
	ref, err := reference(e.Name, e.Tag)
	if err != nil {
		return fmt.Errorf("chart %s: %w", e.source(), err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(e.Manifest))
	if err != nil {
		return fmt.Errorf("chart %s: manifest: %w", e.source(), err)
	}
	img, err := partial.CompressedToImage(&artifact{e: e, layer: static.NewLayer(e.Archive, m.Layers[0].MediaType), mediaType: m.MediaType})
	if err != nil {
		return fmt.Errorf("chart %s: %w", e.source(), err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(r.push)); err != nil {
		return fmt.Errorf("pushing chart %s to the registry as %s: %w", e.source(), ref.String(), err)
	}
	return nil
}

// artifact is an entry as the registry stores it: its manifest and config
// as sent, the archive its only layer.
type artifact struct {
	e         *Entry
	layer     v1.Layer
	mediaType types.MediaType
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.e.Config, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.e.Manifest, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return a.mediaType, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, err := a.layer.Digest(); err != nil || d != h {
		return nil, fmt.Errorf("chart artifact has no layer %s", h)
	}
	return a.layer, nil
}
