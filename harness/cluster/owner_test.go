package cluster

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// kitConfig has the shape of the offline kit's kind config.
const kitConfig = `# kind config for the offline node image.
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  disableDefaultCNI: true
nodes:
  - role: control-plane
    image: fleet-kit/node:v1.37.2
kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
`

func TestNotOwnedErrorMessage(t *testing.T) {
	tests := []struct {
		err  *NotOwnedError
		want string
	}{
		{&NotOwnedError{Name: "staging"}, `cluster "staging" exists and was not created by flux-fleet: delete it (kind delete cluster --name staging) or set E2E_CLUSTER_PREFIX`},
		{&NotOwnedError{Name: "ci-production", Err: errors.New("listing its nodes: connection refused")},
			`cluster "ci-production" exists and flux-fleet could not read its owner marker (listing its nodes: connection refused): delete it (kind delete cluster --name ci-production) or set E2E_CLUSTER_PREFIX`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q\nwant      %q", got, tt.want)
		}
	}
}

func TestMarkerFromNodes(t *testing.T) {
	ours := map[string]string{LabelOwner: OwnerValue, LabelRun: "r1", LabelFleet: "basic", LabelNodeImageHash: "img1", LabelKindConfigHash: "cfg1", "kubernetes.io/hostname": "x"}
	otherHashes := maps.Clone(ours)
	otherHashes[LabelNodeImageHash], otherHashes[LabelKindConfigHash] = "img2", "cfg2"
	tests := []struct {
		name  string
		nodes []map[string]string
		want  marker
	}{
		{"no nodes registered", nil, marker{}},
		{"foreign: kind's labels only", []map[string]string{{"kubernetes.io/hostname": "staging-control-plane"}}, marker{}},
		{"owner label with another value", []map[string]string{{LabelOwner: "someone"}}, marker{}},
		{"ours", []map[string]string{ours}, marker{owned: true, fleet: "basic", run: "r1", imageHash: "img1", configHash: "cfg1"}},
		{"ours plus a node added by hand", []map[string]string{ours, {"kubernetes.io/hostname": "w"}}, marker{}},
		{"nodes disagree on hashes", []map[string]string{ours, otherHashes}, marker{owned: true, fleet: "basic", run: "r1", imageHash: inconsistent, configHash: inconsistent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := markerFromNodes(tt.nodes); got != tt.want {
				t.Errorf("markerFromNodes = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	want := marker{owned: true, run: "now", imageHash: "img1", configHash: "cfg1"}
	earlier := marker{owned: true, run: "then", imageHash: "img1", configHash: "cfg1"}
	otherImage, otherConfig := earlier, earlier
	otherImage.imageHash = "img0"
	otherConfig.configHash = "cfg0"
	unhashed := marker{owned: true}
	tests := []struct {
		name       string
		found      marker
		reuse      bool
		wantAction action
		wantReason string
		wantErr    string
	}{
		{"foreign, no reuse", marker{}, false, 0, "", `cluster "staging" exists and was not created by flux-fleet: delete it (kind delete cluster --name staging) or set E2E_CLUSTER_PREFIX`},
		{"foreign, reuse asked", marker{}, true, 0, "", `cluster "staging" exists and was not created by flux-fleet: delete it (kind delete cluster --name staging) or set E2E_CLUSTER_PREFIX`},
		{"earlier run, no reuse", earlier, false, actionRecreate, "cluster staging was left by flux-fleet run then: deleting it", ""},
		{"earlier run, reuse, same image and config", earlier, true, actionReuse, "", ""},
		{"reuse, other node image", otherImage, true, actionRecreate, "cluster staging not reused: it runs another node image than asked (marker img0, asked img1): recreating it", ""},
		{"reuse, other kind config", otherConfig, true, actionRecreate, "cluster staging not reused: it was made from another kind config than asked (marker cfg0, asked cfg1): recreating it", ""},
		{"reuse, marker without hashes", unhashed, true, actionRecreate, "cluster staging not reused: it runs another node image than asked (marker none, asked img1): recreating it", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := decide("staging", tt.found, want, tt.reuse)
			if tt.wantErr != "" {
				var notOwned *NotOwnedError
				if err == nil || err.Error() != tt.wantErr || !errors.As(err, &notOwned) {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.wantAction || reason != tt.wantReason {
				t.Errorf("decide = %v, %q, %v; want %v, %q", got, reason, err, tt.wantAction, tt.wantReason)
			}
		})
	}
}

func TestParseKindConfig(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		wantNodes int
		wantErr   string
	}{
		{"nil: kind's default", "", 0, ""},
		{"kit config", kitConfig, 1, ""},
		{"wrong apiVersion", "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n", 0, `apiVersion "kind.x-k8s.io/v1alpha3" kind "Cluster": want apiVersion kind.x-k8s.io/v1alpha4 kind Cluster`},
		{"wrong kind", "kind: Config\napiVersion: kind.x-k8s.io/v1alpha4\n", 0, `apiVersion "kind.x-k8s.io/v1alpha4" kind "Config"`},
		{"unknown field, as kind refuses it", "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  imgae: x\n", 0, "field imgae not found"},
		{"not YAML", "kind: [", 0, "not YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseKindConfig([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Nodes) != tt.wantNodes || cfg.APIVersion != kindAPIVersion || cfg.Kind != kindKind {
				t.Errorf("parsed %d nodes, %s %s", len(cfg.Nodes), cfg.APIVersion, cfg.Kind)
			}
		})
	}
	cfg, err := parseKindConfig([]byte(kitConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Networking.DisableDefaultCNI || cfg.Nodes[0].Image != "fleet-kit/node:v1.37.2" || len(cfg.KubeadmConfigPatches) != 1 {
		t.Errorf("kit config lost content: %+v", cfg)
	}
}

func TestConfigHash(t *testing.T) {
	hash := func(raw string) string {
		t.Helper()
		cfg, err := parseKindConfig([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		h, err := configHash(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(h) {
			t.Fatalf("hash %q is not 32 hex digits", h)
		}
		return h
	}
	base := hash(kitConfig)
	reformatted := strings.ReplaceAll(strings.ReplaceAll(kitConfig, "# kind config for the offline node image.\n", ""), "  - role", "- role")
	reformatted = strings.ReplaceAll(reformatted, "    image:", "  image:")
	if got := hash(reformatted); got != base {
		t.Errorf("comments and indentation changed the hash: %s != %s", got, base)
	}
	if got := hash(strings.Replace(kitConfig, "disableDefaultCNI: true", "disableDefaultCNI: false", 1)); got == base {
		t.Error("a changed networking setting kept the hash")
	}
	if hash("") == base {
		t.Error("the default config hashes like the kit's")
	}
}

func TestNodeImages(t *testing.T) {
	two := &v1alpha4.Cluster{Nodes: []v1alpha4.Node{{Image: "b:1"}, {Image: "a:1"}, {Image: "b:1"}}}
	tests := []struct {
		name     string
		override string
		cfg      *v1alpha4.Cluster
		want     []string
	}{
		{"override wins", "kit/node:1", two, []string{"kit/node:1"}},
		{"config images, sorted, once each", "", two, []string{"a:1", "b:1"}},
		{"node without image", "", &v1alpha4.Cluster{Nodes: []v1alpha4.Node{{}}}, []string{defaults.Image}},
		{"no nodes", "", &v1alpha4.Cluster{}, []string{defaults.Image}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodeImages(tt.override, tt.cfg); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("nodeImages = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestImageHash(t *testing.T) {
	ids := map[string]string{"kit/node:1": "sha256:aaa"}
	id := func(img string) string { return ids[img] }
	tagged := imageHash([]string{"kit/node:1"}, id)
	ids["kit/node:1"] = "sha256:bbb"
	if rebuilt := imageHash([]string{"kit/node:1"}, id); rebuilt == tagged {
		t.Error("an image rebuilt under the same tag kept the hash")
	}
	pinned := "kindest/node:v1.37.0@sha256:a1ed"
	before := imageHash([]string{pinned}, id)
	ids[pinned] = "sha256:now-pulled"
	if after := imageHash([]string{pinned}, id); after != before {
		t.Error("a digest-pinned image changed hash once pulled")
	}
	if imageHash([]string{"a:1"}, id) == imageHash([]string{"a:2"}, id) {
		t.Error("two tags hash alike")
	}
}

func TestWithMarker(t *testing.T) {
	labels := marker{owned: true, fleet: "basic", run: "r1", imageHash: "img", configHash: "cfg"}.labels()
	wantLabels := map[string]string{LabelOwner: OwnerValue, LabelFleet: "basic", LabelRun: "r1", LabelNodeImageHash: "img", LabelKindConfigHash: "cfg"}
	if !maps.Equal(labels, wantLabels) {
		t.Fatalf("labels() = %v, want %v", labels, wantLabels)
	}
	if got := (marker{owned: true, run: "r1"}).labels(); !maps.Equal(got, map[string]string{LabelOwner: OwnerValue, LabelRun: "r1"}) {
		t.Errorf("empty values must be left out, got %v", got)
	}

	t.Run("default config gets its control plane spelled out", func(t *testing.T) {
		cfg := &v1alpha4.Cluster{}
		withMarker(cfg, labels)
		if len(cfg.Nodes) != 1 || cfg.Nodes[0].Role != v1alpha4.ControlPlaneRole || !maps.Equal(cfg.Nodes[0].Labels, wantLabels) {
			t.Errorf("nodes = %+v", cfg.Nodes)
		}
	})
	t.Run("every node, user labels kept", func(t *testing.T) {
		cfg := &v1alpha4.Cluster{Nodes: []v1alpha4.Node{
			{Role: v1alpha4.ControlPlaneRole, Labels: map[string]string{"tier": "cp"}},
			{Role: v1alpha4.WorkerRole},
		}}
		withMarker(cfg, labels)
		for i, n := range cfg.Nodes {
			for k, v := range wantLabels {
				if n.Labels[k] != v {
					t.Errorf("node %d: label %s = %q, want %q", i, k, n.Labels[k], v)
				}
			}
		}
		if cfg.Nodes[0].Labels["tier"] != "cp" {
			t.Errorf("user label lost: %v", cfg.Nodes[0].Labels)
		}
	})
}

func TestLabelValue(t *testing.T) {
	long := strings.Repeat("a", 62) + "-b"
	tests := []struct{ in, want string }{
		{"basic", "basic"},
		{"fixtures/fleets/basic", "fixtures-fleets-basic"},
		{".", ""},
		{"./fleet/", "fleet"},
		{"/abs/path with space", "abs-path-with-space"},
		{long, strings.Repeat("a", 62)}, // cut at 63, trailing '-' trimmed
		{"Über", "ber"},
	}
	for _, tt := range tests {
		if got := labelValue(tt.in); got != tt.want {
			t.Errorf("labelValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewRunID(t *testing.T) {
	id := NewRunID()
	if !regexp.MustCompile(`^\d{8}-\d{6}-[0-9a-f]{6}$`).MatchString(id) || labelValue(id) != id {
		t.Errorf("NewRunID() = %q: want <date>-<time>-<6 hex>, a valid label value", id)
	}
	if NewRunID() == id {
		t.Error("two run IDs alike")
	}
}

func TestKindCall(t *testing.T) {
	t.Run("returns promptly on cancel; the call still finishes", func(t *testing.T) {
		// The context ends once the call has started, as a deadline would
		// in the middle of a kind call, however slowly the test gets there.
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		started, release, finished := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			<-started
			cancel(context.DeadlineExceeded)
		}()
		returned := make(chan error, 1)
		go func() {
			_, err := kindCall(ctx, "deleting kind cluster staging", func() (int, error) {
				close(started)
				<-release
				close(finished)
				return 1, nil
			})
			returned <- err
		}()
		select {
		case err := <-returned:
			if err == nil || !errors.Is(err, context.DeadlineExceeded) ||
				err.Error() != "deleting kind cluster staging: interrupted (kind finishes the call in the background): context deadline exceeded" {
				t.Errorf("error = %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("kindCall still waits for the kind call a minute after its context ended")
		}
		close(release)
		<-finished // the kind call runs to its end; a hang here is that failure
	})
	t.Run("not started on an ended context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		called := false
		err := kindDo(ctx, "listing kind clusters", func() error { called = true; return nil })
		if called || err == nil || err.Error() != "listing kind clusters: not started: context canceled" {
			t.Errorf("called=%v, error %v", called, err)
		}
	})
	t.Run("result passes through", func(t *testing.T) {
		got, err := kindCall(context.Background(), "x", func() ([]string, error) { return []string{"a"}, errors.New("kind said no") })
		if len(got) != 1 || err == nil || err.Error() != "kind said no" {
			t.Errorf("got %v, %v", got, err)
		}
	})
}

func TestNodesReady(t *testing.T) {
	node := func(name string, conds ...corev1.NodeCondition) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: conds}}
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	notReady := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "container runtime network not ready"}
	tests := []struct {
		name      string
		nodes     []corev1.Node
		want      bool
		wantState string
	}{
		{"none registered", nil, false, "no node has registered"},
		{"no condition yet", []corev1.Node{node("cp")}, false, "node cp has no Ready condition yet"},
		{"not ready", []corev1.Node{node("cp", ready), node("w", notReady)}, false, "node w: Ready=False KubeletNotReady: container runtime network not ready"},
		{"all ready", []corev1.Node{node("cp", ready), node("w", ready)}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, state := nodesReady(tt.nodes)
			if got != tt.want || state != tt.wantState {
				t.Errorf("nodesReady = %v, %q; want %v, %q", got, state, tt.want, tt.wantState)
			}
		})
	}
}

// otherConfig (used on real kind) must give kind a config it parses, with
// the same content plus one label, so that only the marker's hash differs.
func TestOtherConfig(t *testing.T) {
	raw := otherConfig(t, []byte(kitConfig))
	cfg, err := parseKindConfig(raw)
	if err != nil {
		t.Fatalf("re-encoded config does not parse: %v\n%s", err, raw)
	}
	if len(cfg.Nodes) != 1 || cfg.Nodes[0].Labels["example.com/variant"] != "b" || cfg.Nodes[0].Image != "fleet-kit/node:v1.37.2" || !cfg.Networking.DisableDefaultCNI {
		t.Errorf("re-encoded config lost content:\n%s", raw)
	}
	base, _ := parseKindConfig([]byte(kitConfig))
	h1, _ := configHash(base)
	h2, _ := configHash(cfg)
	if h1 == h2 {
		t.Error("the added label left the config hash unchanged")
	}
}
