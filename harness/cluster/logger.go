package cluster

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	kindlog "sigs.k8s.io/kind/pkg/log"
)

// kindLogger adapts kind's logger interface to an io.Writer so that kind's
// progress messages land in the test log with the cluster name and the
// seconds since the logger was made in front ("kind[staging] 4.1s ✓
// Preparing nodes"), instead of kind's terminal spinner on stdout: where a
// create spends its time is then in the log.
type kindLogger struct {
	w         *lineWriter
	prefix    string
	verbosity kindlog.Level
	start     time.Time
	now       func() time.Time
}

var _ kindlog.Logger = (*kindLogger)(nil)

func newKindLogger(w io.Writer, name string, verbosity kindlog.Level) *kindLogger {
	return &kindLogger{w: newLineWriter(w), prefix: "kind[" + name + "] ", verbosity: verbosity, start: time.Now(), now: time.Now}
}

func (l *kindLogger) print(msg string) {
	msg = strings.TrimRight(msg, "\n")
	if strings.TrimSpace(msg) == "" {
		return
	}
	l.w.writeLine(fmt.Sprintf("%s%.1fs %s", l.prefix, l.now().Sub(l.start).Seconds(), msg))
}

func (l *kindLogger) Warn(message string)               { l.print("WARNING: " + message) }
func (l *kindLogger) Warnf(format string, args ...any)  { l.Warn(fmt.Sprintf(format, args...)) }
func (l *kindLogger) Error(message string)              { l.print("ERROR: " + message) }
func (l *kindLogger) Errorf(format string, args ...any) { l.Error(fmt.Sprintf(format, args...)) }
func (l *kindLogger) V(level kindlog.Level) kindlog.InfoLogger {
	return infoLogger{l, level <= l.verbosity}
}

type infoLogger struct {
	l       *kindLogger
	enabled bool
}

func (i infoLogger) Info(message string) {
	if i.enabled {
		i.l.print(message)
	}
}

func (i infoLogger) Infof(format string, args ...any) {
	if i.enabled {
		i.l.print(fmt.Sprintf(format, args...))
	}
}

func (i infoLogger) Enabled() bool { return i.enabled }

// lineWriter serialises whole lines: clusters created in parallel share one
// writer, and interleaved half-lines would be unreadable.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineWriter(w io.Writer) *lineWriter {
	if lw, ok := w.(*lineWriter); ok {
		return lw
	}
	return &lineWriter{w: w}
}

func (lw *lineWriter) writeLine(s string) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	_, _ = io.WriteString(lw.w, s+"\n")
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

func (lw *lineWriter) printf(format string, args ...any) {
	lw.writeLine(fmt.Sprintf(format, args...))
}

// LogfWriter turns a Printf-style function such as testing.T.Logf into an
// io.Writer for Spec.Log and Guard.Log: each Write becomes one call, trailing
// newline removed.
func LogfWriter(logf func(format string, args ...any)) io.Writer {
	return logfWriter(logf)
}

type logfWriter func(format string, args ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
