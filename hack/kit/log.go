package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// logger writes the kit's log: every line "[kit HH:MM:SS] ...", the kit's
// own and the recipes' output alike, on one writer shared by concurrent
// streams.
type logger struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

func newLogger(w io.Writer) *logger { return &logger{w: w, now: time.Now} }

func (l *logger) printf(format string, args ...any) { l.line("", fmt.Sprintf(format, args...)) }

func (l *logger) line(prefix, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "[kit %s] %s%s\n", l.now().Format("15:04:05"), prefix, msg)
}

// lines returns a writer that logs each line written to it after
// "<stage>: "; Flush logs an unterminated last line.
func (l *logger) lines(stage string) *lineWriter {
	return &lineWriter{l: l, prefix: stage + ": "}
}

// raw writes text as it is (the timing table).
func (l *logger) raw(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, text)
}

type lineWriter struct {
	l      *logger
	prefix string
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.l.line(w.prefix, strings.TrimSuffix(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.l.line(w.prefix, string(w.buf))
		w.buf = nil
	}
}

// timing is one row of the stage timing table.
type timing struct {
	stage string
	lane  string // "" for a stage run on its own
	took  time.Duration
}

// timingTable formats the rows as the shell kit printed them, a stage run
// in a lane with the lane's name.
func timingTable(rows []timing) string {
	var b strings.Builder
	for _, r := range rows {
		line := fmt.Sprintf("  %-22s %7.1fs", r.stage, r.took.Seconds())
		if r.lane != "" {
			line += "  " + r.lane + " lane"
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
