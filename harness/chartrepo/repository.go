// Package chartrepo serves a set of packaged charts, read-only behind basic
// auth, as a Helm HTTP repository (index.yaml and the archives) and as an
// OCI registry. It knows no Helm: the set — the index, the archives and
// each chart's OCI manifest and config — is made by chartserver with the
// Helm SDK, so that the in-cluster fleet server, which serves the set the
// harness hands it, links neither Helm nor a Kubernetes client.
package chartrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/flux-fleet/flux-fleet/harness/internal/basicauth"
	"github.com/flux-fleet/flux-fleet/harness/internal/httplog"
)

// Chart is one chart served, in both forms.
type Chart struct {
	Name, Version string
	// Digest is the sha256 of the .tgz ("sha256:<hex>"), which is also the
	// digest of the chart layer in the OCI registry.
	Digest string
}

// Repository is what the chart server serves: a Set as a Helm HTTP
// repository and as an OCI registry, behind basic auth, read-only. A new
// set replaces the old one as a whole.
type Repository struct {
	user, pass string
	log        *httplog.Log

	registry http.Handler      // in-process OCI registry; tags pushed by Replace
	push     http.RoundTripper // reaches registry without the network or auth

	replaceMu sync.Mutex // one Replace at a time: pushes and swaps must not interleave
	snap      atomic.Pointer[snapshot]
}

// snapshot is what one Replace made; requests read one snapshot from
// start to end, so the index never lists an archive it cannot serve.
type snapshot struct {
	published time.Time
	set       Set               // nil Index: nothing published yet
	archives  map[string]*Entry // by archive file name
}

// New returns an empty repository protected by user and pass, logging one
// line per request and per published chart to log (nil discards). Until
// the first Replace, index.yaml is not found.
func New(user, pass string, log io.Writer) (*Repository, error) {
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
	r.snap.Store(&snapshot{published: time.Now(), archives: map[string]*Entry{}})
	return r
}

// Charts lists what is served now, sorted by name and version.
func (r *Repository) Charts() []Chart { return r.snap.Load().set.Charts() }

// Replace serves set in place of the current one, after checking it
// (Check): it pushes the charts to the registry, removes the tags of charts
// no longer served and then swaps in the new index and archives. On error
// nothing changes in what is served. A chart whose archive did not change
// keeps its manifest digest, so Flux sees no new revision for it.
func (r *Repository) Replace(ctx context.Context, set Set) error {
	set = set.sorted()
	if err := set.Check(); err != nil {
		return err
	}
	r.replaceMu.Lock()
	defer r.replaceMu.Unlock()
	for i := range set.Entries {
		if err := r.pushOCI(ctx, &set.Entries[i]); err != nil {
			return err
		}
	}
	// A chart that is gone (or changed version) must not stay pullable.
	for _, old := range r.snap.Load().set.Entries {
		if !slices.ContainsFunc(set.Entries, func(e Entry) bool { return e.Name == old.Name && e.Tag == old.Tag }) {
			ref, err := reference(old.Name, old.Tag)
			if err == nil {
				err = remote.Delete(ref, remote.WithContext(ctx), remote.WithTransport(r.push))
			}
			if err != nil {
				return fmt.Errorf("removing tag %s of chart %s, no longer served: %w", old.Tag, old.Name, err)
			}
		}
	}
	snap := &snapshot{published: time.Now(), set: set, archives: map[string]*Entry{}}
	for i := range set.Entries {
		snap.archives[set.Entries[i].File] = &set.Entries[i]
	}
	r.snap.Store(snap)
	for _, e := range set.Entries {
		r.log.Printf("published %s %s (%s) from %s", e.Name, e.Version, e.Digest, e.source())
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
	// snapshot that Replace made.
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return ""
	}
	snap := r.snap.Load()
	switch {
	case p == "/index.yaml" && snap.set.Index != nil:
		w.Header().Set("Content-Type", "application/x-yaml")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, req, "index.yaml", snap.published, bytes.NewReader(snap.set.Index))
	case strings.HasPrefix(p, "/charts/"):
		e, ok := snap.archives[strings.TrimPrefix(p, "/charts/")]
		if !ok {
			http.NotFound(w, req)
			return ""
		}
		w.Header().Set("Content-Type", "application/gzip")
		http.ServeContent(w, req, e.File, snap.published, bytes.NewReader(e.Archive))
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
