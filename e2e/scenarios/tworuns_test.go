package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// TestTwoRunsOneClusterName starts two `go test ./e2e/` processes with the
// same cluster names on one Docker engine, the second once the first is in
// its readiness wait: the second must stop at its clusters step naming the
// first (its pid), and the first must stay green.
func TestTwoRunsOneClusterName(t *testing.T) {
	t.Parallel() // see parallelNote
	opts := options(t, filepath.Join(testsupport.RepoRoot(t), "fixtures", "fleets", "basic"), "ff-two-")
	requireKit(t, opts)
	ctx, cancel := context.WithTimeout(contextBeforeTestTimeout(t), 10*time.Minute)
	defer cancel()
	bin := buildE2E(ctx, t)

	tmpA, workA := t.TempDir(), t.TempDir()
	first := e2eChild(ctx, t, bin, "ff-two-", tmpA, workA)
	out, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	first.Stderr = first.Stdout
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	var firstOut lockedBuffer
	waiting := make(chan struct{})
	var copied sync.WaitGroup
	copied.Go(func() { scanUntil(out, &firstOut, "step wait ...", waiting) })

	select {
	case <-waiting:
	case <-ctx.Done():
		t.Fatalf("the first run never reached its readiness wait:\n%s", tail(firstOut.String(), 30))
	}
	start := time.Now()
	secondOut, secondErr := e2eChild(ctx, t, bin, "ff-two-", t.TempDir(), t.TempDir()).CombinedOutput()
	t.Logf("second run ended after %s: %v\n%s", time.Since(start).Round(100*time.Millisecond), secondErr, tail(string(secondOut), 8))
	firstErr := first.Wait()
	copied.Wait()
	t.Logf("first run: %v\n%s", firstErr, tail(firstOut.String(), 8))

	var exit *exec.ExitError
	want := fmt.Sprintf(`cluster "ff-two-staging" is in use by another flux-fleet run (pid %d `, first.Process.Pid)
	if !errors.As(secondErr, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(secondOut), want) {
		t.Errorf("second run: exit %v, want exit 1 saying %q", secondErr, want)
	}
	if strings.Contains(string(secondOut), "step flux install") {
		t.Errorf("the second run went past its clusters step")
	}
	if firstErr != nil {
		t.Errorf("the first run, whose cluster the second wanted, failed: %v", firstErr)
	}
	assertNothingLeft(t, "ff-two-", tmpA, nil)
}

// scanUntil copies r's lines into buf, closing seen at the first line that
// contains marker.
func scanUntil(r io.Reader, buf *lockedBuffer, marker string, seen chan<- struct{}) {
	sc := bufio.NewScanner(r)
	once := sync.OnceFunc(func() { close(seen) })
	for sc.Scan() {
		buf.WriteLine(sc.Text())
		if strings.Contains(sc.Text(), marker) {
			once()
		}
	}
}

// lockedBuffer is a child's output, read while it is still being written.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) WriteLine(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(line + "\n")
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
