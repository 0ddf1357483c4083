package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTally(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type req struct {
		ms      int
		failure string
	}
	tests := []struct {
		name     string
		reqs     []req
		endMs    int
		failed   int
		gap      time.Duration
		gapStart time.Time
		reasons  map[string]int
		lines    []string
	}{
		{"all answered", []req{{0, ""}, {200, ""}, {400, ""}}, 600, 0, 0, time.Time{}, map[string]int{}, nil},
		{"one streak", []req{{0, ""}, {200, "HTTP 502"}, {400, "HTTP 502"}, {600, ""}}, 800, 2, 400 * time.Millisecond, at(200),
			map[string]int{"HTTP 502": 2}, []string{"the app stopped answering: HTTP 502", "the app answers again after 400ms without an answer"}},
		{"the longer of two streaks", []req{{0, "timeout after 2s"}, {2200, ""}, {2400, "HTTP 504"}, {2600, ""}}, 2800, 2, 2200 * time.Millisecond, at(0),
			map[string]int{"timeout after 2s": 1, "HTTP 504": 1}, []string{"the app stopped answering: timeout after 2s", "the app answers again after 2.2s without an answer", "the app stopped answering: HTTP 504", "the app answers again after 200ms without an answer"}},
		{"still failing at the end counts up to the end", []req{{0, ""}, {200, "HTTP 502"}, {400, "connection refused"}}, 1000, 2, 800 * time.Millisecond, at(200),
			map[string]int{"HTTP 502": 1, "connection refused": 1}, []string{"the app stopped answering: HTTP 502"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ty := newTally(t0, 200*time.Millisecond)
			var lines []string
			for _, r := range tt.reqs {
				if l := ty.add(at(r.ms), r.failure); l != "" {
					lines = append(lines, l)
				}
			}
			a := ty.finish(at(tt.endMs))
			if a.Requests != len(tt.reqs) || a.Failed != tt.failed || a.LongestGap != tt.gap || !a.GapStart.Equal(tt.gapStart) || !maps.Equal(a.Reasons, tt.reasons) {
				t.Errorf("got %+v\nwant %d failed, gap %s from %s, reasons %v", a, tt.failed, tt.gap, tt.gapStart, tt.reasons)
			}
			if strings.Join(lines, "\n") != strings.Join(tt.lines, "\n") {
				t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tt.lines, "\n"))
			}
		})
	}
}

func TestAvailabilityString(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	a := Availability{Start: t0, End: t0.Add(10400 * time.Millisecond), Interval: 200 * time.Millisecond, Requests: 52, Failed: 3,
		LongestGap: 600 * time.Millisecond, GapStart: t0.Add(2 * time.Second), Reasons: map[string]int{"HTTP 502": 2, "timeout after 2s": 1}, Reforwards: 1}
	want := "52 requests every 200ms over 10.4s: 3 failed (HTTP 502 ×2, timeout after 2s ×1), longest gap 600ms from 06:00:02.0; port-forward to the ingress reopened 1 time(s)"
	if got := a.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	if got := (Availability{Start: t0, End: t0.Add(time.Second), Interval: time.Second, Requests: 1}).String(); got != "1 requests every 1s over 1s: none failed" {
		t.Errorf("String() = %q", got)
	}
}

func TestTransportReason(t *testing.T) {
	for _, tt := range []struct{ err, want string }{
		{`Get "http://127.0.0.1:41234/": read tcp 127.0.0.1:52000->127.0.0.1:41234: read: connection reset by peer`, "connection reset by peer"},
		{`Get "http://127.0.0.1:41234/": EOF`, "EOF"},
		{"no colon at all", "no colon at all"},
	} {
		if got := transportReason(errors.New(tt.err)); got != tt.want {
			t.Errorf("transportReason(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestWatchApp runs the watch against a real HTTP server that fails a
// known set of requests in known ways. Nothing depends on how fast the
// machine is: the slow request blocks until the watch gives up on it, and
// every other request has the watch's default timeout to be answered.
func TestWatchApp(t *testing.T) {
	// WatchOptions' default: what the upgrade step allows a request.
	const timeout = 2 * time.Second
	const total = 12
	var n atomic.Int32
	reached := make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if i == total {
			close(reached)
		}
		switch i {
		case 3, 4:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case 6:
			// Never answered: the watch's timeout ends it, however loaded
			// the machine is.
			<-r.Context().Done()
		case 8:
			// Drop the connection: a transport error, as when the ingress
			// pod behind a port-forward goes away. The reopen fails here
			// (no cluster), so the request counts as failed.
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			_ = conn.Close()
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	// The fake cluster has no ingress Service, so reopening the forward
	// fails. A fresh connection per request keeps Go's transport from
	// retrying the dropped one on its own.
	route := testRoute(t, handler)
	route.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var out bytes.Buffer
	var outMu sync.Mutex
	w := WatchApp(context.Background(), route, WatchOptions{Interval: 10 * time.Millisecond, Timeout: timeout, Out: lockedWriter{&outMu, &out}, Label: "staging"})
	// The requests take one timeout (request 6) and otherwise the
	// interval each; the margin is for a machine shared by two test lanes.
	select {
	case <-reached:
	case <-time.After(timeout + total*10*time.Millisecond + time.Minute):
		w.Stop()
		t.Fatalf("the watch sent %d requests, want %d", n.Load(), total)
	}
	a := w.Stop()
	if again := w.Stop(); again.Requests != a.Requests {
		t.Errorf("second Stop = %+v, want the same result", again)
	}
	// Request total may have been cut short by Stop: neither counted.
	if a.Requests < total-1 {
		t.Fatalf("only %d requests counted: %+v", a.Requests, a)
	}
	want := map[string]int{"HTTP 502": 2, fmt.Sprintf("timeout after %s", timeout): 1}
	reasons := maps.Clone(a.Reasons)
	// The dropped connection's wording depends on the platform; its count does not.
	dropped := 0
	for r, c := range reasons {
		if _, ok := want[r]; !ok {
			dropped += c
			delete(reasons, r)
		}
	}
	if !maps.Equal(reasons, want) || dropped != 1 || a.Failed != 4 {
		t.Errorf("failures %v (+%d dropped connection), %d failed; want %v and 1 dropped connection", reasons, dropped, a.Failed, want)
	}
	if a.LongestGap < timeout {
		t.Errorf("longest gap %s, want at least the timed-out request's %s", a.LongestGap, timeout)
	}
	outMu.Lock()
	printed := out.String()
	outMu.Unlock()
	lines := 0
	for _, l := range strings.Split(printed, "\n") {
		// A time, the label, then the tally's line.
		if f := strings.Fields(l); len(f) > 2 && f[1] == "staging" && strings.Contains(l, "the app stopped answering: ") {
			lines++
		}
	}
	if lines != 3 {
		t.Errorf("want 3 'stopped answering' lines labelled staging (one per streak), got:\n%s", printed)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
