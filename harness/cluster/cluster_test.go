package cluster

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseKeepPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    KeepPolicy
		wantErr bool
	}{
		{"", KeepNever, false},
		{"never", KeepNever, false},
		{"NEVER", KeepNever, false},
		{"on-failure", KeepOnFailure, false},
		{" On-Failure ", KeepOnFailure, false},
		{"always", KeepAlways, false},
		{"true", KeepAlways, false},
		{"sometimes", KeepNever, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKeepPolicy(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseKeepPolicy(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseKeepPolicy(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if !tt.wantErr && tt.in != "" && tt.in != "true" {
				if again, _ := ParseKeepPolicy(got.String()); again != got {
					t.Errorf("String() %q does not parse back to %v", got.String(), got)
				}
			}
		})
	}
}

func TestKeepPolicyKeep(t *testing.T) {
	tests := []struct {
		policy KeepPolicy
		failed bool
		want   bool
	}{
		{KeepNever, false, false},
		{KeepNever, true, false},
		{KeepOnFailure, false, false},
		{KeepOnFailure, true, true},
		{KeepAlways, false, true},
		{KeepAlways, true, true},
	}
	for _, tt := range tests {
		if got := tt.policy.Keep(tt.failed); got != tt.want {
			t.Errorf("%v.Keep(%v) = %v, want %v", tt.policy, tt.failed, got, tt.want)
		}
	}
}

func TestSpecKubeconfigPath(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Name: "staging", WorkDir: filepath.FromSlash("/w")}, filepath.FromSlash("/w/staging.kubeconfig")},
		{Spec{Name: "production", WorkDir: filepath.FromSlash("/w/sub/")}, filepath.FromSlash("/w/sub/production.kubeconfig")},
	}
	for _, tt := range tests {
		if got := tt.spec.KubeconfigPath(); got != tt.want {
			t.Errorf("KubeconfigPath(%+v) = %q, want %q", tt.spec, got, tt.want)
		}
	}
	if got := (Spec{Name: "x"}).KubeconfigPath(); filepath.Base(got) != "x.kubeconfig" {
		t.Errorf("KubeconfigPath without WorkDir = %q", got)
	}
}

func TestSpecValidate(t *testing.T) {
	for _, s := range []Spec{{}, {Name: "a/b"}} {
		if err := s.validate(); err == nil {
			t.Errorf("validate(%+v) = nil, want error", s)
		}
	}
	if err := (Spec{Name: "hx-cluster-a"}).validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}

func TestGatewayFromInspect(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr string
	}{
		{
			name: "ipv6 first then ipv4",
			raw:  `[{"Name":"kind","IPAM":{"Config":[{"Subnet":"fc00:f853:ccd:e793::/64","Gateway":"fc00:f853:ccd:e793::1"},{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]}}]`,
			want: "172.18.0.1",
		},
		{
			name: "ipv4 subnet without gateway",
			raw:  `[{"Name":"kind","IPAM":{"Config":[{"Subnet":"172.19.0.0/16"}]}}]`,
			want: "172.19.0.1",
		},
		{
			name:    "ipv6 only",
			raw:     `[{"Name":"kind","IPAM":{"Config":[{"Subnet":"fc00::/64","Gateway":"fc00::1"}]}}]`,
			wantErr: "no IPv4 subnet",
		},
		{name: "no network", raw: `[]`, wantErr: "does not exist"},
		{name: "garbage", raw: `nope`, wantErr: "parsing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gatewayFromInspect([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("gatewayFromInspect = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestKindLogger(t *testing.T) {
	var buf bytes.Buffer
	l := newKindLogger(&buf, "staging", 0)
	clock := l.start
	l.now = func() time.Time { return clock }
	l.V(0).Infof("Creating cluster %q ...\n", "staging")
	l.V(1).Info("debug detail")
	clock = clock.Add(2345 * time.Millisecond)
	l.Warn("careful")
	l.V(0).Info("   ")
	want := "kind[staging] 0.0s Creating cluster \"staging\" ...\nkind[staging] 2.3s WARNING: careful\n"
	if buf.String() != want {
		t.Errorf("log output = %q, want %q", buf.String(), want)
	}
	if l.V(1).Enabled() || !l.V(0).Enabled() {
		t.Error("verbosity 0 logger: V(0) must be enabled and V(1) not")
	}
}

// fakeCreate stands in for prepare and run: "bad" fails to create,
// "reused" is reused, "foreign" is someone else's cluster.
type fakeCreate struct {
	mu      sync.Mutex
	ran     []string
	deleted []string
}

func (f *fakeCreate) prepare(_ context.Context, s Spec) (*plan, error) {
	if s.Name == "foreign" {
		return nil, &NotOwnedError{Name: s.Name}
	}
	return &plan{spec: s}, nil
}

func (f *fakeCreate) run(p *plan, _ context.Context) (*Cluster, error) {
	f.mu.Lock()
	f.ran = append(f.ran, p.spec.Name)
	f.mu.Unlock()
	switch p.spec.Name {
	case "bad":
		return nil, errors.New("boom")
	case "reused":
		return &Cluster{Name: p.spec.Name, Reused: true}, nil
	}
	return &Cluster{Name: p.spec.Name}, nil
}

func (f *fakeCreate) del(c *Cluster) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, c.Name)
	return nil
}

