package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// kubeconfigWith writes a kubeconfig with one context, whose user carries
// token, and returns its path.
func kubeconfigWith(t *testing.T, contextName, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n" +
		"users:\n- name: u\n  user:\n    token: " + token + "\ncontexts:\n- name: " + contextName + "\n  context:\n    cluster: c\n    user: u\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConnectReadsTheContextAndNeverTheToken(t *testing.T) {
	const token = "planted-secret-token-0123"
	path := kubeconfigWith(t, "shared", token)
	var log bytes.Buffer
	c, err := Connect(path, "shared", &log)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Existing() || c.Context != "shared" || c.KubeconfigPath != path || c.RESTConfig.Host != "https://127.0.0.1:6443" {
		t.Fatalf("Connect = %+v, want the existing cluster of context shared at https://127.0.0.1:6443", c)
	}
	_, err = Connect(path, "missing", &log)
	if err == nil || !strings.Contains(err.Error(), `no context "missing"`) || !strings.Contains(err.Error(), "shared") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Connect to a missing context: %v; want the file, the context and those it has", err)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(log.String(), token) {
		t.Fatal("the kubeconfig's token reached an error or the log")
	}
}

// TestExistingClusterRefusesKindOperations: what only a kind cluster the
// harness made allows is refused on another, before anything is done.
func TestExistingClusterRefusesKindOperations(t *testing.T) {
	path := kubeconfigWith(t, "shared", "t")
	c, err := Connect(path, "shared", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for what, err := range map[string]error{
		"Delete":     c.Delete(ctx),
		"LoadImages": c.LoadImages(ctx, "fleet-kit/nginx:bookworm"),
		"ExportLogs": c.ExportLogs(ctx, t.TempDir()),
	} {
		if err == nil || !strings.Contains(err.Error(), `context "shared"`) {
			t.Errorf("%s on an existing cluster: %v; want a refusal naming its context", what, err)
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the user's kubeconfig is gone after Delete was refused: %v", err)
	}
	if addr, err := c.APIServerEndpoint(ctx); addr != "" || err != nil {
		t.Errorf("APIServerEndpoint = %q, %v; want \"\" (use the kubernetes Service)", addr, err)
	}
	if err := c.WaitServiceNetwork(ctx, 0); err != nil {
		t.Errorf("WaitServiceNetwork on a cluster in use: %v", err)
	}
	g := NewGuard(KeepNever, nil)
	g.Track(c)
	if err := g.Cleanup(ctx, false); err != nil || len(g.clusters) != 0 {
		t.Errorf("a Guard tracked an existing cluster (cleanup: %v, tracked %d)", err, len(g.clusters))
	}
}

// fakeAPI is an API server holding Namespaces (name → labels) and Flux
// CRDs (name → labels), answering reads only; any other request is counted
// as a change.
type fakeAPI struct {
	namespaces, crds map[string]map[string]string
	changes          atomic.Int32
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	meta := func(name string, labels map[string]string) map[string]any {
		return map[string]any{"name": name, "labels": labels}
	}
	switch ns, isNS := strings.CutPrefix(r.URL.Path, "/api/v1/namespaces/"); {
	case r.Method != http.MethodGet:
		f.changes.Add(1)
		w.WriteHeader(http.StatusMethodNotAllowed)
	case isNS && f.namespaces[ns] != nil:
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": meta(ns, f.namespaces[ns])})
	case isNS:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
	case r.URL.Path == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions":
		var items []any
		for name, labels := range f.crds {
			items = append(items, map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": meta(name, labels)})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinitionList", "metadata": map[string]any{}, "items": items})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// TestCheckOptIn: a cluster is refused without the marker, or with a Flux
// the harness did not install, naming the context, the label and the way
// to opt in, after reads only; a marked cluster with nothing of Flux, or
// only the harness's, is accepted.
func TestCheckOptIn(t *testing.T) {
	allowed := map[string]string{AllowLabel: AllowValue}
	owned := map[string]string{ManagedByLabel: ManagedByValue}
	const crd = "kustomizations.kustomize.toolkit.fluxcd.io"
	tests := []struct {
		name             string
		namespaces, crds map[string]map[string]string
		refused          string // in the error; "" = accepted
		found            bool
	}{
		{"unmarked", map[string]map[string]string{"kube-system": {}}, nil,
			"kubectl --context ctx label namespace kube-system flux-fleet.io/allow-e2e=true", false},
		{"marked false", map[string]map[string]string{"kube-system": {AllowLabel: "false"}}, nil, "lacks the label flux-fleet.io/allow-e2e=true", false},
		{"foreign flux namespace", map[string]map[string]string{"kube-system": allowed, "flux-system": {}}, nil,
			"Namespace flux-system exists without the label app.kubernetes.io/managed-by=flux-fleet-harness", false},
		{"foreign flux CRD", map[string]map[string]string{"kube-system": allowed}, map[string]map[string]string{crd: {}},
			"CustomResourceDefinition " + crd + " exists without the label", false},
		{"other CRDs only", map[string]map[string]string{"kube-system": allowed}, map[string]map[string]string{"widgets.example.com": {}}, "", false},
		{"marked, no Flux", map[string]map[string]string{"kube-system": allowed}, nil, "", false},
		{"the harness's Flux", map[string]map[string]string{"kube-system": allowed, "flux-system": owned}, map[string]map[string]string{crd: owned}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{namespaces: tt.namespaces, crds: tt.crds}
			srv := httptest.NewServer(api)
			defer srv.Close()
			c := &Cluster{Name: "ctx", Context: "ctx", RESTConfig: &rest.Config{Host: srv.URL}, existing: true}
			found, err := CheckOptIn(t.Context(), c, "flux-system")
			var refused *RefusedError
			switch {
			case tt.refused == "" && (err != nil || found != tt.found):
				t.Fatalf("CheckOptIn = %t, %v; want accepted, found %t", found, err, tt.found)
			case tt.refused != "" && (!errors.As(err, &refused) || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), srv.URL)):
				t.Fatalf("CheckOptIn: %v; want a *RefusedError naming the server and saying %q", err, tt.refused)
			}
			if n := api.changes.Load(); n != 0 {
				t.Fatalf("the check sent %d requests that change the cluster", n)
			}
		})
	}
}

func TestRefusedErrorSaysHowToOptIn(t *testing.T) {
	err := error(&RefusedError{Cluster: "prod", Server: "https://10.0.0.1:6443", Reason: "Namespace kube-system lacks the label " + AllowLabel, Fix: "to opt in, run: kubectl --context prod label namespace kube-system " + AllowLabel + "=" + AllowValue})
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatal("not a *RefusedError")
	}
	for _, want := range []string{`"prod"`, "https://10.0.0.1:6443", "nothing was changed", "kubectl --context prod label namespace kube-system flux-fleet.io/allow-e2e=true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q in it", err, want)
		}
	}
}

