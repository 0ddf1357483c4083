package cluster

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// kind's errors quote the docker command that failed, and kind hands every
// node the host's proxy settings as -e arguments of docker run.
func TestKindErrorsLoseProxyCredentials(t *testing.T) {
	const secret = "planted-proxy-password"
	run := &kindexec.RunError{
		Command: []string{"docker", "run", "--name", "x-control-plane", "-e", "HTTPS_PROXY=http://ci:" + secret + "@proxy.example:3128", "kindest/node"},
		Inner:   errors.New("exit status 125"),
	}
	err := fmt.Errorf("creating kind cluster x: %w", redactedError{fmt.Errorf("failed to create cluster: %w", run)})
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error quotes the planted proxy password: %v", err)
	}
	if !strings.Contains(err.Error(), "HTTPS_PROXY=http://<redacted>@proxy.example:3128") {
		t.Errorf("error %q: want the proxy setting with its credentials redacted", err)
	}
	var got *kindexec.RunError
	if !errors.As(err, &got) {
		t.Errorf("kind's *exec.RunError no longer reachable through the error")
	}
}
