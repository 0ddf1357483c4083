package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// readyzServer answers /readyz with 200 until failing is set, then 500.
func readyzServer(t *testing.T) (*httptest.Server, *atomic.Bool, *atomic.Int32) {
	t.Helper()
	var failing atomic.Bool
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		if failing.Load() {
			http.Error(w, "[-]etcd failed: reason withheld\nreadyz check failed", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &failing, &hits
}

// testWatch is an apiWatch of srv at a test's pace, with the node
// containers reported by nodes.
func testWatch(t *testing.T, srv *httptest.Server, period time.Duration, nodes func(context.Context) ([]string, error)) apiWatch {
	t.Helper()
	check, err := readyzCheck(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return apiWatch{name: "staging", server: srv.URL, period: period, failures: apiWatchFailures, check: check, nodes: nodes}
}

func TestWatchAPIServerStartsFailing(t *testing.T) {
	const period = 20 * time.Millisecond
	for _, tt := range []struct {
		name      string
		nodes     []string
		nodesErr  error
		wantGone  bool
		wantNodes string
	}{
		{name: "node containers deleted", wantGone: true},
		{name: "node containers there", nodes: []string{"staging-control-plane exited"}, wantNodes: "staging-control-plane exited"},
		{name: "engine does not answer", nodesErr: errors.New("Cannot connect to the Docker daemon"), wantNodes: "unknown: Cannot connect to the Docker daemon"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, failing, hits := readyzServer(t)
			w := testWatch(t, srv, period, func(context.Context) ([]string, error) { return tt.nodes, tt.nodesErr })
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			go w.run(ctx, cancel)
			// Healthy: the watch keeps checking and does not end ctx.
			for hits.Load() < 3 {
				time.Sleep(period)
			}
			if ctx.Err() != nil {
				t.Fatalf("watch ended a healthy cluster's context: %v", context.Cause(ctx))
			}
			failing.Store(true)
			start := time.Now()
			// failures checks a period apart, plus a wide margin: a loaded
			// machine can stall a process for seconds.
			bound := time.Duration(apiWatchFailures)*period + 30*time.Second
			select {
			case <-ctx.Done():
			case <-time.After(bound):
				t.Fatalf("watch did not end ctx within %s of the API server failing", bound)
			}
			t.Logf("ended %s after the server started failing", time.Since(start))
			var gone *GoneError
			if !errors.As(context.Cause(ctx), &gone) {
				t.Fatalf("cause %v, want a *GoneError", context.Cause(ctx))
			}
			if gone.Name != "staging" || gone.Server != srv.URL || gone.NodesGone != tt.wantGone || gone.Nodes != tt.wantNodes ||
				gone.Answer != "HTTP 500: [-]etcd failed: reason withheld" {
				t.Errorf("GoneError = %+v", gone)
			}
		})
	}
}

// One failed check among good ones is load, not a vanished cluster.
func TestWatchAPIFailuresInARow(t *testing.T) {
	results := []error{nil, errors.New("timeout"), errors.New("timeout"), nil, errors.New("timeout"), nil, errors.New("a"), errors.New("b"), errors.New("refused")}
	errExhausted := errors.New("the scripted checks ran out without the watch ending")
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	calls := 0
	w := apiWatch{name: "staging", server: "https://127.0.0.1:1", period: time.Millisecond, failures: 3,
		check: func(context.Context) error {
			if calls == len(results) {
				cancel(errExhausted)
				return nil
			}
			calls++
			return results[calls-1]
		},
		nodes: func(context.Context) ([]string, error) { return nil, nil },
	}
	w.run(ctx, cancel) // returns once ctx has ended, by the watch or the script
	var gone *GoneError
	if !errors.As(context.Cause(ctx), &gone) || gone.Answer != "refused" {
		t.Fatalf("cause %v, want a *GoneError after the last of three failures in a row", context.Cause(ctx))
	}
	if calls != len(results) {
		t.Errorf("ended after %d checks, want %d: only three failures in a row count", calls, len(results))
	}
}

func TestWatchAPIStopAndNoConfig(t *testing.T) {
	srv, _, _ := readyzServer(t)
	c := &Cluster{Name: "staging", RESTConfig: &rest.Config{Host: srv.URL}}
	ctx, stop := c.WatchAPI(t.Context())
	stop()
	<-ctx.Done()
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		t.Errorf("stopped watch: cause %v, want context.Canceled", cause)
	}

	ctx, stop = (&Cluster{Name: "by-hand"}).WatchAPI(t.Context())
	defer stop()
	if cause := context.Cause(ctx); cause == nil || !strings.Contains(cause.Error(), "watching cluster by-hand: it has no REST config") {
		t.Errorf("watch without a REST config: cause %v", cause)
	}
}

// The GoneError's message is what a user reads when a cluster vanishes.
func TestGoneErrorMessage(t *testing.T) {
	gone := &GoneError{Name: "cc-staging", Server: "https://127.0.0.1:40001", Answer: "connection refused", NodesGone: true}
	if got := gone.Error(); !strings.Contains(got, `cluster "cc-staging" is gone: its node containers are gone (deleted by someone else?)`) ||
		!strings.Contains(got, "https://127.0.0.1:40001 answered: connection refused") {
		t.Errorf("Error() = %q", got)
	}
	stopped := &GoneError{Name: "cc-staging", Server: "https://127.0.0.1:40001", Answer: "HTTP 500: etcd", Nodes: "cc-staging-control-plane running"}
	if got := stopped.Error(); strings.Contains(got, "deleted by someone else") || !strings.Contains(got, "stopped answering") ||
		!strings.Contains(got, "cc-staging-control-plane running") {
		t.Errorf("Error() = %q", got)
	}
}
