package cluster

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// scriptedNode answers every command with err (nil: success) after
// writing stderr, and records the commands it ran.
type scriptedNode struct {
	name   string
	err    error
	stderr string
	mu     sync.Mutex
	runs   [][]string
}

func (n *scriptedNode) String() string              { return n.name }
func (n *scriptedNode) Role() (string, error)       { return "control-plane", nil }
func (n *scriptedNode) IP() (string, string, error) { return "172.18.0.2", "", nil }
func (n *scriptedNode) SerialLogs(io.Writer) error  { return nil }
func (n *scriptedNode) Command(cmd string, args ...string) kindexec.Cmd {
	return n.CommandContext(context.Background(), cmd, args...)
}

func (n *scriptedNode) CommandContext(_ context.Context, cmd string, args ...string) kindexec.Cmd {
	return &scriptedCmd{node: n, argv: append([]string{cmd}, args...)}
}

func (n *scriptedNode) commands() [][]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.runs)
}

type scriptedCmd struct {
	node   *scriptedNode
	argv   []string
	stderr io.Writer
}

func (c *scriptedCmd) Run() error {
	c.node.mu.Lock()
	c.node.runs = append(c.node.runs, c.argv)
	c.node.mu.Unlock()
	if c.stderr != nil {
		_, _ = io.WriteString(c.stderr, c.node.stderr)
	}
	return c.node.err
}
func (c *scriptedCmd) SetEnv(...string) kindexec.Cmd      { return c }
func (c *scriptedCmd) SetStdin(io.Reader) kindexec.Cmd    { return c }
func (c *scriptedCmd) SetStdout(io.Writer) kindexec.Cmd   { return c }
func (c *scriptedCmd) SetStderr(w io.Writer) kindexec.Cmd { c.stderr = w; return c }

func TestUntilServiceAnswers(t *testing.T) {
	const url = "https://10.96.0.1:443/healthz"
	exit124 := errors.New("command failed: exit status 124") // timeout(1) gave up
	tests := []struct {
		name    string
		nodes   []*scriptedNode
		wantErr string // "" = every node got an answer
	}{
		{
			name:  "the service answers on every node",
			nodes: []*scriptedNode{{name: "cp"}, {name: "worker"}},
		},
		{
			name: "the error names the node and curl's last complaint",
			nodes: []*scriptedNode{{name: "cp"}, {name: "worker", err: exit124,
				stderr: "curl: (7) Failed to connect to 10.96.0.1 port 443: Connection refused\n" +
					"curl: (60) SSL certificate problem: self-signed certificate in certificate chain\n" +
					"More details here: https://curl.se/docs/sslcerts.html\n\ncurl failed to verify the legitimacy of the server\n"}},
			wantErr: "node worker: " + url + ": no answer within 1m30s (last try: curl: (60) SSL certificate problem: self-signed certificate in certificate chain)",
		},
		{
			name:    "without output the exec error is reported",
			nodes:   []*scriptedNode{{name: "cp", err: exit124}},
			wantErr: "(last try: command failed: exit status 124)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var list []nodes.Node
			for _, n := range tt.nodes {
				list = append(list, n)
			}
			err := untilServiceAnswers(t.Context(), list, url, 90*time.Second)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want every node answered, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("want an error containing %q, got %v", tt.wantErr, err)
			}
			for _, n := range tt.nodes {
				runs := n.commands()
				if len(runs) != 1 {
					t.Fatalf("node %s ran %d commands, want one loop: %q", n.name, len(runs), runs)
				}
				// timeout 90 sh -c <loop> <url>
				argv := runs[0]
				if len(argv) != 6 || argv[0] != "timeout" || argv[1] != "90" || argv[2] != "sh" || argv[3] != "-c" || argv[5] != url {
					t.Fatalf("node %s ran %q, want timeout 90 sh -c <loop> %s", n.name, argv, url)
				}
				loop := argv[4]
				for _, want := range []string{"until curl ", "--cacert " + clusterCA, "--max-time ", `"$0"`, "sleep "} {
					if !strings.Contains(loop, want) {
						t.Errorf("loop %q lacks %q", loop, want)
					}
				}
				for _, bad := range []string{"--insecure", " -k ", "--fail"} {
					if strings.Contains(loop, bad) {
						t.Errorf("loop %q has %q: a server the cluster CA did not sign, or an HTTP error status, would be taken wrongly", loop, bad)
					}
				}
			}
		})
	}
}

func TestAPIServerAddr(t *testing.T) {
	ready, notReady := true, false
	https, other := "https", "metrics"
	port := func(name *string, p int32) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: name, Port: &p}
	}
	tests := []struct {
		name   string
		slices []discoveryv1.EndpointSlice
		want   string
	}{
		{"none yet", nil, ""},
		{"ready endpoint", []discoveryv1.EndpointSlice{{
			Ports:     []discoveryv1.EndpointPort{port(&https, 6443)},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"172.18.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}}, "172.18.0.2:6443"},
		{"no condition counts as ready", []discoveryv1.EndpointSlice{{
			Ports:     []discoveryv1.EndpointPort{port(nil, 6443)},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"172.18.0.3"}}},
		}}, "172.18.0.3:6443"},
		{"IPv6", []discoveryv1.EndpointSlice{{
			Ports:     []discoveryv1.EndpointPort{port(&https, 6443)},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"fc00:f853::2"}}},
		}}, "[fc00:f853::2]:6443"},
		{"not ready", []discoveryv1.EndpointSlice{{
			Ports:     []discoveryv1.EndpointPort{port(&https, 6443)},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"172.18.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}}},
		}}, ""},
		{"no https port", []discoveryv1.EndpointSlice{{
			Ports:     []discoveryv1.EndpointPort{port(&other, 9000)},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"172.18.0.2"}}},
		}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := apiServerAddr(tt.slices)
			if got != tt.want {
				t.Fatalf("apiServerAddr = %q, want %q", got, tt.want)
			}
			if got == "" && why == "" {
				t.Fatal("no address and no reason")
			}
		})
	}
}

func TestHasReadyEndpoint(t *testing.T) {
	ready, notReady := true, false
	tests := []struct {
		name   string
		slices []discoveryv1.EndpointSlice
		want   bool
	}{
		{"no slices", nil, false},
		{"no endpoints", []discoveryv1.EndpointSlice{{}}, false},
		{"only not ready", []discoveryv1.EndpointSlice{{Endpoints: []discoveryv1.Endpoint{{Conditions: discoveryv1.EndpointConditions{Ready: &notReady}}}}}, false},
		{"one ready among not ready", []discoveryv1.EndpointSlice{
			{Endpoints: []discoveryv1.Endpoint{{Conditions: discoveryv1.EndpointConditions{Ready: &notReady}}}},
			{Endpoints: []discoveryv1.Endpoint{{Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}},
		}, true},
		{"no condition counts as ready", []discoveryv1.EndpointSlice{{Endpoints: []discoveryv1.Endpoint{{}}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasReadyEndpoint(tt.slices); got != tt.want {
				t.Fatalf("hasReadyEndpoint = %v, want %v", got, tt.want)
			}
		})
	}
}
