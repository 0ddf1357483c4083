package fleetenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
)

// fakeFleetServer stands in for an in-cluster fleet server: it keeps what
// it was pushed.
type fakeFleetServer struct {
	mu              sync.Mutex
	bundles         [][]byte
	charts          []chartrepo.Set
	pushErr         error
	removed, closed int
}

func (f *fakeFleetServer) GitURL() string {
	return "http://git-server.flux-system.svc.cluster.local/fleet.git"
}
func (f *fakeFleetServer) GitCredentials() (string, string) {
	return "in-cluster-user", "in-cluster-pass"
}

func (f *fakeFleetServer) PushGit(_ context.Context, bundle func(w io.Writer) error) error {
	var b bytes.Buffer
	if err := bundle(&b); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bundles = append(f.bundles, b.Bytes())
	return f.pushErr
}

func (f *fakeFleetServer) PushCharts(_ context.Context, set chartrepo.Set) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.charts = append(f.charts, set)
	return f.pushErr
}

func (f *fakeFleetServer) Remove(context.Context) error { f.removed++; return nil }
func (f *fakeFleetServer) Close() error                 { f.closed++; return nil }

// servedFleet starts a git server on loopback for a committed fleet and
// records it in r, as the servers step does in cluster mode.
func servedFleet(t *testing.T, r *Run) *gitserver.Server {
	t.Helper()
	git, err := serveFleet(t.Context(), r.opts, loopback, t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = git.Close() })
	r.state.recordServers(git, "", 0)
	return git
}

// TestPublishPushesToFleetServers: a publish (re-sync, upgrade) hands every
// environment's in-cluster fleet server a bundle of the served branch, and
// a push that fails names the environment.
func TestPublishPushesToFleetServers(t *testing.T) {
	fleet := t.TempDir()
	gitRepo(t, fleet, map[string]string{"clusters/staging/kustomization.yaml": kustomization})
	r := New(Options{FleetDir: fleet, Envs: []string{"staging", "production"}, WorkDir: t.TempDir()}, io.Discard)
	servedFleet(t, r)
	staging, production := &fakeFleetServer{}, &fakeFleetServer{}
	r.state.recordFleetServer("staging", staging)
	r.state.recordFleetServer("production", production)

	rev, err := r.publish(t.Context(), "")
	if err != nil || rev == "" {
		t.Fatalf("publish = %q, %v", rev, err)
	}
	for name, f := range map[string]*fakeFleetServer{"staging": staging, "production": production} {
		if len(f.bundles) != 1 || !bytes.HasPrefix(f.bundles[0], []byte("# v2 git bundle")) {
			t.Errorf("%s: pushed %d bundle(s), want one git bundle", name, len(f.bundles))
		}
		if len(f.charts) != 0 {
			t.Errorf("%s: charts pushed although none are served", name)
		}
	}

	production.pushErr = errors.New("port-forward refused")
	if _, err := r.publish(t.Context(), ""); err == nil || !strings.Contains(err.Error(), "production: pushing the fleet to the fleet server: port-forward refused") {
		t.Fatalf("publish with a failing push: %v; want the environment and the push named", err)
	}
}

// TestSyncPointsAtTheFleetServer: in cluster mode the sync fetches from the
// fleet server in the environment's cluster, with its credentials, and
// applies no host chart endpoints (the fleet server made its own).
func TestSyncPointsAtTheFleetServer(t *testing.T) {
	fleet := t.TempDir()
	gitRepo(t, fleet, map[string]string{"clusters/staging/kustomization.yaml": kustomization})
	r := New(Options{FleetDir: fleet, Envs: []string{"staging"}, WorkDir: t.TempDir()}, io.Discard)
	git := servedFleet(t, r)
	r.state.recordFleetServer("staging", &fakeFleetServer{})

	opts := syncOptions("staging", r.state.serversNow())
	if opts.URL != "http://git-server.flux-system.svc.cluster.local/fleet.git" || opts.Username != "in-cluster-user" ||
		opts.Password != "in-cluster-pass" || opts.Branch != git.Branch() || opts.Path != "./clusters/staging" || opts.Extra != nil {
		t.Fatalf("sync options = %+v; want the in-cluster server's URL and credentials, branch %s, ./clusters/staging, no extra objects", opts, git.Branch())
	}
	if host := syncOptions("production", r.state.serversNow()); host.URL != git.URL() {
		t.Fatalf("an environment without a fleet server syncs from %s, want the host's %s", host.URL, git.URL())
	}
}