func TestListableLeavesOutChurnAndSubresources(t *testing.T) {
	list := []string{"list", "get"}
	tests := []struct {
		group string
		res   metav1.APIResource
		want  bool
	}{
		{"", metav1.APIResource{Name: "configmaps", Verbs: list}, true},
		{"apps", metav1.APIResource{Name: "deployments", Verbs: list}, true},
		{"apps", metav1.APIResource{Name: "deployments/status", Verbs: list}, false},
		{"", metav1.APIResource{Name: "bindings", Verbs: []string{"create"}}, false},
		{"", metav1.APIResource{Name: "events", Verbs: list}, false},
		{"events.k8s.io", metav1.APIResource{Name: "events", Verbs: list}, false},
		{"coordination.k8s.io", metav1.APIResource{Name: "leases", Verbs: list}, false},
		{"discovery.k8s.io", metav1.APIResource{Name: "endpointslices", Verbs: list}, false},
		{"", metav1.APIResource{Name: "endpoints", Verbs: list}, false},
	}
	for _, tt := range tests {
		if got := listable(tt.group, tt.res); got != tt.want {
			t.Errorf("listable(%q, %s) = %t, want %t", tt.group, tt.res.Name, got, tt.want)
		}
	}
}

func TestDiffObjects(t *testing.T) {
	cm := func(ns, name string) ObjectID { return ObjectID{Kind: "ConfigMap", Namespace: ns, Name: name} }
	ns := ObjectID{Kind: "Namespace", Name: "flux-system"}
	before := []ObjectID{cm("a", "x"), cm("b", "y")}
	after := []ObjectID{cm("a", "x"), ns}
	slices.SortFunc(after, compareObjectIDs)
	gone, added := DiffObjects(before, after)
	if len(gone) != 1 || gone[0] != cm("b", "y") || len(added) != 1 || added[0] != ns {
		t.Fatalf("DiffObjects = gone %v, added %v; want gone [ConfigMap b/y], added [Namespace flux-system]", gone, added)
	}
	if got := ns.String(); got != "Namespace flux-system" {
		t.Errorf("String = %q", got)
	}
	if got := (ObjectID{Group: "apps", Kind: "Deployment", Namespace: "n", Name: "d"}).String(); got != "Deployment.apps n/d" {
		t.Errorf("String = %q", got)
	}
}
