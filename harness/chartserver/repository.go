package chartserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/flux-fleet/flux-fleet/harness/internal/basicauth"
	"github.com/flux-fleet/flux-fleet/harness/internal/httplog"
)

// Repository is what the chart server serves, apart from where the charts
// come from: a set of packaged charts as a Helm HTTP repository (index.yaml
// and the archives) and as an OCI registry, behind basic auth, read-only.
// Server fills it from chart directories; the in-cluster fleet server from
// archives it is handed (PublishArchives). A new set replaces the old one
// as a whole.
type Repository struct {
	user, pass string
	log        *httplog.Log

	registry http.Handler      // in-process OCI registry; tags pushed by replace
	push     http.RoundTripper // reaches registry without the network or auth

	replaceMu sync.Mutex // one replace at a time: pushes and swaps must not interleave
	snap      atomic.Pointer[snapshot]
}

// NewRepository returns an empty repository protected by user and pass,
// logging one line per request and per published chart to log (nil
// discards).
func NewRepository(user, pass string, log io.Writer) (*Repository, error) {
	if user == "" || pass == "" {
		return nil, errors.New("chart repository: a user name and a password are required")
	}
	return newRepository(user, pass, httplog.New(log, "chartserver: ")), nil
}

func newRepository(user, pass string, l *httplog.Log) *Repository {
	r := &Repository{user: user, pass: pass, log: l}
	// The registry's own request lines would duplicate ours.
	r.registry = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.push = inProcessTransport{h: r.registry}
	empty, _ := buildIndex(nil) // no charts: cannot fail
	r.snap.Store(&snapshot{published: time.Now(), index: empty, archives: map[string]*packaged{}})
	return r
}

// Charts lists what is served now, sorted by name and version.
func (r *Repository) Charts() []Chart {
	snap := r.snap.Load()
	out := make([]Chart, len(snap.charts))
	for i, c := range snap.charts {
		out[i] = c.Chart
	}
	return out
}

// PublishArchives replaces what is served with the packaged charts (.tgz
// files) at paths. Each must be a chart archive as `helm package` writes
// it (Helm's loader checks Chart.yaml and bounds the unpacked size); two
// archives of one chart name and version are refused. On error nothing
// changes in what is served.
func (r *Repository) PublishArchives(ctx context.Context, paths []string) ([]Chart, error) {
	var charts []*packaged
	for _, p := range paths {
		archive, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading chart archive: %w", err)
		}
		ch, err := loader.LoadArchive(bytes.NewReader(archive))
		if err != nil {
			return nil, fmt.Errorf("chart archive %s: %w", p, err)
		}
		c, err := newPackaged(p, ch, archive)
		if err != nil {
			return nil, err
		}
		charts = append(charts, c)
	}
	if err := sortUnique(charts); err != nil {
		return nil, err
	}
	if err := r.replace(ctx, charts); err != nil {
		return nil, err
	}
	return r.Charts(), nil
}

// replace pushes charts to the registry, removes the tags of charts no
// longer served and then swaps in the new index and archives. A chart
// whose archive did not change keeps its digest, so Flux sees no new
// revision for it.
func (r *Repository) replace(ctx context.Context, charts []*packaged) error {
	r.replaceMu.Lock()
	defer r.replaceMu.Unlock()
	index, err := buildIndex(charts)
	if err != nil {
		return err
	}
	for _, c := range charts {
		if err := r.pushOCI(ctx, c); err != nil {
			return err
		}
	}
	// A chart that is gone (or changed version) must not stay pullable.
	for _, old := range r.snap.Load().charts {
		if !slices.ContainsFunc(charts, func(c *packaged) bool { return c.ref.String() == old.ref.String() }) {
			if err := remote.Delete(old.ref, remote.WithContext(ctx), remote.WithTransport(r.push)); err != nil {
				return fmt.Errorf("removing tag %s of a chart no longer served: %w", old.ref.String(), err)
			}
		}
	}
	snap := &snapshot{published: time.Now(), index: index, charts: charts, archives: map[string]*packaged{}}
	for _, c := range charts {
		snap.archives[c.file] = c
	}
	r.snap.Store(snap)
	for _, c := range charts {
		r.log.Printf("published %s %s (%s) from %s", c.Name, c.Version, c.Digest, c.dir)
	}
	return nil
}

// ServeHTTP answers one request and logs it.
func (r *Repository) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.log.Serve(w, req, r.route)
}

// route authenticates every request, then routes it to the repository
// index, an archive or the registry; everything else is 404. It has no
// note for the log.
func (r *Repository) route(w http.ResponseWriter, req *http.Request) string {
	if !basicauth.Allows(req, r.user, r.pass) {
		basicauth.Challenge(w, "chart-server")
		return ""
	}
	p := req.URL.Path
	if !cleanPath(p) {
		http.NotFound(w, req)
		return ""
	}
	// Clients only read: pushes would change the registry behind the
	// snapshot that replace made.
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return ""
	}
	snap := r.snap.Load()
	switch {
	case p == "/index.yaml":
		w.Header().Set("Content-Type", "application/x-yaml")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, req, "index.yaml", snap.published, bytes.NewReader(snap.index))
	case strings.HasPrefix(p, "/charts/"):
		c, ok := snap.archives[strings.TrimPrefix(p, "/charts/")]
		if !ok {
			http.NotFound(w, req)
			return ""
		}
		w.Header().Set("Content-Type", "application/gzip")
		http.ServeContent(w, req, c.file, snap.published, bytes.NewReader(c.archive))
	case p == "/v2" || strings.HasPrefix(p, "/v2/"):
		r.registry.ServeHTTP(w, req)
	default:
		http.NotFound(w, req)
	}
	return ""
}

// cleanPath reports whether p has no empty, "." or ".." segment (a
// trailing slash is allowed, as in the registry's "/v2/"): such paths are
// never served, whatever a client or proxy would make of them.
func cleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	rest := strings.TrimSuffix(p[1:], "/")
	if rest == "" {
		return true
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