// TestDownClosesFleetServers: the teardown stops every fleet server's
// port-forwards once, and removes nothing from a cluster it created (kind
// deletes the whole cluster).
func TestDownClosesFleetServers(t *testing.T) {
	r := New(Options{Envs: []string{"staging"}}, io.Discard)
	f := &fakeFleetServer{}
	r.state.recordFleetServer("staging", f)
	for range 2 {
		if err := r.Down(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if f.closed != 1 || f.removed != 0 {
		t.Fatalf("closed %d, removed %d times; want closed once, never removed", f.closed, f.removed)
	}
}

func TestServersNeedAnImage(t *testing.T) {
	r := New(Options{Servers: ServersCluster, Envs: []string{"staging"}}, io.Discard)
	err := r.runStep(t.Context(), Servers())
	if err == nil || !strings.Contains(err.Error(), "E2E_SERVER_IMAGE") {
		t.Fatalf("servers=cluster without an image: %v; want it to say how to set one", err)
	}
}

// TestKubeconfigOptions: the kubeconfig options are checked before anything
// runs, each error naming the option, the file and the context, never what
// the kubeconfig holds.
func TestKubeconfigOptions(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "clusters/staging", "clusters/production")
	const token = "planted-token-in-kubeconfig"
	kubeconfig := kubeconfigFor(t, root, token, "staging", "prod-ctx", "other")
	base := map[string]string{"E2E_CLUSTERS": "kubeconfig", "E2E_KUBECONFIG": kubeconfig, "E2E_SERVER_IMAGE": "fleet-kit/fleet-server:x"}
	with := func(extra map[string]string) map[string]string {
		env := maps.Clone(base)
		maps.Copy(env, extra)
		return env
	}

	o, err := resolve(t, root, with(map[string]string{"E2E_CONTEXTS": "production=prod-ctx"}), nil)
	if err != nil || o.Contexts["staging"] != "staging" || o.Contexts["production"] != "prod-ctx" || o.Servers != ServersCluster || o.Clusters != ProviderKubeconfig {
		t.Fatalf("options = %+v, %v; want staging on context staging, production on prod-ctx, servers in the clusters", o, err)
	}
	if o, err := resolve(t, root, map[string]string{"KUBECONFIG": kubeconfig, "E2E_CLUSTERS": "kubeconfig", "E2E_SERVERS": "host", "E2E_CONTEXTS": "production=prod-ctx"}, nil); err != nil || o.Kubeconfig != kubeconfig {
		t.Fatalf("$KUBECONFIG as the default: %q, %v", o.Kubeconfig, err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, `environment "production": kubeconfig ` + kubeconfig + ` has no context "production" (it has: other, prod-ctx, staging)`},
		{map[string]string{"E2E_CONTEXTS": "staging=other,production=other"}, `environments "staging" and "production" both use context "other"`},
		{map[string]string{"E2E_CONTEXTS": "qa=other,production=prod-ctx"}, `environment "qa" is not one of the run's (staging,production)`},
		{map[string]string{"E2E_CONTEXTS": "production", "E2E_ENVS": "staging"}, `"production" is not env=context`},
		{map[string]string{"E2E_CLUSTERS": "kind", "E2E_CONTEXTS": "staging=other"}, "E2E_CONTEXTS=\"staging=other\": applies only to -clusters=kubeconfig"},
		{map[string]string{"E2E_KUBECONFIG": "", "E2E_ENVS": "staging"}, "needs a kubeconfig: set it here or in $KUBECONFIG"},
		{map[string]string{"E2E_SERVER_IMAGE": "", "E2E_ENVS": "staging"}, "-servers=cluster needs the fleet server's image"},
	} {
		_, err := resolve(t, root, with(tc.env), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v; want %q", tc.env, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("%v: the error shows the kubeconfig's token", tc.env)
		}
	}
}
