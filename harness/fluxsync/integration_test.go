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
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestSyncKind installs Flux on a kind cluster, serves a small repository
// over HTTP with basic auth on the kind network gateway, applies the sync
// and checks that a ConfigMap from the repository appears, that
// <path>/flux-system/ is ignored, and that a new commit lands quickly after
// RequestReconcile.
func TestSyncKind(t *testing.T) {
	kit := kindtest.Require(t, kindtest.FluxManifestsVar, kindtest.PreloadImagesVar)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skipf("no git binary for the test git server: %v", err)
	}
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

	start := time.Now()
	err = Apply(ctx, fc, Options{URL: url, Path: "./clusters/hx", Username: user, Password: pass})
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
	if err := Apply(ctx, fc, Options{URL: url, Path: "./clusters/hx", Username: user, Password: pass}); err != nil {
		t.Fatalf("second apply: %v", err)
	}

	repo.commit(t, map[string]string{"clusters/hx/hello.yaml": configMap("hello", "2")})
	start = time.Now()
	if err := RequestReconcile(ctx, fc, "flux-system", "flux-system"); err != nil {
		t.Fatal(err)
	}
	waitConfigMap(ctx, t, kc, "hello", "2")
	took := time.Since(start)
	t.Logf("new commit applied %s after RequestReconcile", took.Round(100*time.Millisecond))
	if took > 30*time.Second {
		t.Errorf("new commit took %s: RequestReconcile did not trigger a fetch", took)
	}

	// Rejected credentials end the first sync within its grace, naming the
	// GitRepository and the source-controller's reason, instead of waiting
	// for the caller's timeout.
	if err := Apply(ctx, fc, Options{URL: url, Path: "./clusters/hx", Username: user, Password: "wrong", Name: "bad-auth"}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	err = WaitForRevision(ctx, fc, "flux-system", "bad-auth", "main@sha1:0000000000000000000000000000000000000000", 5*time.Second)
	took = time.Since(start)
	want := regexp.MustCompile(`^GitRepository/flux-system/bad-auth keeps failing to fetch main@sha1:0+ for \d+s: GitOperationFailed: .*authentication required`)
	if err == nil || !want.MatchString(err.Error()) {
		t.Fatalf("WaitForRevision with rejected credentials: %v; want an error matching %s", err, want)
	}
	t.Logf("rejected credentials reported after %s: %v", took.Round(100*time.Millisecond), err)
	if took > 30*time.Second {
		t.Errorf("rejected credentials took %s to be reported", took)
	}
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

func (r *testRepo) commit(t *testing.T, files map[string]string) {
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
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
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
