package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
)

// collectErrorsFile lists the logs kind could not gather.
const collectErrorsFile = "collect-errors.txt"

// ExportLogs writes kind's node logs (journal, containerd, kubelet, pods)
// into dir as kind wrote them, for a caller that redacts dir itself; see
// ExportRedactedLogs, which it is with no redaction.
func (c *Cluster) ExportLogs(ctx context.Context, dir string) error {
	return c.ExportRedactedLogs(ctx, dir, nil)
}

// ExportRedactedLogs writes kind's node logs (journal, containerd, kubelet,
// pods) into dir, a directory that does not exist yet or is empty, after
// redact (nil: none) has made them fit to upload. kind writes into a
// private temporary directory; only once its call has returned and redact
// has succeeded does the result move to dir, so nothing unredacted ever
// appears there, even when ctx ends and kind goes on writing. Logs that
// could not be gathered are listed in dir/collect-errors.txt rather than
// failing the whole export.
func (c *Cluster) ExportRedactedLogs(ctx context.Context, dir string, redact func(dir string) error) error {
	if c.existing {
		return c.errExisting("collecting node logs")
	}
	c.init()
	what := "collecting logs of cluster " + c.Name
	tmp, err := collectPrivately(ctx, what, func(tmp string) error { return c.provider.CollectLogs(c.Name, tmp) })
	if tmp == "" {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once moved
	err = c.keepPartial(err, tmp, dir)
	if err != nil {
		err = fmt.Errorf("%s: %w", what, err)
	}
	// Whatever kind wrote, even after an error, may carry the nodes'
	// environment: it is redacted before it moves, or not kept at all.
	if redact != nil {
		if rerr := redact(tmp); rerr != nil {
			return errors.Join(err, fmt.Errorf("%s: redacting them (none kept): %w", what, rerr))
		}
	}
	if merr := moveDir(tmp, dir); merr != nil {
		return errors.Join(err, fmt.Errorf("%s: moving them to %s: %w", what, dir, merr))
	}
	return err
}

// collectPrivately runs collect on a new private (0700) temporary directory
// and, once collect has returned, returns that directory with collect's
// error. When ctx ends first it returns "" and an error at once: kind's
// calls take no context, so collect runs on and its directory is removed
// when it returns, never read.
func collectPrivately(ctx context.Context, what string, collect func(dir string) error) (string, error) {
	if ctx.Err() != nil {
		return "", fmt.Errorf("%s: not started: %w", what, context.Cause(ctx))
	}
	tmp, err := os.MkdirTemp("", "kind-logs-")
	if err != nil {
		return "", fmt.Errorf("%s: creating a private directory for kind: %w", what, err)
	}
	done := make(chan error, 1)
	go func() { done <- collect(tmp) }()
	select {
	case err := <-done:
		return tmp, err
	case <-ctx.Done():
		go func() {
			<-done
			_ = os.RemoveAll(tmp)
		}()
		return "", fmt.Errorf("%s: interrupted (kind finishes in the background; what it writes is discarded): %w", what, context.Cause(ctx))
	}
}

// keepPartial turns kind's error into a note in tmp when the nodes' logs
// are there: kind gathers each log with its own command and reports every
// one that failed (a node image without crictl, say); the rest are still
// worth having, so only a collection that produced no node logs is an
// error. dir is where the note ends up.
func (c *Cluster) keepPartial(err error, tmp, dir string) error {
	if err == nil {
		return nil
	}
	if _, statErr := os.Stat(filepath.Join(tmp, c.Name+"-control-plane")); statErr != nil {
		return err
	}
	if werr := os.WriteFile(filepath.Join(tmp, collectErrorsFile), []byte(err.Error()+"\n"), privatefile.FileMode); werr != nil {
		return fmt.Errorf("%w; noting that: %w", err, werr)
	}
	c.log.printf("cluster %s: some logs could not be collected (see %s): %v", c.Name, filepath.Join(dir, collectErrorsFile), err)
	return nil
}

// moveDir puts the directory src at dst, creating dst's parents 0700: a
// rename, or a copy where the two are on different filesystems (the
// temporary directory often is).
func moveDir(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), privatefile.DirMode); err != nil {
		return fmt.Errorf("creating its parent directory: %w", err)
	}
	// os.Rename refuses an existing directory, even an empty one; only an
	// empty one is removed, so nothing already there is lost.
	if fi, err := os.Lstat(dst); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dst)
		}
		if err := os.Remove(dst); err != nil {
			return fmt.Errorf("%s exists and is not empty: %w", dst, err)
		}
	}
	err := os.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	// Copied beside dst first and renamed into place, so that a copy cut
	// short (a full disk) leaves no half-filled dst; the partial copy is this
	// call's own directory, removed on failure.
	partial, err := os.MkdirTemp(filepath.Dir(dst), ".partial-"+filepath.Base(dst)+"-")
	if err != nil {
		return fmt.Errorf("copying %s across filesystems: %w", src, err)
	}
	if err := copyTree(src, partial); err != nil {
		_ = os.RemoveAll(partial)
		return fmt.Errorf("copying %s across filesystems: %w", src, err)
	}
	if err := os.Rename(partial, dst); err != nil {
		_ = os.RemoveAll(partial)
		return fmt.Errorf("moving the copy of %s into place: %w", src, err)
	}
	return os.RemoveAll(src)
}

// copyTree copies the directory src to dst (which may exist, empty):
// directories 0700, regular files 0600, symbolic links as links, never
// followed; anything else is left out.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return mkdirPrivate(target)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return nil
	})
}

// mkdirPrivate creates dir 0700, or makes an existing one 0700.
func mkdirPrivate(dir string) error {
	if err := os.Mkdir(dir, privatefile.DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Chmod(dir, privatefile.DirMode)
}

// copyFile copies the regular file src to a new file dst, created 0600,
// streaming it: journals run to many megabytes.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, privatefile.FileMode)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	return errors.Join(cerr, out.Close())
}
