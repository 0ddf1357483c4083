package gitserver

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest"
)

// TestIntegrationReachableFromKindNode serves on the kind network gateway
// and fetches the ref advertisement from inside a real kind node, as
// source-controller will. It uses the offline kit profile.
func TestIntegrationReachableFromKindNode(t *testing.T) {
	requireGit(t)
	kit := kindtest.Require(t)
	c := kit.Cluster(t, "hx-gitserver")
	ctx := t.Context()
	gateway, err := cluster.HostAddress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, Options{Addr: gateway, SourceDir: fixtureRepo(t), Log: cluster.LogfWriter(t.Logf)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	user, pass := s.Credentials()
	node := c.Name + "-control-plane"
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
	outside := strings.TrimSuffix(s.URL(), "/fleet.git") + "/fleet.git/%2e%2e/%2e%2e/info/refs?service=git-upload-pack"
	if code := curl("-u", user+":"+pass, "-o", "/dev/null", "-w", "%{http_code}", outside); code != "404" {
		t.Errorf("a path outside the repository from the node: HTTP %s, want 404", code)
	}
	t.Logf("%s reachable from node %s (%.1fs)", s.URL(), node, time.Since(start).Seconds())
}
