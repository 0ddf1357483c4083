package fleetenv

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// scrubReadTimeout bounds reading the values to scrub one log line with.
const scrubReadTimeout = 5 * time.Second

// scrubbingLog writes progress lines with the values Helm quotes in its
// errors replaced by their digests (record.Scrubbers.All), since the run
// log is uploaded like the artifacts. A line about a Flux object reads the
// values from the cluster then: HelmReleases appear while the wait runs.
type scrubbingLog struct {
	out     io.Writer
	clients *fluxobj.Clients
}

func (w scrubbingLog) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.out, scrubFluxText(w.clients, string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// scrubFluxText is text with the values of c's HelmReleases and
// Kustomizations replaced, when it names such an object; a failed read
// scrubs with what could be read.
func scrubFluxText(c *fluxobj.Clients, text string) string {
	if c == nil || !strings.Contains(text, "HelmRelease/") && !strings.Contains(text, "Kustomization/") {
		return text
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrubReadTimeout)
	defer cancel()
	s, _ := record.ReadScrubbers(ctx, c)
	return s.All(text)
}

// progressOut is where e's wait writes its progress: out itself with raw
// values asked for, else through scrubbingLog.
func progressOut(out io.Writer, e *Environment, o Options) io.Writer {
	if o.RawValues {
		return out
	}
	return scrubbingLog{out: out, clients: e.Clients}
}
