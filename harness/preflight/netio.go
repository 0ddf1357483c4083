package preflight

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"helm.sh/helm/v4/pkg/chart/common"
)

// maxDownload bounds what one response may hold: chart archives are small,
// but a repository index (Bitnami's) runs to tens of megabytes.
const maxDownload = 128 << 20

// runner holds what one Run shares between releases and environments: one
// HTTP transport (so host rewrites apply to every request) and memoised
// lookups, so that two environments using the same source ask once.
type runner struct {
	// runCtx bounds the whole run, for lookups made where no context is
	// passed in (the schema compiler's loader).
	runCtx      context.Context
	opts        Options
	kubeVersion *common.KubeVersion
	transport   *http.Transport
	client      *http.Client

	indexes  onceMap[*indexResult]
	tags     onceMap[[]string]
	archives onceMap[*fetched]
	schemas  onceMap[any]
	images   onceMap[*Image]
}

func newRunner(ctx context.Context, opts Options, kv *common.KubeVersion) *runner {
	r := &runner{runCtx: ctx, opts: opts, kubeVersion: kv}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	r.transport = &http.Transport{
		Proxy: func(req *http.Request) (*url.URL, error) {
			// A rewritten host is local to this machine: never via a proxy.
			if r.rewrite(hostPort(req.URL)) != hostPort(req.URL) {
				return nil, nil
			}
			return http.ProxyFromEnvironment(req)
		},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, r.rewrite(addr))
		},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: opts.RequestTimeout,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	r.client = &http.Client{Transport: r.transport, Timeout: opts.RequestTimeout}
	return r
}

func (r *runner) close() { r.transport.CloseIdleConnections() }

// rewrite maps a dial address (host:port) through Options.HostRewrites:
// first the exact host:port, then the host alone (keeping the port when the
// rewrite names none).
func (r *runner) rewrite(addr string) string {
	if to, ok := r.opts.HostRewrites[addr]; ok {
		return to
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	to, ok := r.opts.HostRewrites[host]
	if !ok {
		return addr
	}
	if _, _, err := net.SplitHostPort(to); err == nil {
		return to
	}
	return net.JoinHostPort(to, port)
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// credential returns the credentials for a host as written in the fleet,
// for a source with a secretRef only: source-controller sends none to the
// others.
func (r *runner) credential(hasSecretRef bool, host string) *Credential {
	if !hasSecretRef {
		return nil
	}
	if c, ok := r.opts.Credentials[host]; ok {
		return &c
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		if c, ok := r.opts.Credentials[h]; ok {
			return &c
		}
	}
	return nil
}

// httpStatusError is an HTTP answer other than 200.
type httpStatusError struct {
	URL    string
	Status string
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("GET %s: %s", e.URL, e.Status) }

// get fetches one URL, bounded by the per-request timeout.
func (r *runner) get(ctx context.Context, rawURL string, cred *Credential) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "flux-fleet-preflight")
	if cred != nil {
		req.SetBasicAuth(cred.Username, cred.Password)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &httpStatusError{URL: rawURL, Status: resp.Status}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rawURL, err)
	}
	if len(data) > maxDownload {
		return nil, fmt.Errorf("reading %s: larger than %d MiB", rawURL, maxDownload>>20)
	}
	return data, nil
}

// remoteOptions configures go-containerregistry for one bounded operation:
// this run's transport, the credentials (anonymous without), and no retries,
// so that an unreachable registry costs one timeout, not three.
func (r *runner) remoteOptions(ctx context.Context, cred *Credential) []remote.Option {
	var auth authn.Authenticator = authn.Anonymous
	if cred != nil {
		auth = authn.FromConfig(authn.AuthConfig{Username: cred.Username, Password: cred.Password})
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(r.transport),
		remote.WithAuth(auth),
		remote.WithUserAgent("flux-fleet-preflight"),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}

// isUnreachable tells a source that could not be reached (name resolution,
// connection, TLS handshake timeout, no answer in time) from one that
// answered with an error.
func isUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	return false
}

// describeErr gives the part of a network error a reader can act on: the
// dial error rather than the whole chain of wrapping requests, an HTTP
// status with the registry's error codes, else the error itself.
func describeErr(err error, timeout time.Duration) string {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var tErr *transport.Error
	var sErr *httpStatusError
	switch {
	case errors.As(err, &dnsErr):
		return dnsErr.Error()
	case errors.As(err, &opErr):
		return opErr.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.As(err, &tErr):
		return describeTransportErr(tErr)
	case errors.As(err, &sErr):
		return "HTTP " + sErr.Status
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return err.Error()
}

func describeTransportErr(e *transport.Error) string {
	var codes []string
	for _, d := range e.Errors {
		s := string(d.Code)
		if d.Message != "" {
			s += " " + d.Message
		}
		codes = append(codes, s)
	}
	s := fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if len(codes) > 0 {
		s += ": " + strings.Join(codes, "; ")
	}
	return s
}

// fetched is a chart archive, from the network or the cache.
type fetched struct {
	data   []byte
	digest string // sha256:<hex>
	cached bool
}

func sha256Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (r *runner) archivePath(digest string) string {
	return filepath.Join(r.opts.CacheDir, "charts", strings.ReplaceAll(digest, ":", "-")+".tgz")
}

// cachedArchive returns the archive with that digest from the cache, if a
// good copy is there (a truncated or altered file is ignored).
func (r *runner) cachedArchive(digest string) *fetched {
	if digest == "" {
		return nil
	}
	data, err := os.ReadFile(r.archivePath(digest))
	if err != nil || sha256Digest(data) != digest {
		return nil
	}
	return &fetched{data: data, digest: digest, cached: true}
}

// storeArchive writes an archive to the cache atomically; a cache that
// cannot be written only costs a download next time.
func (r *runner) storeArchive(f *fetched) {
	p := r.archivePath(f.digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(f.data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		_ = os.Remove(tmp.Name())
	}
}

// onceMap runs a lookup once per key for the whole run; concurrent callers
// of the same key wait for the first.
type onceMap[V any] struct {
	mu sync.Mutex
	m  map[string]*onceEntry[V]
}

type onceEntry[V any] struct {
	once sync.Once
	v    V
	err  error
}

func (o *onceMap[V]) do(key string, f func() (V, error)) (V, error) {
	o.mu.Lock()
	if o.m == nil {
		o.m = map[string]*onceEntry[V]{}
	}
	e, ok := o.m[key]
	if !ok {
		e = &onceEntry[V]{}
		o.m[key] = e
	}
	o.mu.Unlock()
	e.once.Do(func() { e.v, e.err = f() })
	return e.v, e.err
}
