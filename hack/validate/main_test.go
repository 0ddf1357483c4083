package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
