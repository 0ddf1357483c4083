// Package cli is the skeleton the commands under hack/ share: a context
// that Ctrl-C cancels, strict flag parsing, one error line per failure and
// the same exit codes, so each command's main.go holds only its own work.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

// Exit codes of the commands: a caller (make, CI) tells "the fleet has
// problems" from "the command could not judge it".
const (
	ExitClean    = 0 // nothing found
	ExitFindings = 1 // the command ran and found problems
	ExitError    = 2 // bad usage, or the input could not be loaded
)

// RunFunc is a command's body: it reads args, writes to stdout and stderr
// and returns the exit code, so tests call it without a process.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Main runs a command with the process's arguments and streams, its
// context cancelled by Ctrl-C so that network waits end, and exits with
// the code run returns. A second Ctrl-C kills the process.
func Main(run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	// Once the first Ctrl-C has cancelled ctx, restore the default handling:
	// work that ignores ctx (kustomize builds) must not make the process deaf.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Command is one invocation: its name (the prefix of its error lines),
// its flags and where it writes.
type Command struct {
	Name   string
	Flags  *flag.FlagSet
	Stdout io.Writer
	Stderr io.Writer
}

// New returns a command whose flag errors and usage go to stderr.
func New(name string, stdout, stderr io.Writer) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &Command{Name: name, Flags: fs, Stdout: stdout, Stderr: stderr}
}

// Parse parses args into the command's flags. It reports false when the
// caller must exit with ExitError: a bad flag (the flag package has printed
// why and the usage), -h, or a positional argument, which no command takes
// and which usually means a flag was mistyped.
func (c *Command) Parse(args []string) bool {
	if err := c.Flags.Parse(args); err != nil {
		return false
	}
	if c.Flags.NArg() > 0 {
		fmt.Fprintf(c.Stderr, "%s: unexpected arguments %q\n", c.Name, c.Flags.Args())
		c.Flags.Usage()
		return false
	}
	return true
}

// Error prints err as the command's one error line — prefixed with its
// name unless err already starts with it — followed by hint, what the user
// can do about it, in parentheses when not empty; it returns ExitError.
func (c *Command) Error(err error, hint string) int {
	msg := err.Error()
	if !strings.HasPrefix(msg, c.Name+": ") {
		msg = c.Name + ": " + msg
	}
	if hint != "" {
		msg += " (" + hint + ")"
	}
	fmt.Fprintln(c.Stderr, msg)
	return ExitError
}

// Result is the exit code of a run that completed: ExitClean when it found
// nothing, else ExitFindings.
func Result(clean bool) int {
	if clean {
		return ExitClean
	}
	return ExitFindings
}

// List splits a comma-separated flag value (-env a,b) into its items,
// spaces around them trimmed and empty ones dropped: an empty flag is an
// empty list, which commands read as "all".
func List(flag string) []string {
	var items []string
	for _, item := range strings.Split(flag, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
