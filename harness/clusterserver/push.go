package clusterserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
	"github.com/flux-fleet/flux-fleet/harness/clusterserver/backend"
	"github.com/flux-fleet/flux-fleet/harness/probe"
)

// pushTimeout bounds one push: the port-forward, the upload and the
// server's own work on it (backend.AdminTimeout), with a margin for the upload.
const pushTimeout = backend.AdminTimeout + 30*time.Second

// maxAnswer bounds what is read of the server's answer.
const maxAnswer = 64 << 10

// PushGit hands the server a git bundle of branch refs, written by bundle
// (gitserver.(*Server).Bundle), which replaces the branches it serves. A
// bundle the server refuses changes nothing there; the error says why.
func (s *Server) PushGit(ctx context.Context, bundle func(w io.Writer) error) error {
	return s.push(ctx, backend.AdminGitPath, "the git bundle", bundle)
}

// PushCharts hands the server the chart set (chartserver.(*Server).Set),
// which replaces the charts it serves as a whole. The server checks that
// each chart's archive, digest and OCI artifact agree; a set it refuses
// changes nothing there.
func (s *Server) PushCharts(ctx context.Context, set chartrepo.Set) error {
	if err := set.Check(); err != nil {
		return fmt.Errorf("pushing the charts: %w", err)
	}
	return s.push(ctx, backend.AdminChartsPath, "the charts", set.WriteTar)
}

// push port-forwards to the admin port of a ready pod, PUTs what body
// writes to path and stops the forward.
func (s *Server) push(ctx context.Context, path, what string, body func(w io.Writer) error) error {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	start := time.Now()
	pod, err := s.readyPod(ctx)
	if err != nil {
		return fmt.Errorf("pushing %s: %w", what, err)
	}
	fwd, err := probe.ToPod(ctx, s.c.Config, pod.Namespace, pod.Name, backend.AdminPort)
	if err != nil {
		return fmt.Errorf("pushing %s: %w", what, err)
	}
	if err := s.track(fwd); err != nil {
		fwd.Close()
		return fmt.Errorf("pushing %s: %w", what, err)
	}
	defer s.untrack(fwd)

	answer, err := s.put(ctx, "http://"+fwd.Addr+path, body)
	if err != nil {
		return fmt.Errorf("pushing %s to pod %s/%s: %w", what, pod.Namespace, pod.Name, err)
	}
	s.log.Printf("pushed %s to pod %s/%s (%.1fs): %s", what, pod.Namespace, pod.Name, time.Since(start).Seconds(),
		strings.Join(strings.Fields(strings.ReplaceAll(answer, "\n", ";")), " "))
	return nil
}

// put sends the request with the admin token and returns the answer of a
// 200; the body is written while it is sent.
func (s *Server) put(ctx context.Context, url string, body func(w io.Writer) error) (string, error) {
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		err := body(pw)
		_ = pw.CloseWithError(err)
		written <- err
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, pr)
	if err != nil {
		_ = pr.CloseWithError(err)
		<-written
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.adminToken)
	req.Header.Set("Content-Type", "application/octet-stream")
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		_ = pr.CloseWithError(err)
		if werr := <-written; werr != nil && !errors.Is(werr, io.ErrClosedPipe) && !errors.Is(werr, err) {
			return "", werr
		}
		return "", err
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_ = pr.CloseWithError(io.ErrClosedPipe)
	if werr := <-written; werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return "", werr
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	if readErr != nil {
		return "", fmt.Errorf("reading the answer: %w", readErr)
	}
	return string(answer), nil
}

// readyPod finds a running, Ready pod of the Deployment.
func (s *Server) readyPod(ctx context.Context) (*corev1.Pod, error) {
	pods, err := s.pods(ctx)
	if err != nil {
		return nil, err
	}
	for i := range pods {
		p := &pods[i]
		ready := slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
			return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
		})
		if ready && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("deployment %s/%s has no ready pod: %s", s.opts.Namespace, Name, podSummary(pods))
}

func (s *Server) track(f *probe.Forward) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("the fleet server's client is closed")
	}
	s.forwards[f] = struct{}{}
	return nil
}

// untrack closes the forward unless Close already did.
func (s *Server) untrack(f *probe.Forward) {
	s.mu.Lock()
	_, open := s.forwards[f]
	delete(s.forwards, f)
	s.mu.Unlock()
	if open {
		f.Close()
	}
}
