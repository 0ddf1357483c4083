package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		ok     bool
		fleet  string
		stderr string
	}{
		{"flags only", []string{"-fleet", "dir"}, true, "dir", ""},
		{"no arguments", nil, true, "", ""},
		{"unknown flag", []string{"-nope"}, false, "", "flag provided but not defined: -nope\nUsage of demo:\n"},
		{"positional argument", []string{"-fleet", "dir", "staging"}, false, "dir", "demo: unexpected arguments [\"staging\"]\nUsage of demo:\n"},
		{"help", []string{"-h"}, false, "", "Usage of demo:\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := New("demo", &stdout, &stderr)
			fleet := cmd.Flags.String("fleet", "", "fleet directory")
			if got := cmd.Parse(tc.args); got != tc.ok {
				t.Fatalf("Parse(%q) = %v, want %v; stderr:\n%s", tc.args, got, tc.ok, stderr.String())
			}
			if *fleet != tc.fleet {
				t.Errorf("-fleet = %q, want %q", *fleet, tc.fleet)
			}
			if tc.stderr == "" && stderr.Len() > 0 {
				t.Errorf("stderr = %q, want nothing", stderr.String())
			}
			if !strings.HasPrefix(stderr.String(), tc.stderr) {
				t.Errorf("stderr = %q, want it to start with %q", stderr.String(), tc.stderr)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

func TestError(t *testing.T) {
	cases := []struct {
		name string
		err  error
		hint string
		want string
	}{
		{"prefixed with the name", errors.New("no go.mod found"), "pass -fleet DIR", "demo: no go.mod found (pass -fleet DIR)\n"},
		{"already prefixed", fmt.Errorf("demo: environment %q is not in clusters", "qa"), "", "demo: environment \"qa\" is not in clusters\n"},
		{"another command's prefix", errors.New("democracy: x"), "", "demo: democracy: x\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := New("demo", io.Discard, &stderr).Error(tc.err, tc.hint); code != ExitError {
				t.Errorf("exit code %d, want %d", code, ExitError)
			}
			if stderr.String() != tc.want {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestResult(t *testing.T) {
	if got := Result(true); got != 0 {
		t.Errorf("Result(true) = %d, want 0", got)
	}
	if got := Result(false); got != 1 {
		t.Errorf("Result(false) = %d, want 1", got)
	}
}

func TestList(t *testing.T) {
	cases := map[string][]string{
		"":                      nil,
		"staging":               {"staging"},
		" staging , production": {"staging", "production"},
		"staging,,production,":  {"staging", "production"},
	}
	for flag, want := range cases {
		if got := List(flag); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", flag, got, want)
		}
	}
}

// mainChildVar makes the test binary run Main as a command would.
const mainChildVar = "CLI_TEST_MAIN_CHILD"

// TestMain lets TestMainExitsWithTheCodeAndCancelsOnInterrupt re-run this
// binary as a command: Main ends in os.Exit.
func TestMain(m *testing.M) {
	if os.Getenv(mainChildVar) == "" {
		os.Exit(m.Run())
	}
	Main(func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		fmt.Fprintf(stdout, "args %q\n", args)
		if len(args) > 0 && args[0] == "wait" {
			<-ctx.Done()
			fmt.Fprintln(stderr, "cancelled")
			return 7
		}
		if len(args) > 0 && args[0] == "busy" {
			for { // work that never looks at ctx
				time.Sleep(time.Millisecond)
			}
		}
		return 3
	})
}

func TestMainExitsWithTheCodeAndCancelsOnInterrupt(t *testing.T) {
	// The child waits for its context; the bound is this test's own wait
	// for it, far above a process start.
	const bound = 30 * time.Second
	t.Run("exit code and arguments", func(t *testing.T) {
		out, code := runChild(t, bound, false, "-x", "y")
		if code != 3 || out != "args [\"-x\" \"y\"]\n" {
			t.Errorf("child: exit %d, stdout %q; want exit 3, args [\"-x\" \"y\"]", code, out)
		}
	})
	t.Run("interrupt cancels the context", func(t *testing.T) {
		_, code := runChild(t, bound, true, "wait")
		if code != 7 {
			t.Errorf("child after SIGINT: exit %d, want 7 (its run returned after the context ended)", code)
		}
	})
}

// runChild runs this test binary as a command; with interrupt, it sends
// SIGINT once the child has printed its arguments.
func runChild(t *testing.T, bound time.Duration, interrupt bool, args ...string) (stdout string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var errBuf bytes.Buffer
	cmd, pipe, first := startChild(t, exec.CommandContext(ctx, os.Args[0], args...), &errBuf)
	if interrupt {
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatalf("interrupting the child: %v", err)
		}
	}
	rest, _ := io.ReadAll(pipe)
	err := cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the child did not exit within %s; stderr:\n%s", bound, errBuf.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running the child: %v", err)
	}
	return first + string(rest), cmd.ProcessState.ExitCode()
}

// startChild starts cmd, this test binary as Main's child, and returns it
// with its stdout once the child printed its first line, which says Main
// has set up the signal context.
func startChild(t *testing.T, cmd *exec.Cmd, stderr io.Writer) (*exec.Cmd, io.Reader, string) {
	t.Helper()
	cmd.Env = append(os.Environ(), mainChildVar+"=1")
	cmd.Stderr = stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", os.Args[0], err)
	}
	line := make([]byte, 256)
	n, _ := pipe.Read(line)
	return cmd, pipe, string(line[:n])
}

// TestSecondInterruptKills: a run busy in code that ignores its context
// (kustomize builds) must still die on the second Ctrl-C.
func TestSecondInterruptKills(t *testing.T) {
	const bound = 20 * time.Second // far above a process start, below a test timeout
	cmd, pipe, _ := startChild(t, exec.Command(os.Args[0], "busy"), io.Discard)
	exited := make(chan error, 1)
	go func() {
		_, _ = io.Copy(io.Discard, pipe)
		exited <- cmd.Wait()
	}()
	// The first SIGINT cancels the context; the next ones, sent until the
	// child exits, find the default handling restored.
	deadline := time.After(bound)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for sent := 0; ; {
		select {
		case <-exited:
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
				t.Errorf("child ended with %s, want killed by SIGINT", cmd.ProcessState)
			}
			t.Logf("child killed after %d SIGINTs in %s", sent, time.Since(start))
			return
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("the child survived %d SIGINTs over %s", sent, bound)
		case <-tick.C:
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatalf("interrupting the child: %v", err)
			}
			sent++
		}
	}
}
