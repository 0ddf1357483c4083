package scenarios

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// childVar makes this test binary, re-executed by TestInterruptLeavesNothing,
// bring up a fleet and wait to be interrupted.
const childVar = "FLEET_SCENARIO_INTERRUPT_CHILD"

// TestInterruptLeavesNothing sends SIGINT to a run during cluster creation,
// during the Flux install and during the readiness wait: each time the
// process must exit 130 leaving no container of its cluster, no listening
// server and nothing in its temporary directory.
func TestInterruptLeavesNothing(t *testing.T) {
	t.Parallel() // see parallelNote
	if os.Getenv(childVar) != "" {
		t.Skip("this is the child of TestInterruptLeavesNothing")
	}
	opts := options(t, filepath.Join(testsupport.RepoRoot(t), "fixtures", "fleets", "basic"), "ff-sig-")
	requireKit(t, opts)
	phases := []struct {
		name  string
		step  string        // the step the signal must hit; its start line arms it
		delay time.Duration // how long into that step
	}{
		{"cluster creation", "clusters", 3 * time.Second},
		{"flux install", "flux install", time.Second},
		{"readiness wait", "wait", 2 * time.Second},
	}
	for _, ph := range phases {
		t.Run(strings.ReplaceAll(ph.name, " ", "-"), func(t *testing.T) {
			t.Parallel() // each child has its own cluster prefix and TMPDIR
			prefix := "ff-sig-" + strings.ReplaceAll(ph.name, " ", "") + "-"
			tmp := t.TempDir()
			ctx, cancel := context.WithTimeout(contextBeforeTestTimeout(t), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestInterruptChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childVar+"="+prefix, "TMPDIR="+tmp, "E2E_KEEP=never")
			cmd.Cancel = func() error { return cmd.Process.Kill() }
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			tr := watchChild(t, cmd, out, ph.step, ph.delay)
			err = cmd.Wait()
			if !tr.armed {
				t.Fatalf("the child never started step %q (exit: %v)", ph.step, err)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 130 {
				t.Errorf("child exit = %v, want exit status 130 after SIGINT", err)
			}
			tr.assertInterruptedIn(t, ph.step)
			assertNothingLeft(t, prefix, tmp, tr.servers)
		})
	}
}

var (
	serverLine = regexp.MustCompile(`(?:serving .* at|charts at) http://([0-9.]+:[0-9]+)`)
	// The harness's step lines (fleetenv's runStep) and its signal handler's
	// notice, wherever the test log's prefix puts them in the line.
	stepStartLine  = regexp.MustCompile(`\bstep (.+) \.\.\.$`)
	stepResultLine = regexp.MustCompile(`\bstep (.+?)\s+(FAILED|done) (?:after|in) \S+$`)
	interruptLine  = regexp.MustCompile(`\breceived interrupt: cleaning up`)
)

// childTranscript is what the child printed, read in order: the child
// writes step lines and the signal notice to one pipe, so the step running
// when the notice appears is the step the signal hit.
type childTranscript struct {
	servers []string
	// armed: the armed step started and the signal was scheduled.
	armed bool
	// running is the step started and not yet finished.
	running string
	// interrupted: the notice was printed; hit is the step running then.
	interrupted bool
	hit         string
	// results holds each finished step's first outcome, "FAILED" or "done".
	results map[string]string
}

func (tr *childTranscript) read(line string) {
	if m := serverLine.FindStringSubmatch(line); m != nil {
		tr.servers = append(tr.servers, m[1])
	}
	switch m := stepResultLine.FindStringSubmatch(line); {
	case m != nil:
		if _, seen := tr.results[m[1]]; !seen {
			tr.results[m[1]] = m[2]
		}
		tr.running = ""
	case stepStartLine.MatchString(line):
		tr.running = stepStartLine.FindStringSubmatch(line)[1]
	case interruptLine.MatchString(line) && !tr.interrupted:
		tr.interrupted, tr.hit = true, tr.running
	}
}

// assertInterruptedIn checks that the signal arrived while step ran and
// that the step then failed: a step that finished first is not the phase
// this subtest claims to interrupt.
func (tr *childTranscript) assertInterruptedIn(t *testing.T, step string) {
	t.Helper()
	switch {
	case !tr.interrupted:
		t.Errorf("the child never printed that it received the interrupt")
	case tr.hit != step:
		t.Errorf("the interrupt arrived during step %q, want during step %q (outcomes so far: %v)", tr.hit, step, tr.results)
	case tr.results[step] != "FAILED":
		t.Errorf("step %q after the interrupt: %q, want FAILED", step, tr.results[step])
	}
}

// watchChild copies the child's output to the test log, sends SIGINT delay
// after step starts, and returns what the child printed.
func watchChild(t *testing.T, cmd *exec.Cmd, out io.Reader, step string, delay time.Duration) *childTranscript {
	tr := &childTranscript{results: map[string]string{}}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		t.Log("child: " + line)
		tr.read(line)
		if !tr.armed && tr.running == step {
			tr.armed = true
			time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGINT) })
		}
	}
	return tr
}

func assertNothingLeft(t *testing.T, prefix, tmp string, servers []string) {
	t.Helper()
	ps, err := exec.Command("docker", "ps", "-a", "--filter", "name=^"+prefix, "--format", "{{.Names}}").Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	if left := strings.TrimSpace(string(ps)); left != "" {
		t.Errorf("containers left behind: %s", left)
		_ = exec.Command("docker", "rm", "-f", left).Run()
	}
	for _, addr := range servers {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("server %s still listening after the child exited", addr)
		}
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Errorf("left in the child's temporary directory: %s", strings.Join(names, ", "))
	}
}

// TestInterruptChild is the child: it brings up the basic fleet and waits
// for the parent's SIGINT.
func TestInterruptChild(t *testing.T) {
	prefix := os.Getenv(childVar)
	if prefix == "" {
		t.Skip("runs only as the child of TestInterruptLeavesNothing")
	}
	t.Parallel() // alone in its process; see parallelNote
	opts := options(t, filepath.Join(testsupport.RepoRoot(t), "fixtures", "fleets", "basic"), prefix)
	_, _, took := bringUp(t, opts)
	fmt.Printf("brought up in %s without being interrupted\n", took)
	<-contextBeforeTestTimeout(t).Done()
}
