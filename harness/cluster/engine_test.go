package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refusal is what Docker engines say when a container's process will not die.
const refusal = `Error response from daemon: cannot remove container "/x-control-plane": could not kill container: tried to kill container, but did not receive an exit event`

// fakeDocker puts a docker on PATH that lists x-control-plane as cluster
// x's node, answers rm with rmExit (and the engine's refusal on stderr)
// and inspect with inspectExit, and logs its arguments to the returned file.
func fakeDocker(t *testing.T, rmExit, inspectExit string) string {
	t.Helper()
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$*" >> "` + calls + `"
case "$1" in
ps) echo x-control-plane ;;
rm) [ ` + rmExit + ` = 0 ] || echo '` + refusal + `' >&2; exit ` + rmExit + ` ;;
inspect) [ ` + inspectExit + ` = 0 ] || echo 'Error: No such object: x-control-plane' >&2; exit ` + inspectExit + ` ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	return calls
}

func TestRemoveLeftNodes(t *testing.T) {
	kindErr := errors.New(`command "docker rm -f -v x-control-plane" failed with error: exit status 1`)
	for _, tt := range []struct {
		name, rmExit, inspectExit string
		wantRefused               bool
	}{
		{name: "engine refuses and the container stays", rmExit: "1", inspectExit: "0", wantRefused: true},
		{name: "the second try removes it", rmExit: "0", inspectExit: "0"},
		{name: "rm fails but the container is gone", rmExit: "1", inspectExit: "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := fakeDocker(t, tt.rmExit, tt.inspectExit)
			err := removeLeftNodes(t.Context(), "x", kindErr)
			var refused *EngineRefusedError
			if tt.wantRefused {
				if !errors.As(err, &refused) || refused.Container != "x-control-plane" || refused.EngineMessage != refusal {
					t.Fatalf("error %v, want an *EngineRefusedError for x-control-plane with the engine's message", err)
				}
			} else if err != nil {
				t.Fatalf("error %v, want none: the container is gone", err)
			}
			log, err := os.ReadFile(calls)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(log), "ps -a --filter label=io.x-k8s.kind.cluster=x") || !strings.Contains(string(log), "rm -f -v x-control-plane") {
				t.Errorf("docker calls:\n%s\nwant the cluster's containers listed and removed", log)
			}
		})
	}
}

// The message is what the user reads: who refused, and the command to retry.
func TestEngineRefusedErrorMessage(t *testing.T) {
	got := (&EngineRefusedError{Container: "x-control-plane", EngineMessage: refusal}).Error()
	for _, want := range []string{"Docker engine refused to remove node container x-control-plane", "not the harness", refusal, "retry with: docker rm -f x-control-plane"} {
		if !strings.Contains(got, want) {
			t.Errorf("message %q lacks %q", got, want)
		}
	}
}
