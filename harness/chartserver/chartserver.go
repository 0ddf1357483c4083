// Package chartserver serves chart directories of the working tree, packaged
// with the Helm SDK at run time, as both a Helm HTTP repository and an OCI
// registry on one basic-auth protected listener, so that Flux in kind
// clusters installs the charts being edited without any internet registry.
// A chart is packaged from what git would serve of it (files git ignores
// stay out, as do those .helmignore names), and a symbolic link that leads
// outside its chart directory is refused: no host file is ever packaged.
package chartserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
	"github.com/flux-fleet/flux-fleet/harness/internal/basicauth"
	"github.com/flux-fleet/flux-fleet/harness/internal/httplog"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// Options configures Start.
type Options struct {
	// Addr is the IP to listen on: the kind network gateway, or 127.0.0.1
	// in tests. The port is chosen by the OS. Unspecified addresses
	// (0.0.0.0, ::) are refused: the server must not face every network.
	Addr string
	// ChartDirs are chart directories (with a Chart.yaml) or directories
	// whose subdirectories are charts; subdirectories without a Chart.yaml
	// are skipped.
	ChartDirs []string
	// Username and Password protect every path; random per run when empty.
	Username, Password string
	// Log receives one line per request and per published chart; nil
	// discards.
	Log io.Writer
	// TempDir is where the server keeps its files ("" = the system's
	// temporary directory): a run passes its own, which a later run
	// reclaims if this one is killed.
	TempDir string
}

// Chart is one chart served, in both forms.
type Chart = chartrepo.Chart

// Server serves the charts found in Options.ChartDirs.
type Server struct {
	opts   Options
	log    *httplog.Log
	tmpDir string
	port   int
	host   string

	repo *chartrepo.Repository
	http *http.Server

	publishMu sync.Mutex // one Publish at a time: packaging and archive files must not interleave

	mu      sync.Mutex // guards closed, serveWG, served and set between AddListener, Publish and Close
	closed  bool
	serveWG sync.WaitGroup
	served  []error
	set     chartrepo.Set // what Publish last served

	// Connections accepted but without a request yet: Shutdown counts
	// them as busy for 5 s, and HTTP clients leave such connections behind
	// (a dial that lost the race to a pooled connection), so Close closes
	// them itself.
	connMu   sync.Mutex
	newConns map[net.Conn]struct{}
}

// Start packages every chart, publishes them and serves them until Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "chartserver-")
	if err != nil {
		return nil, fmt.Errorf("creating chart server directory: %w", err)
	}
	s := &Server{opts: opts, log: httplog.New(opts.Log, "chartserver: "), tmpDir: tmp}
	ok := false
	defer func() {
		if !ok {
			_ = s.Close()
		}
	}()

	if s.repo, err = chartrepo.New(opts.Username, opts.Password, opts.Log); err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           s.repo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(s.log, "chartserver: http: ", 0),
		ConnState:         s.trackConn,
	}

	// Listen before packaging so that an address that cannot be bound
	// fails at once; connections wait in the backlog until Serve.
	l, err := listen(ctx, opts.Addr, 0)
	if err != nil {
		return nil, err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	s.host = net.JoinHostPort(opts.Addr, strconv.Itoa(s.port))
	if _, err := s.Publish(ctx); err != nil {
		_ = l.Close()
		return nil, err
	}
	s.serve(l)
	s.log.Printf("serving %d charts at %s", len(s.Charts()), s.URL())
	ok = true
	return s, nil
}

func (o *Options) setDefaults() error {
	if err := checkListenIP(o.Addr); err != nil {
		return err
	}
	if len(o.ChartDirs) == 0 {
		return errors.New("chart server needs at least one chart directory")
	}
	dirs := make([]string, len(o.ChartDirs))
	for i, d := range o.ChartDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("resolving chart directory %s: %w", d, err)
		}
		dirs[i] = abs
	}
	o.ChartDirs = dirs
	if o.Username == "" || o.Password == "" {
		o.Username, o.Password = basicauth.Random("charts-")
	}
	return nil
}

func checkListenIP(addr string) error {
	ip := net.ParseIP(addr)
	switch {
	case addr == "":
		return errors.New("chart server needs an address to listen on (the kind network gateway)")
	case ip == nil:
		return fmt.Errorf("chart server address %q is not an IP address", addr)
	case ip.IsUnspecified():
		return fmt.Errorf("chart server address %s would listen on every interface: use the kind network gateway", addr)
	}
	return nil
}

