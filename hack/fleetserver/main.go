// Command fleetserver is the in-cluster fleet server: the git repository
// and the charts a fleet syncs from, served inside the cluster, for
// clusters with no route to the machine that runs the harness. It speaks
// git and the chart protocols through the harness's own handlers
// (harness/gitserver, harness/chartrepo) and takes its content through
// admin paths that harness/clusterserver reaches by port-forward: the
// charts arrive packaged and indexed, so it links no Helm and no
// Kubernetes client (harness/clusterserver/backend).
//
// It reads its credentials from the environment (see
// backend's Env* constants), listens on POD_IP and on the
// pod's loopback, writes only under the temporary directory ($TMPDIR) and
// stops gracefully on SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/clusterserver/backend"
)

// shutdownGrace is how long requests in flight get after SIGTERM; the pod's
// termination grace period is longer.
const shutdownGrace = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		log.SetFlags(0)
		log.Fatalf("fleet-server: %v", err)
	}
}

func run(ctx context.Context) error {
	podIP := os.Getenv(backend.EnvPodIP)
	ip := net.ParseIP(podIP)
	if ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("%s=%q: want the pod's own IP (the downward API's status.podIP), not every interface", backend.EnvPodIP, podIP)
	}
	cfg := backend.Config{
		DataDir:    os.TempDir(),
		GitUser:    takeEnv(backend.EnvGitUser),
		GitPass:    takeEnv(backend.EnvGitPass),
		ChartUser:  takeEnv(backend.EnvChartUser),
		ChartPass:  takeEnv(backend.EnvChartPass),
		AdminToken: takeEnv(backend.EnvAdminToken),
		Log:        os.Stderr,
	}
	b, err := backend.New(ctx, cfg)
	if err != nil {
		return err
	}
	servers := []struct {
		ip      string
		port    int
		handler http.Handler
	}{
		// Loopback too: a port-forward reaches the pod on 127.0.0.1.
		{podIP, backend.ServePort, b.ServeHandler()},
		{"127.0.0.1", backend.ServePort, b.ServeHandler()},
		{podIP, backend.AdminPort, b.HealthHandler()},
		{"127.0.0.1", backend.AdminPort, b.AdminHandler()},
	}
	errs := make(chan error, len(servers))
	var running []*http.Server
	for _, s := range servers {
		addr := net.JoinHostPort(s.ip, strconv.Itoa(s.port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			shutdown(running)
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
		srv := &http.Server{
			Handler:           s.handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          log.New(os.Stderr, "http: ", 0),
		}
		running = append(running, srv)
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serving on %s: %w", addr, err)
			}
		}()
	}
	log.Printf("fleet-server: serving git at %s and the charts on %s:%d, admin on 127.0.0.1:%d",
		backend.RepoPath, podIP, backend.ServePort, backend.AdminPort)
	select {
	case <-ctx.Done():
		log.Printf("fleet-server: stopping")
		shutdown(running)
		return nil
	case err := <-errs:
		shutdown(running)
		return err
	}
}

// takeEnv reads a credential and removes it from the environment, so that
// the git processes the server starts never inherit it.
func takeEnv(name string) string {
	v := os.Getenv(name)
	_ = os.Unsetenv(name)
	return v
}

// shutdown stops every server, giving requests in flight shutdownGrace.
func shutdown(servers []*http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			_ = s.Close()
		}
	}
}
