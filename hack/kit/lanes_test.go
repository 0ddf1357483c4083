package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// events records what the fake stages did, in order.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// TestRunPlanLanes: the lanes' stages run side by side (each waits for a
// stage of the other lane to have started), each lane in its own order,
// between the stages run on their own; timings come back in plan order.
func TestRunPlanLanes(t *testing.T) {
	var ev events
	aStarted, bStarted := make(chan struct{}), make(chan struct{})
	waitFor := func(ctx context.Context, ch chan struct{}) error {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("the other lane never started: the lanes ran one after the other")
		}
	}
	step := func(name string) func(*builder, context.Context) error {
		return func(*builder, context.Context) error { ev.add(name); return nil }
	}
	plan := []stage{
		{name: "first", run: step("first")},
		{name: "a1", lane: "a", run: func(_ *builder, ctx context.Context) error {
			ev.add("a1")
			close(aStarted)
			return waitFor(ctx, bStarted)
		}},
		{name: "b1", lane: "b", run: func(_ *builder, ctx context.Context) error {
			ev.add("b1")
			close(bStarted)
			return waitFor(ctx, aStarted)
		}},
		{name: "a2", lane: "a", run: step("a2")},
		{name: "last", run: step("last")},
	}
	timings, err := runPlan(context.Background(), nil, plan)
	if err != nil {
		t.Fatal(err)
	}
	got := ev.list()
	if got[0] != "first" || got[len(got)-1] != "last" || slices.Index(got, "a1") > slices.Index(got, "a2") {
		t.Errorf("stages ran in the order %v", got)
	}
	var names []string
	for _, tm := range timings {
		names = append(names, tm.stage+"/"+tm.lane)
	}
	if want := []string{"first/", "a1/a", "b1/b", "a2/a", "last/"}; !slices.Equal(names, want) {
		t.Errorf("timings for %v, want %v", names, want)
	}
}

// TestRunPlanLaneFails: a failing stage stops the other lane (its context
// is cancelled) and nothing after the lanes runs; the error names the
// stage and its lane.
func TestRunPlanLaneFails(t *testing.T) {
	var ev events
	plan := []stage{
		{name: "compile", lane: "a", run: func(_ *builder, ctx context.Context) error {
			select {
			case <-ctx.Done():
				ev.add("compile stopped")
				return ctx.Err()
			case <-time.After(10 * time.Second):
				ev.add("compile finished")
				return nil
			}
		}},
		{name: "apt", lane: "b", run: func(*builder, context.Context) error { return errors.New("no mirror") }},
		{name: "after", run: func(*builder, context.Context) error { ev.add("after"); return nil }},
	}
	start := time.Now()
	_, err := runPlan(context.Background(), nil, plan)
	if err == nil || err.Error() != "stage apt (b lane): no mirror" {
		t.Errorf("err = %v, want the failing stage's error", err)
	}
	if got := ev.list(); !slices.Equal(got, []string{"compile stopped"}) {
		t.Errorf("events %v, want the other lane stopped and nothing after", got)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("runPlan returned after %s: it waited for the other lane instead of stopping it", took)
	}
}

// TestKitLanes: the kit's stages between the Docker engine and the
// preloaded node image (which uses what both lanes make) run in two lanes;
// a stage of the workloads lane that builds on the Debian base image waits
// for it.
func TestKitLanes(t *testing.T) {
	var seq []string
	lane := map[string]string{}
	for _, s := range stages() {
		lane[s.name] = s.lane
		if s.lane == "" {
			seq = append(seq, s.name)
		} else if !strings.HasSuffix(strings.Join(seq, " "), "lanes") {
			seq = append(seq, "lanes")
		}
	}
	if want := []string{"docker-engine", "lanes", "node-image-preloaded"}; !slices.Equal(seq, want) {
		t.Errorf("stage sequence %v, want %v", seq, want)
	}
	for _, s := range stages() {
		for _, a := range s.artifacts {
			if slices.Contains(a.after, "debian-base") && s.lane != lane["debian-base"] && !slices.Contains(s.needs, "debian-base") {
				t.Errorf("stage %s (%s lane) builds %s on the Debian base image without waiting for it", s.name, s.lane, a.name)
			}
		}
		for _, n := range s.needs {
			if lane[n] == "" || lane[n] == s.lane {
				t.Errorf("stage %s needs %s, which is not a stage of another lane", s.name, n)
			}
		}
	}
}

// TestRunPlanNeeds: a stage waits for the stage of another lane it needs.
func TestRunPlanNeeds(t *testing.T) {
	var ev events
	plan := []stage{
		{name: "debian", lane: "a", run: func(*builder, context.Context) error {
			time.Sleep(50 * time.Millisecond)
			ev.add("debian")
			return nil
		}},
		{name: "nginx", lane: "b", needs: []string{"debian"}, run: func(*builder, context.Context) error { ev.add("nginx"); return nil }},
	}
	if _, err := runPlan(context.Background(), nil, plan); err != nil {
		t.Fatal(err)
	}
	if got := ev.list(); !slices.Equal(got, []string{"debian", "nginx"}) {
		t.Errorf("events %v, want nginx after debian", got)
	}
}