func listen(ctx context.Context, ip string, port int) (net.Listener, error) {
	var lc net.ListenConfig
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("chart server listening on %s: %w", addr, err)
	}
	return l, nil
}

// serve runs the HTTP server on l until Close.
func (s *Server) serve(l net.Listener) {
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.mu.Lock()
			s.served = append(s.served, fmt.Errorf("serving on %s: %w", l.Addr(), err))
			s.mu.Unlock()
		}
	}()
}

// AddListener serves the same content, with the same credentials, on a
// second IP — the harness starts on 127.0.0.1 for the pre-flight, before
// kind has created the network whose gateway the nodes reach. It binds the
// same port as the first listener when that port is free there, so one
// port works for both, and returns "<ip>:<port>". Close closes it.
func (s *Server) AddListener(ctx context.Context, ip string) (hostPort string, err error) {
	if err := checkListenIP(ip); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("chart server is closed")
	}
	l, err := listen(ctx, ip, s.port)
	if err != nil {
		if l, err = listen(ctx, ip, 0); err != nil {
			return "", err
		}
	}
	s.serve(l)
	hostPort = l.Addr().String()
	s.log.Printf("also serving at http://%s", hostPort)
	return hostPort, nil
}

// URL is the root of the Helm HTTP repository, "http://<addr>:<port>";
// its host is also the OCI registry host.
func (s *Server) URL() string { return "http://" + s.host }

// Host is "<addr>:<port>", the registry host of OCI references
// (oci://<host>/charts/<name>).
func (s *Server) Host() string { return s.host }

// Port is the port of the first listener.
func (s *Server) Port() int { return s.port }

// Credentials are the basic-auth user and password the server accepts.
func (s *Server) Credentials() (user, pass string) { return s.opts.Username, s.opts.Password }

// Charts lists what is served now, sorted by name and version.
func (s *Server) Charts() []Chart { return s.repo.Charts() }

// Set is what is served now: the index, and the charts in the order of
// Charts with their archives and OCI artifacts. The in-cluster fleet
// server is handed this; it must not be modified.
func (s *Server) Set() chartrepo.Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set
}

// shutdownGrace is how long Close waits for requests in flight.
const shutdownGrace = 5 * time.Second

// Close stops every listener, waiting a few seconds for requests in
// flight, and removes the server's directory. It is safe to call twice.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	var errs []error
	if s.http != nil {
		if err := s.shutdown(shutdownGrace); err != nil {
			errs = append(errs, fmt.Errorf("stopping chart server: %w", err))
			_ = s.http.Close()
		}
		s.serveWG.Wait()
		s.mu.Lock()
		errs = append(errs, s.served...)
		s.served = nil
		s.mu.Unlock()
	}
	if s.tmpDir != "" {
		if err := os.RemoveAll(s.tmpDir); err != nil {
			errs = append(errs, fmt.Errorf("removing chart server directory: %w", err))
		}
		s.tmpDir = ""
	}
	return errors.Join(errs...)
}

// shutdown stops the listeners and waits up to grace for requests in
// flight, closing connections that never sent one as it goes.
func (s *Server) shutdown(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.http.Shutdown(ctx) }()
	// Shutdown ends at ctx by itself, so the poll needs no bound of its own.
	return poll.Until(context.Background(), poll.Every(newConnPoll).For("the chart server to shut down"), func(context.Context) (bool, error) {
		select {
		case err := <-done:
			return true, err
		default:
		}
		// Repeated because a connection accepted just before Shutdown
		// closed the listeners may only now report StateNew.
		s.connMu.Lock()
		for c := range s.newConns {
			_ = c.Close()
		}
		s.connMu.Unlock()
		return false, nil
	})
}

// newConnPoll is how often shutdown closes connections that have sent no
// request, which http.Server.Shutdown would leave open for seconds.
const newConnPoll = 20 * time.Millisecond

func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if state == http.StateNew {
		if s.newConns == nil {
			s.newConns = map[net.Conn]struct{}{}
		}
		s.newConns[c] = struct{}{}
	} else {
		delete(s.newConns, c)
	}
}
