package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// WatchAPI's pace: a cluster counts as gone after apiWatchFailures failed
// checks in a row, one every apiWatchPeriod, each given
// apiWatchRequestTimeout. One failure is not enough: a busy API server
// misses a deadline now and then.
const (
	apiWatchPeriod         = 2 * time.Second
	apiWatchFailures       = 5
	apiWatchRequestTimeout = 5 * time.Second
	// apiWatchDockerTimeout bounds listing the node containers once the
	// API server has stopped answering.
	apiWatchDockerTimeout = 20 * time.Second
)

// GoneError is the cause of a WatchAPI context that ended because the
// cluster stopped answering.
type GoneError struct {
	Name string
	// Server is the API server's URL, Answer what its last check got.
	Server string
	Answer string
	// NodesGone: the cluster's node containers no longer exist (deleted by
	// someone else). Nodes says what the engine reports about them
	// otherwise ("staging-control-plane exited"), or why it could not be
	// asked.
	NodesGone bool
	Nodes     string
}

func (e *GoneError) Error() string {
	if e.NodesGone {
		return fmt.Sprintf("cluster %q is gone: its node containers are gone (deleted by someone else?); the API server at %s answered: %s", e.Name, e.Server, e.Answer)
	}
	return fmt.Sprintf("cluster %q stopped answering: the API server at %s answered: %s (%d checks in a row); node containers: %s",
		e.Name, e.Server, e.Answer, apiWatchFailures, e.Nodes)
}

// apiWatch checks an API server until it fails failures times in a row.
type apiWatch struct {
	name     string
	server   string
	period   time.Duration
	failures int
	// check asks the API server once; nodes reports the node containers
	// (name and state), empty when there are none.
	check func(context.Context) error
	nodes func(context.Context) ([]string, error)
}

// WatchAPI returns a child of ctx that ends, with a *GoneError as its
// cause (context.Cause), when the cluster's API server stops answering
// /readyz: deleted by someone else, an engine restarted under it. Long
// steps run in it so that a vanished cluster is reported within seconds
// instead of waited out. Call the CancelFunc to stop watching.
func (c *Cluster) WatchAPI(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancelCause(ctx)
	if c.RESTConfig == nil {
		cancel(fmt.Errorf("watching cluster %s: it has no REST config (not created by Create)", c.Name))
		return wctx, func() { cancel(context.Canceled) }
	}
	check, err := readyzCheck(c.RESTConfig)
	if err != nil {
		cancel(fmt.Errorf("watching cluster %s: %w", c.Name, err))
		return wctx, func() { cancel(context.Canceled) }
	}
	w := apiWatch{
		name: c.Name, server: c.RESTConfig.Host,
		period: apiWatchPeriod, failures: apiWatchFailures,
		check: check,
		nodes: func(ctx context.Context) ([]string, error) { return nodeContainerStates(ctx, c.Name) },
	}
	if c.existing {
		w.nodes = func(context.Context) ([]string, error) {
			return []string{"unknown (not a kind cluster: reached by kubeconfig context " + c.Context + ")"}, nil
		}
	}
	go w.run(wctx, cancel)
	return wctx, func() { cancel(context.Canceled) }
}

// run checks right away, then every period, and ends ctx through cancel
// at the failures-th failure in a row.
func (w apiWatch) run(ctx context.Context, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(w.period)
	defer tick.Stop()
	failed := 0
	for {
		err := w.check(ctx)
		if ctx.Err() != nil {
			return
		}
		failed++
		if err == nil {
			failed = 0
		}
		if failed >= w.failures {
			cancel(w.gone(ctx, err))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// gone builds the GoneError, asking the engine about the node containers.
func (w apiWatch) gone(ctx context.Context, last error) *GoneError {
	e := &GoneError{Name: w.name, Server: w.server, Answer: last.Error()}
	ctx, cancel := context.WithTimeout(ctx, apiWatchDockerTimeout)
	defer cancel()
	nodes, err := w.nodes(ctx)
	switch {
	case err != nil:
		e.Nodes = "unknown: " + err.Error()
	case len(nodes) == 0:
		e.NodesGone = true
	default:
		e.Nodes = strings.Join(nodes, ", ")
	}
	return e
}

// readyzCheck returns a check of cfg's API server /readyz, each bounded by
// apiWatchRequestTimeout.
func readyzCheck(cfg *rest.Config) (func(context.Context) error, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("making an HTTP client for %s: %w", cfg.Host, err)
	}
	url := strings.TrimRight(cfg.Host, "/") + "/readyz"
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, apiWatchRequestTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, firstLineOf(string(body)))
		}
		return nil
	}, nil
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// nodeContainerStates lists cluster name's node containers as "<name>
// <state>".
func nodeContainerStates(ctx context.Context, name string) ([]string, error) {
	out, err := dockerOutput(ctx, "ps", "-a", "--filter", "label="+kindClusterLabel+"="+name, "--format", "{{.Names}} {{.State}}")
	if err != nil {
		return nil, fmt.Errorf("listing the node containers of cluster %s: %w", name, err)
	}
	var states []string
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); line != "" {
			states = append(states, line)
		}
	}
	return states, nil
}
