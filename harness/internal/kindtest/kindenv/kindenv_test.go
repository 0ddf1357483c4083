package kindenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// outcome records what Require did to a test instead of doing it.
type outcome struct {
	testing.TB
	skipped, failed string
}

type stopped struct{}

func (o *outcome) Helper() {}
func (o *outcome) Skip(args ...any) {
	o.skipped = fmt.Sprint(args...)
	panic(stopped{})
}
func (o *outcome) Skipf(format string, args ...any) {
	o.skipped = fmt.Sprintf(format, args...)
	panic(stopped{})
}
func (o *outcome) Fatalf(format string, args ...any) {
	o.failed = fmt.Sprintf(format, args...)
	panic(stopped{})
}

func requireOutcome(t *testing.T) (o *outcome) {
	o = &outcome{TB: t}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopped); !ok {
				panic(r)
			}
		}
	}()
	Require(o)
	return o
}

// Without a Docker engine (no docker binary on PATH) Require skips, except
// under CI=true, where it fails.
func TestRequireWithoutDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("Require skips everything under -short before looking for Docker")
	}
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		ci       string
		wantSkip bool
	}{
		{"", true},
		{"false", true},
		{"true", false},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			o := requireOutcome(t)
			msg := o.failed
			if tc.wantSkip {
				msg = o.skipped
				if o.failed != "" {
					t.Errorf("failed (%s), want a skip", o.failed)
				}
			} else if o.skipped != "" {
				t.Errorf("skipped (%s), want a failure", o.skipped)
			}
			if !strings.HasPrefix(msg, "docker info failed (") || !strings.Contains(msg, "no Docker engine for kind") {
				t.Errorf("message %q does not say docker info failed", msg)
			}
			if !tc.wantSkip && !strings.HasSuffix(msg, "(CI=true: real-kind tests must run)") {
				t.Errorf("failure %q does not say why CI fails", msg)
			}
		})
	}
}

// fakeDockerWithoutImage puts a docker on PATH whose engine answers but
// has no image.
func fakeDockerWithoutImage(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\ncase \"$1\" in\ninfo) exit 0 ;;\nimage) echo 'Error response from daemon: No such image: fleet-kit/node:gone' >&2; exit 1 ;;\nesac\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
}

// An unset profile or a node image the engine lacks skips, except under
// CI=true, where it fails: a CI run must not pass by skipping.
func TestRequireWithoutKit(t *testing.T) {
	if testing.Short() {
		t.Skip("Require skips everything under -short before looking at the kit")
	}
	fakeDockerWithoutImage(t)
	kindConfig := filepath.Join(t.TempDir(), "kind.yaml")
	if err := os.WriteFile(kindConfig, []byte("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(t.TempDir(), "profile.env")
	lines := kitprofile.NodeImageVar + "=fleet-kit/node:gone\n" + kitprofile.KindConfigVar + "=" + kindConfig + "\n"
	if err := os.WriteFile(profile, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, kit string
		want      string
	}{
		{"profile unset", "", "the offline kit profile has no " + kitprofile.NodeImageVar + ": set " + kitprofile.PathVar},
		{"node image not in the engine", profile, "node image fleet-kit/node:gone (FLEET_NODE_IMAGE) is not in the Docker engine"},
	} {
		for _, ci := range []string{"", "true"} {
			t.Run(tc.name+"/CI="+ci, func(t *testing.T) {
				t.Setenv("CI", ci)
				t.Setenv(kitprofile.PathVar, tc.kit)
				t.Setenv(kitprofile.NodeImageVar, "")
				t.Setenv(kitprofile.KindConfigVar, "")
				o := requireOutcome(t)
				msg, other := o.skipped, o.failed
				if ci == "true" {
					msg, other = o.failed, o.skipped
				}
				if other != "" || !strings.HasPrefix(msg, tc.want) {
					t.Errorf("skipped %q, failed %q; want %s with %q", o.skipped, o.failed, map[string]string{"": "a skip", "true": "a failure"}[ci], tc.want)
				}
			})
		}
	}
}
