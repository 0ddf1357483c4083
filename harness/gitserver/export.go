package gitserver

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ExportRevision writes the tree of dir (a directory inside a git checkout)
// at revision rev into dst, which must not exist yet, and returns the
// commit rev resolves to. The offline checks and the pre-flight read this
// copy, so that they judge exactly what the git server serves for rev —
// not the working tree with its uncommitted edits.
//
// A symbolic link in the tree is refused when it points outside dst: the
// checks must never read host files through a committed link.
func ExportRevision(ctx context.Context, dir, rev, dst string) (string, error) {
	abs, commit, tree, err := resolveInCheckout(ctx, dir, rev)
	if err != nil {
		return "", err
	}
	out, err := runGit(ctx, abs, nil, "archive", "--format=tar", tree)
	if err != nil {
		return "", fmt.Errorf("reading the tree of %s at %s: %w", abs, rev, err)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return "", fmt.Errorf("exporting %s at %s: %w", abs, rev, err)
	}
	if err := untar(bytes.NewReader([]byte(out)), dst); err != nil {
		return "", fmt.Errorf("exporting %s at %s (commit %s) into %s: %w", abs, rev, commit, dst, err)
	}
	return commit, nil
}

// untar extracts regular files, directories and links that stay inside dst.
func untar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("%s: path leaves the tree", h.Name)
		}
		target := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return err
			}
			if err := writeFile(target, tr); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			dest := h.Linkname
			if !filepath.IsAbs(dest) {
				dest = filepath.Join(filepath.Dir(target), dest)
			}
			if rel, err := filepath.Rel(dst, dest); err != nil || !filepath.IsLocal(rel) {
				return fmt.Errorf("symbolic link %s -> %s points outside the fleet directory: refused", h.Name, h.Linkname)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader:
			// git archive's commit id comment
		default:
			return fmt.Errorf("%s: unexpected entry type %q in the tree", h.Name, h.Typeflag)
		}
	}
}
