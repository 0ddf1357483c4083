package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// interrupted is the cause of the build's context when a signal stops it.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string {
	switch i.sig {
	case syscall.SIGINT:
		return "interrupted by SIGINT"
	case syscall.SIGTERM:
		return "interrupted by SIGTERM"
	case syscall.SIGHUP:
		return "interrupted by SIGHUP"
	}
	return "interrupted by " + i.sig.String()
}

// stopGrace is how long a stopped recipe's processes get to exit after
// the signal before they are killed.
const stopGrace = 20 * time.Second

// runner runs the recipes (bash recipes.sh FUNCTION ARGS...) and the other
// scripts of the kit, each in its own process group so that a signal reaches
// everything a recipe started (go build, docker, a throwaway containerd).
type runner struct {
	repo    string
	script  string // recipes.sh
	env     []string
	log     *logger
	timeout time.Duration // bound of one recipe
	// grace is how long a stopped recipe's processes get to exit after the
	// signal before they are killed (stopGrace).
	grace time.Duration
	// lock is the kit lock's open file (nil before the build takes it).
	// Every recipe process inherits it, and an flock belongs to the open
	// file, so the lock stays held until the last of them exits, even when
	// the kit itself is killed first.
	lock *os.File
}

// recipe runs one recipes.sh function, its output logged line by line
// after the stage's name.
func (r *runner) recipe(ctx context.Context, stage, fn string, args ...string) error {
	return r.execute(ctx, stage, nil, r.held(), "recipe "+fn, "bash", append([]string{r.script, fn}, args...)...)
}

// query runs one recipes.sh function and returns its standard output,
// trimmed; its standard error is logged.
func (r *runner) query(ctx context.Context, stage, fn string, args ...string) (string, error) {
	var out bytes.Buffer
	err := r.execute(ctx, stage, &out, r.held(), "recipe "+fn, "bash", append([]string{r.script, fn}, args...)...)
	return strings.TrimSpace(out.String()), err
}

// held is what a recipe inherits besides its standard streams: the kit
// lock's file, once the build holds it.
func (r *runner) held() []*os.File {
	if r.lock == nil {
		return nil
	}
	return []*os.File{r.lock}
}

// command runs name with args in the repository with the kit's
// environment, without the lock: docker-engine.sh may start a dockerd that
// outlives the build, and that must not keep the lock held. what names it
// in errors.
func (r *runner) command(ctx context.Context, stage string, stdout io.Writer, what, name string, args ...string) error {
	return r.execute(ctx, stage, stdout, nil, what, name, args...)
}

// execute runs name with args in its own process group, extra as its
// descriptors from 3 on, and waits for it.
func (r *runner) execute(ctx context.Context, stage string, stdout io.Writer, extra []*os.File, what, name string, args ...string) error {
	ctx, cancel := context.WithTimeoutCause(ctx, r.timeout, fmt.Errorf("%s took longer than %s", what, r.timeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = r.repo
	cmd.Env = r.env
	cmd.ExtraFiles = extra
	logw := r.log.lines(stage)
	defer logw.Flush()
	cmd.Stderr = logw
	cmd.Stdout = logw
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		sig := syscall.SIGTERM
		if in := (interrupted{}); errors.As(context.Cause(ctx), &in) {
			sig = in.sig
		}
		return syscall.Kill(-cmd.Process.Pid, sig)
	}
	cmd.WaitDelay = r.grace
	err := cmd.Run()
	if ctx.Err() != nil {
		if cmd.Process != nil {
			// Whatever ignored the signal does not outlive the build.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		return fmt.Errorf("%s stopped: %w", what, context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("%s failed: %w (its output is above)", what, err)
	}
	return nil
}

// kitEnv is the environment of the recipes and of the go commands the kit
// runs: the caller's, with the kit's variables and the versions set, and
// the Go settings the kit's builds have always used (modules resolved as
// needed, static binaries, the machine's toolchain).
func kitEnv(base []string, kitDir, debianImage string, versions []version) []string {
	set := map[string]string{
		"KIT_DIR":      kitDir,
		"KIT_LABEL":    hashLabel,
		"DEBIAN_IMAGE": debianImage,
		"GOFLAGS":      "-mod=mod",
		"CGO_ENABLED":  "0",
		"GOTOOLCHAIN":  "local",
	}
	for _, v := range versions {
		set[v.Name] = v.Value
	}
	var env []string
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := set[name]; !ok {
			env = append(env, kv)
		}
	}
	for name, value := range set {
		env = append(env, name+"="+value)
	}
	slices.Sort(env)
	return env
}

// removePartials removes this process's unfinished outputs
// (<final path>.partial.<pid>, at most two levels under the kit directory),
// never another build's.
func removePartials(kitDir string, pid int) error {
	suffix := fmt.Sprintf(".partial.%d", pid)
	return removeUnder(kitDir, func(name string) bool { return strings.HasSuffix(name, suffix) })
}

// removeDeadPartials removes every build's unfinished outputs. Only a build
// holding the lock may call it: every process of a build holds the lock
// until it exits, so then no other build is alive, and what is left
// unfinished belongs to builds that died.
func removeDeadPartials(kitDir string) error {
	return removeUnder(kitDir, isPartial)
}

// isPartial tells the name of an unfinished output: <final name>.partial.<pid>.
func isPartial(name string) bool {
	i := strings.LastIndex(name, ".partial.")
	if i <= 0 {
		return false
	}
	pid := name[i+len(".partial."):]
	return pid != "" && strings.Trim(pid, "0123456789") == ""
}

// removeUnder removes the entries at most two levels under kitDir (where
// the kit puts its outputs) whose names match.
func removeUnder(kitDir string, match func(name string) bool) error {
	var errs []error
	var visit func(dir string, depth int)
	visit = func(dir string, depth int) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s for unfinished outputs: %w", dir, err))
			return
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			switch {
			case match(e.Name()):
				if err := os.RemoveAll(path); err != nil {
					errs = append(errs, fmt.Errorf("removing the unfinished output %s: %w", path, err))
				}
			case e.IsDir() && depth < 2:
				visit(path, depth+1)
			}
		}
	}
	visit(kitDir, 1)
	return errors.Join(errs...)
}
