package fleetenv

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
)

// ChartServer is the step "chart server": the fixture charts served on
// loopback, where the pre-flight uses them before the kind network exists.
func ChartServer() Step {
	return Step{Name: "chart server", run: func(ctx context.Context, r *Run) error {
		if len(r.opts.ChartDirs) == 0 {
			r.log.printf("no chart directories: chart server not started")
			return nil
		}
		tmp, err := r.work.dir()
		if err != nil {
			return err
		}
		s, err := serveCharts(ctx, r.opts.ChartDirs, tmp, prefixed(r.out, "charts"))
		if err != nil {
			return err
		}
		r.state.recordCharts(s)
		var names []string
		for _, c := range s.Charts() {
			names = append(names, c.Name+"@"+c.Version)
		}
		r.log.printf("serving %d chart(s) as a Helm repository and an OCI registry: %s", len(names), strings.Join(names, ", "))
		return nil
	}}
}

// serveCharts starts a chart server on loopback for the charts in dirs.
func serveCharts(ctx context.Context, dirs []string, tempDir string, log io.Writer) (*chartserver.Server, error) {
	s, err := chartserver.Start(ctx, chartserver.Options{Addr: "127.0.0.1", ChartDirs: dirs, Log: log, TempDir: tempDir})
	if err != nil {
		return nil, fmt.Errorf("serving charts from %s: %w", strings.Join(dirs, ", "), err)
	}
	return s, nil
}
