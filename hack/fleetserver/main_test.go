package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/clusterserver/backend"
)

// TestRefusesEveryInterface: the server listens on the pod's own IP only,
// never on an unspecified address, and says which variable is wrong.
func TestRefusesEveryInterface(t *testing.T) {
	for _, ip := range []string{"", "0.0.0.0", "::", "pod"} {
		t.Setenv(backend.EnvPodIP, ip)
		err := run(t.Context())
		if err == nil || !strings.Contains(err.Error(), backend.EnvPodIP+"=") {
			t.Errorf("%s=%q: run = %v, want a refusal naming %s", backend.EnvPodIP, ip, err, backend.EnvPodIP)
		}
	}
}

// TestRequiresCredentials: a missing credential stops the server before it
// listens, naming the variable, and the others are taken out of the
// environment all the same.
func TestRequiresCredentials(t *testing.T) {
	t.Setenv(backend.EnvPodIP, "127.0.0.1")
	t.Setenv("TMPDIR", t.TempDir())
	t.Setenv(backend.EnvGitUser, "u")
	t.Setenv(backend.EnvGitPass, "planted-pass")
	t.Setenv(backend.EnvChartUser, "c")
	t.Setenv(backend.EnvChartPass, "p")
	t.Setenv(backend.EnvAdminToken, "")
	err := run(t.Context())
	if err == nil || !strings.Contains(err.Error(), backend.EnvAdminToken+" is empty") {
		t.Fatalf("run = %v, want %s named as empty", err, backend.EnvAdminToken)
	}
	if v, ok := os.LookupEnv(backend.EnvGitPass); ok {
		t.Errorf("%s is still in the environment (%q): git processes would inherit it", backend.EnvGitPass, v)
	}
}

// TestLinksNoHelmNorKubernetesClient: the server is handed packaged,
// indexed charts, so its binary needs neither Helm nor a Kubernetes
// client — every new machine's kit compiles it, and an import of either
// would add some 770 packages to that compile.
func TestLinksNoHelmNorKubernetesClient(t *testing.T) {
	// go test puts its own GOROOT/bin first on PATH; runtime.GOROOT is
	// empty in a test built with -trimpath.
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for pkg := range strings.FieldsSeq(string(out)) {
		for _, banned := range []string{"helm.sh/", "k8s.io/", "sigs.k8s.io/"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("the fleet server links %s", pkg)
			}
		}
	}
}
