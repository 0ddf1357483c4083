// Package httplog is the request log of the harness's HTTP servers: one
// whole line per request (method, URI as sent, status, duration), never
// interleaved between concurrent requests.
package httplog

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Log writes whole lines to a writer; a nil writer discards them.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

// New returns a log writing to w, with prefix before each Printf line.
func New(w io.Writer, prefix string) *Log {
	return &Log{w: w, prefix: prefix}
}

// Printf writes one line: the prefix, then the formatted text.
func (l *Log) Printf(format string, args ...any) {
	_, _ = fmt.Fprintf(l, l.prefix+format+"\n", args...)
}

// Write writes b as it is, under the log's lock, so that an http.Server's
// ErrorLog (which brings its own prefix and newline) can share the log.
func (l *Log) Write(b []byte) (int, error) {
	if l.w == nil {
		return len(b), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Serve answers a request with serve and logs it as "<method> <URI>
// <status> <duration>", then ": <note>" when serve returns one. The URI is
// RequestURI as the client sent it (a refused "/%2e%2e/x" is logged as
// written); it never carries credentials, which travel in a header.
func (l *Log) Serve(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request) (note string)) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	note := serve(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	line := fmt.Sprintf("%s %s %d %s", r.Method, r.RequestURI, rec.status, time.Since(start).Round(time.Millisecond))
	if note != "" {
		line += ": " + note
	}
	l.Printf("%s", line)
}

// recorder remembers the status code a handler answered with.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer (to flush).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
