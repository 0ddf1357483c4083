package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/validate"
)

func TestRunExitCodes(t *testing.T) {
	const strictVars = "../../harness/validate/testdata/strict-vars"
	t.Setenv("FLEET_DIR", "")
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"repository fleet", []string{"-q"}, 0, "validated 2 environments"},
		{"repository fleet, offline base and target", []string{"-q", "-flux-version", "v2.7.3,v2.9.5"}, 0, "for Flux v2.7.3, v2.9.5 in"},
		{"broken fleet", []string{"-q", "-fleet", "../../fixtures/invalid/dependson-missing"}, 1, "FAIL staging: clusters/staging/apps.yaml"},
		{"lenient base Flux", []string{"-q", "-fleet", strictVars, "-flux-version", "v2.7.3"}, 0, "for Flux v2.7.3 in"},
		{"strict target Flux", []string{"-q", "-fleet", strictVars, "-flux-version", "v2.7.3,v2.9.5"}, 1,
			"FAIL staging: apps/settings.yaml: Kustomization/flux-system/apps: ${team_owner} in ConfigMap/flux-system/settings has no value"},
		{"Flux without a table", []string{"-q", "-flux-version", "v2.6.0"}, 2, ""},
		{"unknown flag", []string{"-nope"}, 2, ""},
		{"extra argument", []string{"staging"}, 2, ""},
		{"missing fleet", []string{"-fleet", "../../does-not-exist"}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, stdout.String())
			}
		})
	}
}

// TestTimeout: the run ends at -timeout with an error naming the bound and
// the fleet, even when the validation ignores its context (kustomize does).
func TestTimeout(t *testing.T) {
	t.Setenv("FLEET_DIR", "")
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"expired", []string{"-q", "-fleet", "../../fixtures/fleets/basic", "-timeout", "1ns"},
			"validate: validating fleet ../../fixtures/fleets/basic took longer than -timeout 1ns\n"},
		{"zero", []string{"-q", "-timeout", "0s"}, "validate: -timeout 0s: want a positive duration\n"},
		{"negative", []string{"-q", "-timeout", "-1m"}, "validate: -timeout -1m0s: want a positive duration\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2\nstdout:\n%s", code, stdout.String())
			}
			if !strings.HasPrefix(stderr.String(), tc.stderr) {
				t.Errorf("stderr = %q, want it to start with %q", stderr.String(), tc.stderr)
			}
		})
	}
	t.Run("validation ignoring its context", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		start := time.Now()
		_, err := within(context.Background(), "fleet", 10*time.Millisecond, func(context.Context) (*validate.Result, error) {
			<-release // a build that never looks at ctx
			return &validate.Result{}, nil
		})
		const want = "validating fleet fleet took longer than -timeout 10ms"
		if err == nil || err.Error() != want {
			t.Errorf("within = %v, want %q", err, want)
		}
		// Measured against a generous bound: the machine is shared.
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("within returned after %s, the bound was 10ms", took)
		}
	})
}
