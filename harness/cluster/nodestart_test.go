package cluster

import (
	"strings"
	"testing"
)

// A node's log as a kind node prints it when the host's inotify instances
// are used up: systemd, PID 1, cannot start (seen on this project's CI
// host with leftover clusters of a killed run still running).
const inotifyExhaustedLog = "INFO: starting init\n" +
	"systemd 252.39-1~deb12u2 running in system mode\n" +
	"\x1b[0;1;31mFailed to create control group inotify object: Too many open files\x1b[0m\n" +
	"\x1b[0;1;31mFailed to allocate manager object: Too many open files\x1b[0m\n" +
	"[\x1b[0;1;31m!!!!!!\x1b[0m] Failed to allocate manager object.\n" +
	"\x1b[0;1;31mExiting PID 1...\x1b[0m\n"

// A running node's journal when kubelet could not get inotify instances
// (seen with fs.inotify.max_user_instances lowered on this project's CI host).
const kubeletJournal = "Dec 07 11:29:14 ino-staging-control-plane systemd[1]: Started kubelet.service\n" +
	`Dec 07 11:29:14 ino-staging-control-plane kubelet[559]: E1207 11:29:14.824965     559 dynamic_serving_content.go:144] "Failed to watch cert and key file, will retry later" err="error creating fsnotify watcher: too many open files"` + "\n" +
	`Dec 07 11:29:14 ino-staging-control-plane kubelet[559]: E1207 11:29:14.863358     559 kubelet.go:1833] "Failed to start cAdvisor" err="inotify_init: too many open files"` + "\n"

func TestExplainNode(t *testing.T) {
	tests := []struct {
		name, state, log string
		want             string
	}{
		{"inotify, systemd", "restarting", inotifyExhaustedLog,
			`node n-control-plane ran out of inotify instances ("Failed to create control group inotify object: Too many open files"): the host's limit, fs.inotify.max_user_instances=128, is shared by the 7 kind node(s) running on this engine and is used up; raise it (sudo sysctl fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288) or delete clusters no longer needed`},
		{"inotify, kubelet in a running node", "running", kubeletJournal,
			`node n-control-plane ran out of inotify instances ("Dec 07 11:29:14 ino-staging-control-plane kubelet[559]: E1207 11:29:14.824965     559 dynamic_serving_content.go:144] \"Failed to watch cert and key file, will retry later\" err=\"error creating fsnotify watcher: too many open files\""): the host's limit, fs.inotify.max_user_instances=128, is shared by the 7 kind node(s) running on this engine and is used up; raise it (sudo sysctl fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288) or delete clusters no longer needed`},
		{"a running node whose journal says nothing of it", "running", "Dec 07 kubelet[1]: I1207 started\n", ""},
		{"other failure: the last lines, without colour codes", "exited", "one\ntwo\nthree\nfour\nfive\n\x1b[0;1;31mFailed to mount /sys: Permission denied\x1b[0m\n\n",
			"node n-control-plane is exited; the last lines of its log: two | three | four | five | Failed to mount /sys: Permission denied"},
		{"no log", "dead", "", "node n-control-plane is dead and its log is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := explainNode("n-control-plane", tt.state, tt.log, "128", 7); got != tt.want {
				t.Errorf("explainNode =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// The explanation quotes a node's log, which must not carry a terminal's
// control sequences into the run's log and report.
func TestExplainNodeQuotesNoEscapes(t *testing.T) {
	got := explainNode("n", "exited", "\x1b[1mbold\x1b[0m\n", "128", 1)
	if strings.ContainsRune(got, '\x1b') || !strings.HasSuffix(got, ": bold") {
		t.Errorf("explainNode = %q", got)
	}
}

// A node's log can carry the proxy settings kind hands every node; the
// explanation quotes it with their credentials redacted.
func TestExplainNodeRedactsProxyCredentials(t *testing.T) {
	const secret = "planted-proxy-secret"
	log := "INFO: starting init\nFailed to reach http://user:" + secret + "@proxy.example:3128: refused\n"
	for _, state := range []string{"exited", "running"} {
		got := explainNode("n", state, log+"kubelet: inotify_init: too many open files\n", "128", 1)
		got += explainNode("n", state, log, "128", 1)
		if strings.Contains(got, secret) {
			t.Errorf("state %s: the explanation quotes the planted proxy credential: %s", state, got)
		}
	}
	if got := explainNode("n", "exited", log, "128", 1); !strings.Contains(got, "http://<redacted>@proxy.example:3128") {
		t.Errorf("explanation %q: want the proxy URL with its credentials redacted", got)
	}
}
