package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Availability is what a user requesting the app during a roll saw.
type Availability struct {
	Start, End time.Time
	// Interval is the time between two requests' starts.
	Interval time.Duration
	Requests int
	Failed   int
	// LongestGap is the longest stretch without an answer: from the first
	// failed request of a streak to the next request answered, or to the
	// end of the watch.
	LongestGap time.Duration
	// GapStart is when the longest gap began (zero when nothing failed).
	GapStart time.Time
	// Reasons counts failed requests by what went wrong ("HTTP 502",
	// "timeout after 2s", "connection refused", ...).
	Reasons map[string]int
	// Reforwards counts port-forwards reopened because the ingress pod
	// behind the old one went away (nginx itself rolled); a request that
	// succeeded through the new one counts as answered.
	Reforwards int
}

// String is the one-line summary, e.g. "52 requests every 200ms over 10.4s:
// 3 failed (HTTP 502 ×3), longest gap 600ms".
func (a Availability) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests every %s over %s: ", a.Requests, a.Interval, a.End.Sub(a.Start).Round(100*time.Millisecond))
	if a.Failed == 0 {
		b.WriteString("none failed")
	} else {
		var reasons []string
		for _, r := range slices.Sorted(maps.Keys(a.Reasons)) {
			reasons = append(reasons, fmt.Sprintf("%s ×%d", r, a.Reasons[r]))
		}
		fmt.Fprintf(&b, "%d failed (%s), longest gap %s from %s", a.Failed, strings.Join(reasons, ", "),
			a.LongestGap.Round(10*time.Millisecond), a.GapStart.Format("15:04:05.0"))
	}
	if a.Reforwards > 0 {
		fmt.Fprintf(&b, "; port-forward to the ingress reopened %d time(s)", a.Reforwards)
	}
	return b.String()
}

// tally counts requests and the gaps between answers.
type tally struct {
	a       Availability
	gapFrom time.Time // first failure of the current streak; zero while answering
}

func newTally(start time.Time, interval time.Duration) *tally {
	return &tally{a: Availability{Start: start, Interval: interval, Reasons: map[string]int{}}}
}

// add records one request started at `at`; failure is "" when it was
// answered. It returns a line to print when the app stops or resumes
// answering, else "".
func (t *tally) add(at time.Time, failure string) string {
	t.a.Requests++
	if failure == "" {
		if t.gapFrom.IsZero() {
			return ""
		}
		gap := at.Sub(t.gapFrom)
		t.closeGap(gap)
		return fmt.Sprintf("the app answers again after %s without an answer", gap.Round(10*time.Millisecond))
	}
	t.a.Failed++
	t.a.Reasons[failure]++
	if !t.gapFrom.IsZero() {
		return ""
	}
	t.gapFrom = at
	return "the app stopped answering: " + failure
}

func (t *tally) closeGap(gap time.Duration) {
	if gap > t.a.LongestGap {
		t.a.LongestGap, t.a.GapStart = gap, t.gapFrom
	}
	t.gapFrom = time.Time{}
}

// finish ends the watch at end: a streak still failing counts up to it.
func (t *tally) finish(end time.Time) Availability {
	if !t.gapFrom.IsZero() {
		t.closeGap(end.Sub(t.gapFrom))
	}
	t.a.End = end
	return t.a
}

// WatchOptions tunes WatchApp.
type WatchOptions struct {
	// Interval is the time between two requests' starts (default 200ms):
	// a bounded rate, so the watch does not load a small test cluster.
	Interval time.Duration
	// Timeout bounds each request (default 2s); a request that takes
	// longer counts as failed.
	Timeout time.Duration
	// Out receives a line when the app stops answering and when it answers
	// again, prefixed with Label; nil discards.
	Out   io.Writer
	Label string
}

// Watch is a running availability watch; Stop ends it.
type Watch struct {
	stop   context.CancelFunc
	done   chan struct{}
	once   sync.Once
	result Availability
}

// WatchApp keeps requesting GET / through route — the ingress, with the
// app's host — until Stop, and counts the requests that were not answered
// with 200 in time. It owns route from then on: it reopens the port-forward
// when the ingress pod behind it goes away, and closes it on Stop.
func WatchApp(ctx context.Context, route *AppRoute, opts WatchOptions) *Watch {
	if opts.Interval <= 0 {
		opts.Interval = 200 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	ctx, stop := context.WithCancel(ctx)
	w := &Watch{stop: stop, done: make(chan struct{})}
	t := newTally(time.Now(), opts.Interval)
	go func() {
		defer close(w.done)
		defer route.Close()
		ticker := time.NewTicker(opts.Interval)
		defer ticker.Stop()
		for {
			at := time.Now()
			failure, reforwarded := request(ctx, route, opts.Timeout)
			if ctx.Err() != nil {
				// Cut short by Stop: neither answered nor failed.
				w.result = t.finish(at)
				return
			}
			if reforwarded {
				t.a.Reforwards++
			}
			if line := t.add(at, failure); line != "" {
				fmt.Fprintf(opts.Out, "%s %s  %s\n", time.Now().Format("15:04:05"), opts.Label, line)
			}
			select {
			case <-ctx.Done():
				w.result = t.finish(time.Now())
				return
			case <-ticker.C:
			}
		}
	}()
	return w
}

// Stop ends the watch and returns what it saw. It is safe to call more
// than once.
func (w *Watch) Stop() Availability {
	w.once.Do(func() {
		w.stop()
		<-w.done
	})
	return w.result
}

// request sends one GET / and says why it failed ("" when answered with
// 200). A transport error — not an HTTP status — comes from the
// port-forward, not from the app: the forward is reopened to a ready pod of
// the ingress and the request tried once more.
func request(ctx context.Context, route *AppRoute, timeout time.Duration) (failure string, reforwarded bool) {
	failure, transport := requestOnce(ctx, route, timeout)
	if !transport || ctx.Err() != nil {
		return failure, false
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	err := route.Reopen(rctx)
	cancel()
	if err != nil {
		return failure, false
	}
	failure, _ = requestOnce(ctx, route, timeout)
	return failure, true
}

func requestOnce(ctx context.Context, route *AppRoute, timeout time.Duration) (failure string, transport bool) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, _, err := route.Do(rctx, http.MethodGet, "/", nil)
	switch {
	case err != nil && errors.Is(rctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("timeout after %s", timeout), false
	case err != nil:
		return transportReason(err), true
	case code != http.StatusOK:
		return fmt.Sprintf("HTTP %d", code), false
	}
	return "", false
}

// transportReason keeps the last part of a transport error ("connection
// reset by peer", "EOF"), without the run-specific addresses before it, so
// that equal failures count together.
func transportReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}
