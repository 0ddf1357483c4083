package main

import (
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

func TestGreenLine(t *testing.T) {
	m := greenLine.FindStringSubmatch("06:08:24 production  green in 23.2s")
	if m == nil || m[1] != "production" || m[2] != "23.2s" {
		t.Fatalf("greenLine match = %q", m)
	}
}
