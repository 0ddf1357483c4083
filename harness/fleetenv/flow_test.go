package fleetenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func stepOf(name string, err error) Step {
	return Step{Name: name, run: func(context.Context, *Run) error { return err }}
}

func TestRunStepLinesTimingsAndFailure(t *testing.T) {
	var log bytes.Buffer
	r := New(Options{}, &log)
	if err := r.runStep(t.Context(), stepOf("fine", nil)); err != nil {
		t.Fatal(err)
	}
	if r.failed.Load() {
		t.Fatal("a step that passed marked the run failed")
	}
	err := r.runStep(t.Context(), stepOf("broken", errors.New("boom")))
	if err == nil || err.Error() != "broken: boom" {
		t.Fatalf("error = %v, want %q", err, "broken: boom")
	}
	if !r.failed.Load() {
		t.Error("a failed step did not mark the run failed (keep policy)")
	}
	// The lines the interrupt scenario and the bench parse.
	for _, line := range []string{
		`^\d\d:\d\d:\d\d step fine \.\.\.$`,
		`^\d\d:\d\d:\d\d step fine {25}done in \S+$`,
		`^\d\d:\d\d:\d\d step broken \.\.\.$`,
		`^\d\d:\d\d:\d\d step broken {23}FAILED after \S+$`,
	} {
		if !regexp.MustCompile(`(?m)` + line).MatchString(log.String()) {
			t.Errorf("log lacks a line matching %s:\n%s", line, log.String())
		}
	}
	var names []string
	for _, st := range r.Timings() {
		names = append(names, st.Name)
	}
	if !slices.Equal(names, []string{"fine", "broken"}) || r.Timings()[1].Err == nil {
		t.Errorf("timings = %+v, want fine, then broken with its error", r.Timings())
	}
}

// A step ended by its context says why the context ended.
func TestRunStepSaysWhyTheContextEnded(t *testing.T) {
	r := New(Options{}, io.Discard)
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("received interrupt"))
	err := r.runStep(ctx, Step{Name: "wait", run: func(ctx context.Context, _ *Run) error { return ctx.Err() }})
	if err == nil || err.Error() != "wait: context canceled (received interrupt)" {
		t.Fatalf("error = %v, want the step, the context's error and its cause", err)
	}
}

func TestStepWithoutBody(t *testing.T) {
	r := New(Options{}, io.Discard)
	err := r.runStep(t.Context(), Step{Name: "made by hand"})
	if err == nil || !strings.Contains(err.Error(), `step "made by hand" has no body`) {
		t.Fatalf("error = %v, want one naming the step without a body", err)
	}
}

// The e2e-framework function of a step runs it with the run in the context
// the features receive.
func TestStepAsEnvFunc(t *testing.T) {
	r := New(Options{}, io.Discard)
	var seen *Run
	ctx, err := r.Step(Step{Name: "look", run: func(ctx context.Context, _ *Run) error {
		seen = From(ctx)
		return nil
	}})(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if seen != r || From(ctx) != r {
		t.Errorf("the step saw run %p and returned a context with %p, want %p", seen, From(ctx), r)
	}
	if _, err := r.Step(stepOf("broken", errors.New("boom")))(t.Context(), nil); err == nil || err.Error() != "broken: boom" {
		t.Errorf("error = %v, want broken: boom", err)
	}
}

func TestBringUp(t *testing.T) {
	names := func(o Options) []string {
		var out []string
		for _, s := range BringUp(o) {
			if s.run == nil {
				t.Errorf("step %q has no body", s.Name)
			}
			out = append(out, s.Name)
		}
		return out
	}
	want := []string{"offline checks", "chart server", "pre-flight", "clusters", "servers", "flux install", "sync", "wait"}
	if got := names(Options{}); !slices.Equal(got, want) {
		t.Errorf("BringUp = %q, want %q", got, want)
	}
	if got := names(Options{Base: "v1"}); !slices.Equal(got, append(want, "upgrade")) {
		t.Errorf("BringUp with a base = %q, want the upgrade last", got)
	}
}

// Before the servers step nothing is served: the steps and calls that need
// the git server say so instead of failing on a nil server.
func TestNothingServedYet(t *testing.T) {
	r := New(Options{Envs: []string{"staging"}}, io.Discard)
	if _, err := r.Upgrade(t.Context(), ""); err == nil || !strings.Contains(err.Error(), "nothing is served yet") {
		t.Errorf("Upgrade: %v, want nothing is served yet", err)
	}
	if _, err := r.Publisher().Republish(t.Context()); err == nil || !strings.Contains(err.Error(), "nothing is served yet") {
		t.Errorf("Republish: %v, want nothing is served yet", err)
	}
	if err := r.runStep(t.Context(), Sync()); err == nil || err.Error() != "sync: nothing is served: the servers step did not run" {
		t.Errorf("sync: %v", err)
	}
	if err := r.runStep(t.Context(), Wait()); err == nil || err.Error() != "wait: environment staging has no cluster" {
		t.Errorf("wait: %v", err)
	}
	if err := r.Down(t.Context()); err != nil {
		t.Errorf("Down of a run that created nothing: %v", err)
	}
}

func TestFuture(t *testing.T) {
	release := make(chan struct{})
	f := startFuture(t.Context(), func(ctx context.Context) (string, error) {
		<-release
		return "10.0.0.1:6443", nil
	})
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("the install gave up"))
	if _, err := f.wait(ctx); err == nil || err.Error() != "the install gave up" {
		t.Errorf("wait on an ended context = %v, want its cause", err)
	}
	close(release)
	got, err := f.wait(t.Context())
	if err != nil || got != "10.0.0.1:6443" {
		t.Errorf("wait = %q, %v", got, err)
	}
}

// Work stopped by its own context says why.
func TestFutureErrorCarriesCause(t *testing.T) {
	ctx, cancel := context.WithTimeoutCause(t.Context(), time.Millisecond, errors.New("staging: the Service network did not finish"))
	defer cancel()
	f := startFuture(ctx, func(ctx context.Context) (struct{}, error) {
		<-ctx.Done()
		return struct{}{}, ctx.Err()
	})
	_, err := f.wait(t.Context())
	if err == nil || err.Error() != "context deadline exceeded (staging: the Service network did not finish)" {
		t.Errorf("error = %v, want the context's error with its cause", err)
	}
}
