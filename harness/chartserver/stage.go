package chartserver

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/flux-fleet/flux-fleet/harness/gitserver"
)

// stageChart copies the chart in dir into a new directory under work and
// returns it, for loader.LoadDir, which follows every symbolic link and
// knows nothing of git. The copy holds what git would serve of the chart
// (.helmignore is left to Helm): inside a checkout the files
// gitserver.CheckoutFiles lists; in no checkout, or when git ignores the
// chart as a whole (an extra chart under an ignored kit directory), every
// file. A symbolic link is replaced by what it points to, which must lie
// inside the chart directory.
func stageChart(ctx context.Context, dir, work string) (string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("resolving chart directory %s: %w", dir, err)
	}
	files, inCheckout, err := gitserver.CheckoutFiles(ctx, root)
	if err != nil {
		return "", fmt.Errorf("chart %s: %w", dir, err)
	}
	st := &stager{dir: dir, root: root, active: map[string]bool{}}
	if inCheckout {
		st.served = map[string]bool{}
		for _, f := range files {
			st.served[f] = true
		}
		if !st.served["Chart.yaml"] {
			st.served = nil
		}
	}
	dst, err := os.MkdirTemp(work, "src-")
	if err != nil {
		return "", fmt.Errorf("creating packaging directory: %w", err)
	}
	if err := st.copyDir(root, "", dst); err != nil {
		return "", err
	}
	return dst, nil
}

// stager copies one chart directory.
type stager struct {
	dir    string          // the chart directory as given, for messages
	root   string          // dir with symbolic links resolved
	served map[string]bool // paths relative to root git serves; nil: all
	active map[string]bool // directories being copied, symbolic links resolved
}

// copyDir copies the directory src, at rel (slash-separated, relative to
// root) in the chart, to dst.
func (st *stager) copyDir(src, rel, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("staging chart %s: %w", st.dir, err)
	}
	st.active[src] = true
	defer delete(st.active, src)
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("reading chart %s: %w", st.dir, err)
	}
	for _, e := range entries {
		p, r, out := filepath.Join(src, e.Name()), path.Join(rel, e.Name()), filepath.Join(dst, e.Name())
		var err error
		switch {
		case e.Type()&os.ModeSymlink != 0:
			err = st.copyLink(p, r, out)
		case e.IsDir():
			err = st.copyDir(p, r, out)
		case st.served != nil && !st.served[r]:
			// Ignored by git: not served, so not packaged either.
		case e.Type().IsRegular():
			err = st.copyFile(p, out)
		default:
			err = fmt.Errorf("chart %s: %s is not a regular file, directory or link", st.dir, filepath.Join(st.dir, filepath.FromSlash(r)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// copyLink copies what the link at p (r in the chart) points to, refusing
// a target outside the chart directory: a link must not package a host
// file. A target git ignores is left out, as git would serve the link only.
func (st *stager) copyLink(p, r, out string) error {
	if st.served != nil && !st.served[r] {
		return nil // git serves a link as a link: the link is what counts
	}
	shown := filepath.Join(st.dir, filepath.FromSlash(r))
	target, err := os.Readlink(p)
	if err != nil {
		return fmt.Errorf("chart %s: reading symbolic link %s: %w", st.dir, shown, err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return fmt.Errorf("chart %s: symbolic link %s -> %s does not resolve: %w", st.dir, shown, target, err)
	}
	realRel, ok := inside(st.root, real)
	if !ok {
		return fmt.Errorf("chart %s: symbolic link %s -> %s points outside the chart directory (to %s): refused, it would package a file of the host", st.dir, shown, target, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("chart %s: symbolic link %s: %w", st.dir, shown, err)
	}
	switch {
	case fi.IsDir():
		// Copying a directory that holds one being copied would not end.
		for d := range st.active {
			if _, loops := inside(real, d); loops {
				return fmt.Errorf("chart %s: symbolic link %s -> %s leads back to a directory it is in: refused", st.dir, shown, target)
			}
		}
		return st.copyDir(real, realRel, out)
	case st.served != nil && !st.served[realRel]:
		return nil
	case fi.Mode().IsRegular():
		return st.copyFile(real, out)
	}
	return fmt.Errorf("chart %s: symbolic link %s -> %s is not to a regular file or directory", st.dir, shown, target)
}

// copyFile copies a regular file with its modification time, which Helm
// writes into the archive: an unchanged chart keeps its digest.
func (st *stager) copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("reading chart %s: %w", st.dir, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("reading chart %s: %w", st.dir, err)
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("staging chart %s: %w", st.dir, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("staging chart %s: copying %s: %w", st.dir, from, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("staging chart %s: %w", st.dir, err)
	}
	if err := os.Chtimes(to, fi.ModTime(), fi.ModTime()); err != nil {
		return fmt.Errorf("staging chart %s: %w", st.dir, err)
	}
	return nil
}

// inside reports whether p is root or below it, and p relative to root
// (slash-separated, "" for root itself).
func inside(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	switch {
	case err != nil:
		return "", false
	case rel == ".":
		return "", true
	case filepath.IsLocal(rel):
		return filepath.ToSlash(rel), true
	}
	return "", false
}