func TestCreateAllDeletesCreatedOnError(t *testing.T) {
	f := &fakeCreate{}
	specs := []Spec{{Name: "ok"}, {Name: "reused"}, {Name: "bad"}}
	got, err := createAll(context.Background(), specs, f.prepare, f.run, f.del)
	if err == nil || err.Error() != "boom" || got != nil {
		t.Fatalf("createAll = %v, %v; want nil, boom", got, err)
	}
	if !slices.Equal(f.deleted, []string{"ok"}) {
		t.Errorf("deleted %v, want [ok] (reused clusters are not ours to delete)", f.deleted)
	}

	if _, err := createAll(context.Background(), []Spec{{Name: "a"}, {Name: "a"}}, f.prepare, f.run, f.del); err == nil || err.Error() != `cluster "a" listed twice` {
		t.Errorf("duplicate names: error %v", err)
	}
	got, err = createAll(context.Background(), specs[:2], f.prepare, f.run, f.del)
	if err != nil || len(got) != 2 || got[0].Name != "ok" || got[1].Name != "reused" {
		t.Errorf("createAll success = %v, %v", got, err)
	}
}

// A cluster that is not flux-fleet's stops the run before any cluster is
// created or deleted, with exactly the message users see.
func TestCreateAllStopsAtForeignCluster(t *testing.T) {
	f := &fakeCreate{}
	_, err := createAll(context.Background(), []Spec{{Name: "production"}, {Name: "foreign"}}, f.prepare, f.run, f.del)
	want := `cluster "foreign" exists and was not created by flux-fleet: delete it (kind delete cluster --name foreign) or set E2E_CLUSTER_PREFIX`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
	var notOwned *NotOwnedError
	if !errors.As(err, &notOwned) || notOwned.Name != "foreign" {
		t.Errorf("error %T does not unwrap to *NotOwnedError for foreign", err)
	}
	if len(f.ran) != 0 || len(f.deleted) != 0 {
		t.Errorf("created %v and deleted %v, want nothing touched", f.ran, f.deleted)
	}
}

func TestGuardCleanupKeep(t *testing.T) {
	var buf bytes.Buffer
	g := NewGuard(KeepOnFailure, &buf)
	g.Track(&Cluster{Name: "reused-one", Reused: true})
	g.Track(&Cluster{Name: "mine", KubeconfigPath: "mine.kubeconfig"})
	if err := g.Cleanup(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "keeping cluster mine (keep=on-failure): KUBECONFIG=mine.kubeconfig") ||
		!strings.Contains(out, "cluster reused-one was reused: left running") {
		t.Errorf("cleanup output:\n%s", out)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.clusters) != 1 || g.clusters[0].Name != "mine" {
		t.Errorf("kept clusters must stay tracked, got %v", g.clusters)
	}
}

func TestLogfWriter(t *testing.T) {
	var got []string
	w := LogfWriter(func(format string, args ...any) {
		got = append(got, strings.TrimSpace(format+" "+args[0].(string)))
	})
	newLineWriter(w).printf("cluster %s created in %.1fs", "staging", 14.2)
	if len(got) != 1 || got[0] != "%s cluster staging created in 14.2s" {
		t.Errorf("got %q", got)
	}
}

func TestGuardTrackSameName(t *testing.T) {
	created := &Cluster{Name: "a"}
	reusedLater := &Cluster{Name: "a", Reused: true}
	g := NewGuard(KeepNever, nil)
	g.Track(created)
	g.Track(reusedLater)
	if len(g.clusters) != 1 || g.clusters[0] != created {
		t.Errorf("a cluster this run created must stay this run's when reused, got %+v", g.clusters)
	}
	created.deleted = true
	recreated := &Cluster{Name: "a"}
	g.Track(recreated)
	if len(g.clusters) != 1 || g.clusters[0] != recreated {
		t.Errorf("a deleted entry must be replaced, got %+v", g.clusters)
	}
	var buf bytes.Buffer
	g2 := NewGuard(KeepNever, &buf)
	g2.Track(created) // deleted already: Cleanup has nothing to do
	if err := g2.Cleanup(context.Background(), false); err != nil || buf.Len() != 0 {
		t.Errorf("Cleanup of a deleted cluster = %v, output %q", err, buf.String())
	}
}

func TestParseImageIDs(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want map[string]string
	}{
		{"none", "", map[string]string{}},
		{"present and missing", "fleet-kit/nginx:bookworm\tsha256:4bbd\nnope:1\t\n", map[string]string{"fleet-kit/nginx:bookworm": "sha256:4bbd", "nope:1": ""}},
		{"no final newline", "a:1\tsha256:1", map[string]string{"a:1": "sha256:1"}},
		{"a line that is not the script's", "crictl: warning\na:1\tsha256:1\n", map[string]string{"a:1": "sha256:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseImageIDs(tt.out); !maps.Equal(got, tt.want) {
				t.Fatalf("parseImageIDs = %v, want %v", got, tt.want)
			}
		})
	}
}
