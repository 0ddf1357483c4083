package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/flux-fleet/flux-fleet/hack/internal/cli"
	"github.com/flux-fleet/flux-fleet/hack/internal/repo"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
	"github.com/flux-fleet/flux-fleet/harness/renderdiff"
)

// checkout is where the fleet and its chart directories sit in their git
// checkout, so that each revision's copies can be found in its export.
type checkout struct {
	top string // the checkout's root
	// fleet and charts are absolute, symbolic links resolved.
	fleet  string
	charts []string
}

// trees resolves -base and -head into the two sides: each revision's tree
// exported under work, the working tree as it is.
func (f *flags) trees(ctx context.Context, work string) (base, head renderdiff.Tree, err error) {
	co, err := f.locate(ctx)
	if err != nil {
		return base, head, err
	}
	if base, err = co.export(ctx, f.base, filepath.Join(work, "base")); err != nil {
		return base, head, f.stopped(ctx, err, "exporting revision "+f.base)
	}
	if f.head == "" {
		return base, renderdiff.Tree{Label: "working tree", FleetDir: co.fleet, ChartDirs: co.charts}, nil
	}
	head, err = co.export(ctx, f.head, filepath.Join(work, "head"))
	return base, head, f.stopped(ctx, err, "exporting revision "+f.head)
}

// stopped names the end of the run instead of err when ctx is done: git
// killed by the bound fails like a missing checkout or revision.
func (f *flags) stopped(ctx context.Context, err error, doing string) error {
	switch {
	case err == nil || ctx.Err() == nil:
		return err
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("-timeout %s ran out while %s", f.timeout, doing)
	}
	return fmt.Errorf("%s: %w", doing, ctx.Err())
}

// locate finds the fleet directory, its chart directories and their checkout.
func (f *flags) locate(ctx context.Context) (*checkout, error) {
	dir, err := repo.FleetDir(f.fleet)
	if err != nil {
		return nil, fmt.Errorf("%w (pass -fleet DIR)", err)
	}
	co := &checkout{}
	if co.fleet, err = realPath(dir); err != nil {
		return nil, fmt.Errorf("fleet directory: %w", err)
	}
	out, err := exec.CommandContext(ctx, "git", "-C", co.fleet, "rev-parse", "--show-toplevel").Output()
	if err != nil && ctx.Err() != nil {
		return nil, f.stopped(ctx, err, "finding the git checkout of fleet directory "+dir)
	}
	if err != nil {
		return nil, fmt.Errorf("fleet directory %s is not in a git checkout (a diff compares revisions): %w", dir, gitErr(err))
	}
	co.top = strings.TrimSpace(string(out))
	dirs := cli.List(f.charts)
	if f.charts == "" {
		dirs = defaultChartDirs(os.Stderr)
	}
	for _, d := range dirs {
		abs, err := realPath(d)
		if err != nil && f.charts == "" {
			continue // a default that this checkout or machine does not have
		}
		if err != nil {
			return nil, fmt.Errorf("chart directory: %w", err)
		}
		co.charts = append(co.charts, abs)
	}
	return co, nil
}

// export writes the checkout's tree at rev into dst and points the fleet
// and the chart directories inside the checkout into that copy; chart
// directories outside it (the kit's) are the same on both sides.
func (co *checkout) export(ctx context.Context, rev, dst string) (renderdiff.Tree, error) {
	commit, err := gitserver.ExportRevision(ctx, co.top, rev, dst)
	if err != nil {
		return renderdiff.Tree{}, err
	}
	short := commit
	if len(short) > 12 {
		short = short[:12]
	}
	tree := renderdiff.Tree{Label: fmt.Sprintf("%s (commit %s)", rev, short), FleetDir: co.inExport(co.fleet, dst)}
	for _, d := range co.charts {
		tree.ChartDirs = append(tree.ChartDirs, co.inExport(d, dst))
	}
	return tree, nil
}

// inExport is path's place in an export of the checkout, or path itself
// when it lies outside the checkout.
func (co *checkout) inExport(path, dst string) string {
	rel, err := filepath.Rel(co.top, path)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return path
	}
	return filepath.Join(dst, rel)
}

// defaultChartDirs are the repository's fixtures/charts and the offline
// kit's extra charts (FLEET_EXTRA_CHARTS, else the kit's profile file when
// the kit was built): what the harness's chart server serves.
func defaultChartDirs(stderr io.Writer) []string {
	var dirs []string
	if root, err := repo.Root(); err == nil {
		dirs = append(dirs, filepath.Join(root, "fixtures", "charts"))
	}
	profile, err := kitprofile.FromEnv()
	if err == nil && len(profile.ExtraCharts) == 0 {
		var path string
		if path, err = kitprofile.ProfilePath(); err == nil {
			if _, statErr := os.Stat(path); statErr == nil {
				profile, err = kitprofile.Load(path)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "diff: the offline kit's extra charts are not served: %v\n", err)
	}
	return append(dirs, profile.ExtraCharts...)
}

func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", p, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", fmt.Errorf("resolving %s: %w", p, err)
	}
	return abs, nil
}

// gitErr adds what git printed to its exit error.
func gitErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
