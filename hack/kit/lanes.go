package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// runPlan runs the stages of plan in order, except that each run of
// consecutive stages with a lane runs as lanes side by side (runLanes). It
// returns each stage's time in plan order; the first error stops the
// build, the other lane's recipes included.
func runPlan(ctx context.Context, b *builder, plan []stage) ([]timing, error) {
	var timings []timing
	for i := 0; i < len(plan); {
		j := i
		for j < len(plan) && plan[j].lane != "" {
			j++
		}
		if j == i {
			t, err := runStage(ctx, b, plan[i])
			if err != nil {
				return nil, err
			}
			timings = append(timings, t)
			i++
			continue
		}
		ts, err := runLanes(ctx, b, plan[i:j])
		if err != nil {
			return nil, err
		}
		timings = append(timings, ts...)
		i = j
	}
	return timings, nil
}

// runLanes runs stages grouped by lane: one goroutine per lane, each going
// through its stages in order. The first failing stage cancels the other
// lane and is the error returned; every lane has stopped when it returns.
func runLanes(ctx context.Context, b *builder, stages []stage) ([]timing, error) {
	var lanes []string
	byLane := map[string][]stage{}
	for _, s := range stages {
		if _, ok := byLane[s.lane]; !ok {
			lanes = append(lanes, s.lane)
		}
		byLane[s.lane] = append(byLane[s.lane], s)
	}
	done := map[string]chan struct{}{}
	for _, s := range stages {
		done[s.name] = make(chan struct{})
	}
	g, ctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	took := map[string]timing{}
	for _, lane := range lanes {
		g.Go(func() error {
			for _, s := range byLane[lane] {
				if err := waitForNeeds(ctx, s, done); err != nil {
					return err
				}
				t, err := runStage(ctx, b, s)
				if err != nil {
					return err
				}
				mu.Lock()
				took[s.name] = t
				mu.Unlock()
				close(done[s.name])
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []timing
	for _, s := range stages {
		out = append(out, took[s.name])
	}
	return out, nil
}

// waitForNeeds waits until the stages of other lanes that s needs are
// done; a need outside this run of lanes ran before it.
func waitForNeeds(ctx context.Context, s stage, done map[string]chan struct{}) error {
	for _, need := range s.needs {
		ch, ok := done[need]
		if !ok {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("stage %s (%s lane): stopped waiting for %s: %w", s.name, s.lane, need, context.Cause(ctx))
		}
	}
	return nil
}

// runStage runs one stage and times it.
func runStage(ctx context.Context, b *builder, s stage) (timing, error) {
	start := time.Now()
	if err := s.run(b, ctx); err != nil {
		if s.lane != "" {
			return timing{}, fmt.Errorf("stage %s (%s lane): %w", s.name, s.lane, err)
		}
		return timing{}, fmt.Errorf("stage %s: %w", s.name, err)
	}
	return timing{stage: s.name, lane: s.lane, took: time.Since(start)}, nil
}
