package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
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
				// What the loop itself does is TestServiceLoop's.
				if argv[4] != serviceLoop {
					t.Errorf("node %s ran another script than serviceLoop: %q", n.name, argv[4])
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

// TestServiceLoop runs serviceLoop with this host's sh and curl, the
// cluster CA path mapped to a test CA by a curl wrapper: any HTTP status
// counts as an answer, while a refused connection or a server the CA did
// not sign makes it try again.
func TestServiceLoop(t *testing.T) {
	realCurl := requireTool(t, "curl")
	requireTool(t, "sh")
	requireTool(t, "timeout")
	// A server whose certificate the cluster CA signed, answering 503.
	good := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer good.Close()
	// One the CA did not sign.
	stranger := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	stranger.Close() // closed, to get a port nothing listens on
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{otherCert(t)}}
	other.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	other.StartTLS()
	defer other.Close()

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	tries := filepath.Join(dir, "tries")
	wrapper := "#!/bin/sh\necho try >> " + tries + "\n" +
		"for a do shift; if [ \"$a\" = " + clusterCA + " ]; then set -- \"$@\" " + ca + "; else set -- \"$@\" \"$a\"; fi; done\n" +
		"exec " + realCurl + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "curl"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	for _, tt := range []struct {
		name       string
		url        string
		wantAnswer bool
		wantCurl   string // curl's complaint while it keeps trying
	}{
		{"HTTP 503 from a server the CA signed counts", good.URL + "/healthz", true, ""},
		{"a refused connection does not", stranger.URL + "/healthz", false, "curl: (7) "},
		{"a server the CA did not sign does not", other.URL + "/healthz", false, "curl: (60) "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_ = os.Remove(tries)
			triesSoFar := func() int {
				raw, _ := os.ReadFile(tries)
				return strings.Count(string(raw), "try")
			}
			// timeout(1) only bounds a loop that never ends; the refused
			// cases are stopped here once the loop has gone round twice,
			// however slowly a loaded machine runs curl.
			var stderr strings.Builder
			cmd := exec.Command("timeout", "60", "sh", "-c", serviceLoop, tt.url)
			cmd.Stderr = &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatalf("starting the loop: %v", err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			if tt.wantAnswer {
				if err, n := <-exited, triesSoFar(); err != nil || n != 1 {
					t.Errorf("loop = %v after %d tries, want it done after the first answer", err, n)
				}
				return
			}
			for n := triesSoFar(); n < 3; n = triesSoFar() {
				select {
				case err := <-exited:
					t.Fatalf("loop = %v after %d tries, want it still trying; curl said %q", err, n, stderr.String())
				case <-time.After(50 * time.Millisecond):
				}
			}
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			if !strings.Contains(stderr.String(), tt.wantCurl) {
				t.Errorf("curl said %q, want %q", stderr.String(), tt.wantCurl)
			}
		})
	}
}

// requireTool returns the path of a host tool a test runs, skipping
// without it, except under CI=true, where the test must run.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (CI=true: this test must run): %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return path
}

// otherCert is a self-signed certificate for 127.0.0.1 from a key of its own.
func otherCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "stranger"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
