package fleetenv

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// prefixed puts the time and a name in front of each line written, so that
// parallel environments and servers stay readable in one log.
func prefixed(w io.Writer, name string) io.Writer {
	return &linePrefixer{w: w, prefix: name + "  "}
}

type linePrefixer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s %s%s", time.Now().Format("15:04:05"), p.prefix, p.buf[:i+1]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}
