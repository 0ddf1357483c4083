package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unreachableFleet writes a fleet whose only HelmRelease uses a Helm
// repository on a closed loopback port: one finding, offline, at once.
func unreachableFleet(t *testing.T) (dir, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	_ = l.Close()
	dir = t.TempDir()
	files := map[string]string{
		"clusters/staging/apps.yaml": `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 1h
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
`,
		"apps/release.yaml": `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: flux-system}
spec:
  interval: 1h
  url: http://` + addr + `
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: app, namespace: flux-system}
spec:
  interval: 1h
  chart:
    spec:
      chart: app
      version: "1.x"
      sourceRef: {kind: HelmRepository, name: charts}
`,
	}
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, addr
}

func TestRunExitCodes(t *testing.T) {
	t.Setenv("FLEET_DIR", "")
	cache := t.TempDir()
	fleet, addr := unreachableFleet(t)
	cases := []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		{"fleet without HelmReleases", []string{"-fleet", "../../fixtures/fleets/basic"}, 0,
			"preflighted 2 environments, 0 HelmReleases, 0 images in", ""},
		{"unreachable source", []string{"-fleet", fleet}, 1,
			"FAIL staging: apps/release.yaml: HelmRepository/flux-system/charts: source unreachable: http://" + addr +
				"/index.yaml: dial tcp " + addr + ": connect: connection refused\n", ""},
		{"one environment", []string{"-fleet", "../../fixtures/fleets/basic", "-env", "staging"}, 0,
			"preflighted 1 environments, 0 HelmReleases", ""},
		{"unknown environment", []string{"-fleet", fleet, "-env", "qa"}, 2, "", `environment "qa" is not in`},
		{"unknown flag", []string{"-nope"}, 2, "", "flag provided but not defined: -nope"},
		{"extra argument", []string{"staging"}, 2, "", `unexpected arguments ["staging"]`},
		{"missing fleet", []string{"-fleet", "../../does-not-exist"}, 2, "", "preflight: resolving fleet directory ../../does-not-exist"},
		{"bad kube version", []string{"-fleet", fleet, "-kube-version", "banana"}, 2, "",
			`preflight: -kube-version "banana": want a Kubernetes version such as v1.37.2: could not parse "banana" as version` + "\n"},
		{"zero timeout", []string{"-fleet", fleet, "-timeout", "0"}, 2, "", "preflight: -timeout 0s: want a positive duration such as 3m\n"},
		{"timeout ran out", []string{"-fleet", "../../fixtures/fleets/basic", "-timeout", "1ns"}, 2, "", "preflight: -timeout 1ns ran out while "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"-cache", cache}, tc.args...), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.err) {
				t.Errorf("stderr lacks %q:\n%s", tc.err, stderr.String())
			}
		})
	}
}
