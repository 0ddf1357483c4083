package fluxsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest"
	"github.com/fluxcd/gitkit"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestSyncKind installs Flux on a kind cluster, serves a small repository
// over HTTP with basic auth on the kind network gateway, applies the sync
// and checks that a ConfigMap from the repository appears, that
// <path>/flux-system/ is ignored, and that a new commit lands quickly after
// RequestReconcile.
func TestSyncKind(t *testing.T) {
	kit := kindtest.Require(t, kindtest.FluxManifestsVar, kindtest.PreloadImagesVar)
	requireGit(t)
	manifests := kit.FluxManifests
	c := kit.FluxCluster(t, "hx-fluxsync")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fc, err := fluxobj.NewClients(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fluxinstall.Install(ctx, fc, fluxinstall.Options{
		Components:   []string{"source-controller", "kustomize-controller"},
		ManifestsDir: manifests,
		ExtraCRDsDir: filepath.Join(manifests, "extra-crds"),
		// As the harness installs Flux.
		ReadinessProbePeriod: time.Second,
		ClusterName:          c.Name,
		Out:                  cluster.LogfWriter(t.Logf),
	}); err != nil {
		t.Fatal(err)
	}

	host, err := cluster.HostAddress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	repo := newTestRepo(t)
	repo.commit(t, map[string]string{
		"clusters/hx/hello.yaml":                   configMap("hello", "1"),
		"clusters/hx/flux-system/not-applied.yaml": configMap("not-applied", "x"),
	})
	url, user, pass := serveRepo(t, host, repo.bare)

	// An interval far beyond every wait below: each fetch after the first
	// can only come from RequestReconcile.
	syncOpts := Options{URL: url, Path: "./clusters/hx", Username: user, Password: pass, Interval: noIntervalFetch}
	start := time.Now()
	err = Apply(ctx, fc, syncOpts)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := client.New(c.RESTConfig, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitConfigMap(ctx, t, kc, "hello", "1")
	t.Logf("ConfigMap from the repository applied %s after the sync", time.Since(start).Round(100*time.Millisecond))
	var cm corev1.ConfigMap
	err = kc.Get(ctx, client.ObjectKey{Namespace: "default", Name: "not-applied"}, &cm)
	if !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap from clusters/hx/flux-system/ was applied (err %v): the ignore rule does not work", err)
	}

	// Applying again is harmless.
	if err := Apply(ctx, fc, syncOpts); err != nil {
		t.Fatalf("second apply: %v", err)
	}

	commit := repo.commit(t, map[string]string{"clusters/hx/hello.yaml": configMap("hello", "2")})
	start = time.Now()
	if err := RequestReconcile(ctx, fc, "flux-system", "flux-system"); err != nil {
		t.Fatal(err)
	}
	token := requestToken(ctx, t, fc, "flux-system", "flux-system")
	waitConfigMap(ctx, t, kc, "hello", "2")
	t.Logf("new commit applied %s after RequestReconcile", time.Since(start).Round(100*time.Millisecond))
	// The fetch that brought the commit is the one requested: the
	// GitRepository handled exactly this request and holds the new commit.
	git := getGitRepository(ctx, t, fc, "flux-system", "flux-system")
	handled, _, _ := unstructured.NestedString(git.Object, "status", "lastHandledReconcileAt")
	if got, want := fluxobj.ArtifactRevision(git), "main@sha1:"+commit; handled != token || got != want {
		t.Errorf("GitRepository flux-system/flux-system: lastHandledReconcileAt %q, artifact %q; want the request %q and %q", handled, got, token, want)
	}

	// Rejected credentials end the first sync within its grace, naming the
	// GitRepository and the source-controller's reason, instead of waiting
	// for the caller's timeout.
	if err := Apply(ctx, fc, Options{URL: url, Path: "./clusters/hx", Username: user, Password: "wrong", Name: "bad-auth"}); err != nil {
		t.Fatal(err)
	}
	// The bound is the grace plus one fetch attempt (source-controller's
	// default spec.timeout) plus a margin for a loaded machine; past it the
	// context ends the wait with an error the pattern does not match.
	const grace = 5 * time.Second
	wctx, wcancel := context.WithTimeout(ctx, grace+gitFetchTimeout+loadMargin)
	defer wcancel()
	start = time.Now()
	err = WaitForRevision(wctx, fc, "flux-system", "bad-auth", "main@sha1:0000000000000000000000000000000000000000", grace)
	want := regexp.MustCompile(`^GitRepository/flux-system/bad-auth keeps failing to fetch main@sha1:0+ for \d+s: GitOperationFailed: .*authentication required`)
	if err == nil || !want.MatchString(err.Error()) {
		t.Fatalf("WaitForRevision with rejected credentials: %v; want an error matching %s", err, want)
	}
	t.Logf("rejected credentials reported after %s: %v", time.Since(start).Round(100*time.Millisecond), err)
}

const (
	// noIntervalFetch is a GitRepository interval no wait of the test
	// reaches (the test's context ends after 10 minutes).
	noIntervalFetch = 24 * time.Hour
	// gitFetchTimeout is a GitRepository's default spec.timeout: one fetch
	// attempt ends within it.
	gitFetchTimeout = time.Minute
	// loadMargin allows for controllers slowed by other kind clusters on
	// the same two cores.
	loadMargin = 30 * time.Second
)

// requireGit skips without a git binary, and fails under CI=true, where
// `make test` provides one.
func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no git binary for the test git server: %v", err)
		}
		t.Skipf("no git binary for the test git server: %v", err)
	}
}

