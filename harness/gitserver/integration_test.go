package gitserver

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
)

// TestIntegrationReachableFromKindNode serves on the kind network gateway
// and fetches the ref advertisement from inside a real kind node, as
// source-controller will. It uses the offline kit profile.
func TestIntegrationReachableFromKindNode(t *testing.T) {
	requireGit(t)
	if testing.Short() {
		t.Skip("creates a real kind cluster; skipped with -short")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skipf("docker info failed (%v): no Docker engine for kind", err)
	}
	nodeImage := os.Getenv("FLEET_NODE_IMAGE")
	if nodeImage == "" {
		t.Skip("FLEET_NODE_IMAGE is unset: source the offline kit profile to run real-kind tests")
	}
	var kindConfig []byte
	if path := os.Getenv("FLEET_KIND_CONFIG"); path != "" {
		var err error
		if kindConfig, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	c, err := cluster.Create(ctx, cluster.Spec{
		Name: "hx-gitserver", NodeImage: nodeImage, KindConfig: kindConfig,
		WorkDir: t.TempDir(), Log: cluster.LogfWriter(t.Logf),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Delete(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	gateway, err := cluster.HostAddress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, Options{Addr: gateway, SourceDir: fixtureRepo(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	user, pass := s.Credentials()
	node := "hx-gitserver-control-plane"
	refs := s.URL() + "/info/refs?service=git-upload-pack"

	curl := func(args ...string) string {
		out, err := exec.Command("docker", append([]string{"exec", node, "curl", "-s", "--max-time", "10"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl from the node: %v\n%s", err, out)
		}
		return string(out)
	}
	start := time.Now()
	if code := curl("-o", "/dev/null", "-w", "%{http_code}", refs); code != "401" {
		t.Errorf("without credentials: HTTP %s, want 401", code)
	}
	if body := curl("-u", user+":"+pass, refs); !strings.Contains(body, s.Revision()+" refs/heads/main") {
		t.Errorf("ref advertisement from the node lacks %s refs/heads/main:\n%s", s.Revision(), body)
	}
	t.Logf("%s reachable from node %s (%.1fs)", s.URL(), node, time.Since(start).Seconds())
}
