// Package kindenv decides whether a test that needs real kind clusters can
// run here: a Docker engine, the offline kit profile (harness/kitprofile)
// and its node image in the engine. It imports nothing of the harness's
// cluster code, so that harness/cluster's own tests and
// harness/internal/kindtest share it.
package kindenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// dockerTimeout bounds each docker check; an engine that cannot answer in
// this time cannot run kind either.
const dockerTimeout = 30 * time.Second

// Require returns the offline kit profile, or stops the test saying why it
// cannot run: skipped with -short; without a Docker engine, with a kit
// profile (E2E_KIT) lacking the node image, kind config or one of vars, or without the
// node image in the engine, skipped, except under CI=true, where it fails:
// CI must run the real-kind tests, not pass by skipping them. This machine
// cannot pull images, so kind only works from the kit.
func Require(t testing.TB, vars ...string) kitprofile.Profile {
	t.Helper()
	if testing.Short() {
		t.Skip("creates real kind clusters; skipped with -short")
	}
	if out, err := docker("info"); err != nil {
		cannotRun(t, fmt.Sprintf("docker info failed (%v): no Docker engine for kind: %s", err, firstLine(out)))
	}
	kit, err := kitprofile.FromEnv()
	if err != nil {
		t.Fatalf("reading the offline kit profile: %v", err)
	}
	for _, v := range kit.Unset(append([]string{kitprofile.NodeImageVar, kitprofile.KindConfigVar}, vars...)...) {
		cannotRun(t, fmt.Sprintf("the offline kit profile has no %s: set %s to the kit's profile file (make offline-images; go run ./hack/kit -print names it) to run real-kind tests, this machine cannot pull images", v, kitprofile.PathVar))
	}
	if out, err := docker("image", "inspect", "--format", "{{.Id}}", kit.NodeImage); err != nil {
		cannotRun(t, fmt.Sprintf("node image %s (%s) is not in the Docker engine (%v: %s): build the offline kit (make offline-images)", kit.NodeImage, kitprofile.NodeImageVar, err, firstLine(out)))
	}
	return kit
}

// cannotRun skips the test, or fails it under CI=true.
func cannotRun(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: real-kind tests must run)", msg)
	}
	t.Skip(msg)
}

func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
