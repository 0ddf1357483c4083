package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSummary(t *testing.T) {
	tests := []struct {
		name    string
		results []result
		want    []string
	}{
		{"all passed, odd count", []result{
			{passed: true, green: 30 * time.Second, total: 90 * time.Second},
			{passed: true, green: 20 * time.Second, total: 80 * time.Second},
			{passed: true, green: 40 * time.Second, total: 100 * time.Second},
		}, []string{"soak: 3/3 runs passed", "green after the sync  min 20s  median 30s  max 40s", "whole run             min 1m20s  median 1m30s  max 1m40s"}},
		{"a failure is named, even count median", []result{
			{passed: true, green: 20 * time.Second, total: time.Minute},
			{passed: false, failed: []string{"TestTraffic"}},
			{passed: true, green: 30 * time.Second, total: time.Minute},
		}, []string{"soak: 2/3 runs passed", "median 25s", "soak: run 2 failed: TestTraffic"}},
		{"nothing passed", []result{{passed: false, failed: []string{"exit 1"}}}, []string{"soak: 0/1 runs passed", "soak: run 1 failed: exit 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summary(tt.results)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("summary lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestGreenLine parses the line harness/fleetenv prints when an
// environment is green (its logf time, the name padded to 11, "green in"
// and the rounded duration), built here for names and durations of every
// shape rather than copied from one run, with and without the test log's
// prefix; the line that reports a failure must not count.
func TestGreenLine(t *testing.T) {
	at := time.Date(2026, 11, 26, 6, 8, 24, 0, time.UTC).Format("15:04:05")
	for _, env := range []string{"staging", "production", "a-longer-environment"} {
		for _, took := range []time.Duration{800 * time.Millisecond, 23200 * time.Millisecond, 2*time.Minute + 3100*time.Millisecond} {
			took = took.Round(100 * time.Millisecond)
			line := fmt.Sprintf("%s %-11s green in %s", at, env, took)
			for _, shown := range []string{line, "    main_test.go:61: " + line} {
				m := greenLine.FindStringSubmatch(shown)
				if m == nil {
					t.Errorf("%q: not recognised as a green line", shown)
					continue
				}
				d, err := time.ParseDuration(m[2])
				if m[1] != env || err != nil || d != took {
					t.Errorf("%q: parsed env %q, duration %q (%v); want %s, %s", shown, m[1], m[2], err, env, took)
				}
			}
		}
	}
	failed := fmt.Sprintf("%s %-11s NOT READY after %s: %v", at, "staging", 3*time.Second, "Kustomization/flux-system/apps failed: ReconciliationFailed")
	if m := greenLine.FindStringSubmatch(failed); m != nil {
		t.Errorf("%q counted as green: %q", failed, m)
	}
}
