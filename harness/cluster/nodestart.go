package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/internal/redact"
)

// When a node cannot start, kind's error names only the command that then
// failed in the node ("docker exec ... mkdir -p /kind: exit status 126",
// "kubeadm init ...: exit status 1"), not why. The node's own log says why,
// so the harness has kind keep a failed cluster's nodes (retain), reads their
// logs, and deletes them itself.
const (
	// nodeLogTail is how many lines of a failed node's log are read.
	nodeLogTail = 40
	// nodeJournalTail is how many lines of a running node's journal are read.
	nodeJournalTail = 400
	// nodeLogShown is how many of its last lines an explanation quotes.
	nodeLogShown = 5
	// quotedLineMax bounds one quoted log line.
	quotedLineMax = 240
	// explainTimeout bounds reading the failed nodes' states and logs.
	explainTimeout = 20 * time.Second
	// inotifyLimitFile holds the per-user inotify instance limit, which
	// every kind node's systemd, kubelet and containerd draw on: it is
	// not namespaced, so all nodes on a host share it.
	inotifyLimitFile = "/proc/sys/fs/inotify/max_user_instances"
	// raiseInotify is kind's advice for nodes out of inotify resources
	// (kind's known issues, "Pod errors due to too many open files").
	raiseInotify = "sudo sysctl fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288"
)

// explainFailedNodes says why the nodes of cluster name failed while kind
// created them, from their logs: a node that went down, from its console;
// one still running, from its journal, where kubelet reports what it could
// not start. "" when neither says, or nothing could be read in time.
func explainFailedNodes(ctx context.Context, name string) string {
	ctx, cancel := context.WithTimeout(ctx, explainTimeout)
	defer cancel()
	states, err := nodeContainerStates(ctx, name)
	if err != nil {
		return ""
	}
	var running int
	if all, err := dockerOutput(ctx, "ps", "-q", "--filter", "label="+kindClusterLabel); err == nil {
		running = len(strings.Fields(all))
	}
	limit := "unknown"
	if b, err := os.ReadFile(inotifyLimitFile); err == nil {
		limit = strings.TrimSpace(string(b))
	}
	var out []string
	for _, s := range states {
		node, state, _ := strings.Cut(s, " ")
		var log string
		if state == "running" {
			log, _ = dockerCombined(ctx, "exec", node, "journalctl", "--no-pager", "--lines", fmt.Sprint(nodeJournalTail))
		} else {
			log, _ = dockerCombined(ctx, "logs", "--tail", fmt.Sprint(nodeLogTail), node)
		}
		if why := explainNode(node, state, log, limit, running); why != "" {
			out = append(out, why)
		}
	}
	return strings.Join(out, "; ")
}

// explainNode is one node's explanation: the inotify limit and kind's fix
// when its log says it ran out of inotify instances; else, for a node that
// went down, its state and last log lines; else "".
func explainNode(node, state, log, inotifyLimit string, runningNodes int) string {
	// kind hands each node the host's proxy settings, credentials included.
	log = string(redact.URLCredentials([]byte(log)))
	var lines []string
	for line := range strings.Lines(terminalEscape.ReplaceAllString(log, "")) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	for _, l := range lines {
		if lower := strings.ToLower(l); strings.Contains(lower, "too many open files") && strings.Contains(lower, "notify") {
			return fmt.Sprintf("node %s ran out of inotify instances (%q): the host's limit, fs.inotify.max_user_instances=%s, is shared by the %d kind node(s) running on this engine and is used up; raise it (%s) or delete clusters no longer needed",
				node, clip(l, quotedLineMax), inotifyLimit, runningNodes, raiseInotify)
		}
	}
	switch {
	case state == "running":
		return ""
	case len(lines) == 0:
		return fmt.Sprintf("node %s is %s and its log is empty", node, state)
	case len(lines) > nodeLogShown:
		lines = lines[len(lines)-nodeLogShown:]
	}
	return fmt.Sprintf("node %s is %s; the last lines of its log: %s", node, state, strings.Join(lines, " | "))
}

// clip shortens s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// terminalEscape matches the colour codes systemd writes to a console.
var terminalEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// dockerCombined runs the docker CLI and returns stdout and stderr together
// (a container's log is written to both).
func dockerCombined(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}
