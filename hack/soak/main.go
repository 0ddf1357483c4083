// Command soak runs the e2e suite N times on fresh clusters and prints how
// many runs passed and the min/median/max time to green: a flake shows up
// here before it shows up in a nightly.
//
//	go run ./hack/soak [-n 10] [-timeout 20m]
//
// The fleet, environments and kit profile come from the usual E2E_*
// variables (make soak sets E2E_KIT to the kit's profile). Exit status 0 when every
// run passed, 1 otherwise, 2 on usage errors.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// result is one run of the suite.
type result struct {
	passed bool
	// green is the longest "<env> green in <d>" the run printed: the time
	// from the start of the wait to every environment Ready.
	green time.Duration
	// setup is the time from start to the last environment green.
	total  time.Duration
	failed []string // "--- FAIL: TestX" lines
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 10, "number of runs")
	timeout := fs.Duration("timeout", 20*time.Minute, "bound of one run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n < 1 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "soak: want -n >= 1 and no arguments")
		return 2
	}
	dir, err := os.MkdirTemp("", "flux-fleet-soak-")
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "e2e.test")
	// -trimpath as make test builds the tests: the compiles are shared.
	build := exec.CommandContext(ctx, "go", "test", "-trimpath", "-c", "-o", bin, "./e2e/")
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(stderr, "soak: building the e2e suite:", err)
		return 2
	}
	var results []result
	for i := 1; i <= *n && ctx.Err() == nil; i++ {
		fmt.Fprintf(stdout, "=== soak run %d/%d\n", i, *n)
		r := once(ctx, bin, *timeout, stdout)
		results = append(results, r)
		status := "PASS"
		if !r.passed {
			status = "FAIL " + strings.Join(r.failed, ", ")
		}
		fmt.Fprintf(stdout, "=== soak run %d/%d: %s in %s (green %s after the sync)\n", i, *n, status, r.total.Round(100*time.Millisecond), r.green.Round(100*time.Millisecond))
	}
	fmt.Fprint(stdout, summary(results))
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "soak: interrupted")
		return 130
	}
	for _, r := range results {
		if !r.passed {
			return 1
		}
	}
	return 0
}

var (
	greenLine = regexp.MustCompile(`\s(\S+)\s+green in (\S+)$`)
	failLine  = regexp.MustCompile(`^--- FAIL: (\S+)`)
)

// once runs the compiled suite; an interrupt reaches it as SIGINT so that
// its own teardown deletes the clusters.
func once(ctx context.Context, bin string, timeout time.Duration, log io.Writer) result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "-test.v", "-test.count=1", "-test.timeout", timeout.String())
	cmd.Dir = "e2e"
	cmd.Env = append(os.Environ(), "E2E_KEEP=never", "E2E_REUSE=false")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 3 * time.Minute
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{failed: []string{err.Error()}}
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return result{failed: []string{err.Error()}}
	}
	var r result
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		if m := greenLine.FindStringSubmatch(line); m != nil && r.total == 0 {
			if d, err := time.ParseDuration(m[2]); err == nil {
				r.green = max(r.green, d)
			}
		}
		if strings.HasPrefix(line, "PASS") && r.total == 0 {
			r.total = time.Since(start)
		}
		if m := failLine.FindStringSubmatch(line); m != nil {
			r.failed = append(r.failed, m[1])
		}
	}
	err = cmd.Wait()
	if r.total == 0 {
		r.total = time.Since(start)
	}
	var exit *exec.ExitError
	r.passed = err == nil
	if !r.passed && len(r.failed) == 0 {
		if errors.As(err, &exit) {
			r.failed = append(r.failed, fmt.Sprintf("exit %d", exit.ExitCode()))
		} else {
			r.failed = append(r.failed, err.Error())
		}
	}
	return r
}

// summary prints passes and min/median/max of the time to green and of the
// whole run, over the runs that passed.
func summary(results []result) string {
	var green, total []time.Duration
	passed := 0
	for _, r := range results {
		if r.passed {
			passed++
			green = append(green, r.green)
			total = append(total, r.total)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d/%d runs passed\n", passed, len(results))
	if passed > 0 {
		fmt.Fprintf(&b, "soak: green after the sync  %s\n", stats(green))
		fmt.Fprintf(&b, "soak: whole run             %s\n", stats(total))
	}
	for i, r := range results {
		if !r.passed {
			fmt.Fprintf(&b, "soak: run %d failed: %s\n", i+1, strings.Join(r.failed, ", "))
		}
	}
	return b.String()
}

// stats renders min/median/max.
func stats(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	median := s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	r := func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
	return fmt.Sprintf("min %s  median %s  max %s", r(s[0]), r(median), r(s[len(s)-1]))
}
