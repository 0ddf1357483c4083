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
	opts := options(t, filepath.Join(repoRoot(t), "fixtures", "fleets", "basic"), "ff-sig-")
	requireKit(t, opts)
	phases := []struct {
		name  string
		after string        // the step line that arms the signal
		delay time.Duration // how long into that step
	}{
		{"cluster creation", "step clusters ...", 3 * time.Second},
		{"flux install", "step flux install ...", time.Second},
		{"readiness wait", "step wait ...", 2 * time.Second},
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
			servers, signaled := watchChild(t, cmd, out, ph.after, ph.delay)
			err = cmd.Wait()
			if !signaled {
				t.Fatalf("the child never reached %q (exit: %v)", ph.after, err)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 130 {
				t.Errorf("child exit = %v, want exit status 130 after SIGINT", err)
			}
			assertNothingLeft(t, prefix, tmp, servers)
		})
	}
}

var serverLine = regexp.MustCompile(`(?:serving .* at|charts at) http://([0-9.]+:[0-9]+)`)

// watchChild copies the child's output to the test log, sends SIGINT delay
// after the line armed appears, and returns the server addresses the child
// announced.
func watchChild(t *testing.T, cmd *exec.Cmd, out io.Reader, armed string, delay time.Duration) ([]string, bool) {
	var servers []string
	signaled := false
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		t.Log("child: " + line)
		if m := serverLine.FindStringSubmatch(line); m != nil {
			servers = append(servers, m[1])
		}
		if !signaled && strings.Contains(line, armed) {
			signaled = true
			time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGINT) })
		}
	}
	return servers, signaled
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
	opts := options(t, filepath.Join(repoRoot(t), "fixtures", "fleets", "basic"), prefix)
	_, _, took := bringUp(t, opts)
	fmt.Printf("brought up in %s without being interrupted\n", took)
	<-contextBeforeTestTimeout(t).Done()
}