func getGitRepository(ctx context.Context, t *testing.T, fc *fluxobj.Clients, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	k, _ := fluxobj.KindOf("GitRepository")
	u, err := fc.Dynamic.Resource(k.GVR()).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting GitRepository %s/%s: %v", namespace, name, err)
	}
	return u
}

// requestToken is the reconcile request RequestReconcile left on the
// GitRepository: the value source-controller echoes in
// status.lastHandledReconcileAt once it has handled it.
func requestToken(ctx context.Context, t *testing.T, fc *fluxobj.Clients, namespace, name string) string {
	t.Helper()
	token := getGitRepository(ctx, t, fc, namespace, name).GetAnnotations()[meta.ReconcileRequestAnnotation]
	if token == "" {
		t.Fatalf("RequestReconcile left no %s annotation on GitRepository %s/%s", meta.ReconcileRequestAnnotation, namespace, name)
	}
	return token
}

func configMap(name, v string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: default\ndata:\n  v: %q\n", name, v)
}

func waitConfigMap(ctx context.Context, t *testing.T, kc client.Client, name, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last string
	for {
		var cm corev1.ConfigMap
		err := kc.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &cm)
		if err == nil && cm.Data["v"] == want {
			return
		}
		last = fmt.Sprintf("v=%q err=%v", cm.Data["v"], err)
		select {
		case <-ctx.Done():
			t.Fatalf("ConfigMap default/%s never got v=%q (last: %s)", name, want, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type testRepo struct{ work, bare string }

// newTestRepo makes a bare repository (what the server serves) and a work
// tree that pushes to it.
func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	root := t.TempDir()
	r := &testRepo{work: filepath.Join(root, "work"), bare: filepath.Join(root, "repos", "fleet.git")}
	git(t, root, "init", "--bare", "-b", "main", r.bare)
	git(t, root, "init", "-b", "main", r.work)
	return r
}

// commit commits files in the work tree, pushes and returns the commit.
func (r *testRepo) commit(t *testing.T, files map[string]string) string {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(r.work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, r.work, "add", "-A")
	git(t, r.work, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "update")
	git(t, r.work, "push", "-q", r.bare, "HEAD:main")
	return git(t, r.work, "rev-parse", "HEAD")
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// serveRepo serves the bare repository over smart HTTP with basic auth on
// host (the kind network gateway, reachable from pods) and returns its URL.
func serveRepo(t *testing.T, host, bare string) (url, user, pass string) {
	t.Helper()
	user, pass = "fleet", fmt.Sprintf("pw-%d", time.Now().UnixNano())
	srv := gitkit.New(gitkit.Config{Dir: filepath.Dir(bare), Auth: true})
	srv.AuthFunc = func(cred gitkit.Credential, _ *gitkit.Request) (bool, error) {
		return cred.Username == user && cred.Password == pass, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("git server: %v", err)
		}
	}()
	t.Cleanup(func() { hs.Close() })
	return fmt.Sprintf("http://%s/%s", ln.Addr(), filepath.Base(bare)), user, pass
}
