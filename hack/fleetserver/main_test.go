package main

import (
	"os"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/clusterserver"
)

// TestRefusesEveryInterface: the server listens on the pod's own IP only,
// never on an unspecified address, and says which variable is wrong.
func TestRefusesEveryInterface(t *testing.T) {
	for _, ip := range []string{"", "0.0.0.0", "::", "pod"} {
		t.Setenv(clusterserver.EnvPodIP, ip)
		err := run(t.Context())
		if err == nil || !strings.Contains(err.Error(), clusterserver.EnvPodIP+"=") {
			t.Errorf("%s=%q: run = %v, want a refusal naming %s", clusterserver.EnvPodIP, ip, err, clusterserver.EnvPodIP)
		}
	}
}

// TestRequiresCredentials: a missing credential stops the server before it
// listens, naming the variable, and the others are taken out of the
// environment all the same.
func TestRequiresCredentials(t *testing.T) {
	t.Setenv(clusterserver.EnvPodIP, "127.0.0.1")
	t.Setenv("TMPDIR", t.TempDir())
	t.Setenv(clusterserver.EnvGitUser, "u")
	t.Setenv(clusterserver.EnvGitPass, "planted-pass")
	t.Setenv(clusterserver.EnvChartUser, "c")
	t.Setenv(clusterserver.EnvChartPass, "p")
	t.Setenv(clusterserver.EnvAdminToken, "")
	err := run(t.Context())
	if err == nil || !strings.Contains(err.Error(), clusterserver.EnvAdminToken+" is empty") {
		t.Fatalf("run = %v, want %s named as empty", err, clusterserver.EnvAdminToken)
	}
	if v, ok := os.LookupEnv(clusterserver.EnvGitPass); ok {
		t.Errorf("%s is still in the environment (%q): git processes would inherit it", clusterserver.EnvGitPass, v)
	}
}
