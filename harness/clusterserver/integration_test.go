package clusterserver

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/clusterserver/backend"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
	"github.com/flux-fleet/flux-fleet/harness/probe"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// TestIntegrationDeployPushRemove deploys the kit's fleet server image on a
// kind cluster, hands it a snapshot and a chart from the host servers, reads
// both back through a port-forward to its serving port, and removes it.
func TestIntegrationDeployPushRemove(t *testing.T) {
	kit := kindtest.Require(t, kitprofile.ServerImageVar)
	testsupport.RequireGit(t, "the host git server bundles its snapshot with git")
	image := kit.ServerImage()
	c := kit.Cluster(t, "hx-clusterserver", image)
	ctx, cancel := context.WithTimeout(t.Context(), deployTimeout+2*pushTimeout+removeTimeout+time.Minute)
	defer cancel()
	fc, err := fluxobj.NewClients(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	logw := cluster.LogfWriter(t.Logf)

	src := sourceRepo(t)
	git, err := gitserver.Start(ctx, gitserver.Options{Addr: "127.0.0.1", SourceDir: src, Log: logw})
	if err != nil {
		t.Fatal(err)
	}
	defer git.Close()
	charts, err := chartserver.Start(ctx, chartserver.Options{Addr: "127.0.0.1", ChartDirs: []string{testsupport.WriteChart(t, t.TempDir(), "app", "1.2.3")}, Log: logw})
	if err != nil {
		t.Fatal(err)
	}
	defer charts.Close()

	start := time.Now()
	s, err := Deploy(ctx, fc, Options{Image: image, Log: logw})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("Deploy: %.1fs", time.Since(start).Seconds())
	if err := s.PushGit(ctx, func(w io.Writer) error { return git.Bundle(ctx, w) }); err != nil {
		t.Fatal(err)
	}
	if err := s.PushCharts(ctx, charts.Set()); err != nil {
		t.Fatal(err)
	}

	pod, err := s.readyPod(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := probe.ToPod(ctx, fc.Config, pod.Namespace, pod.Name, backend.ServePort)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	u := &url.URL{Scheme: "http", Host: fwd.Addr, Path: backend.RepoPath}
	u.User = url.UserPassword(s.GitCredentials())
	if refs := testsupport.Git(t, "", "ls-remote", u.String()); !strings.Contains(refs, git.Revision()+"\trefs/heads/main") {
		t.Errorf("served refs:\n%s\nwant main at %s", refs, git.Revision())
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+fwd.Addr+"/index.yaml", nil)
	req.SetBasicAuth(s.opts.ChartUser, s.opts.ChartPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	index, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(index), "charts/app-1.2.3.tgz") {
		t.Errorf("index.yaml: HTTP %d\n%s\nwant app 1.2.3", resp.StatusCode, index)
	}
	fwd.Close()

	if err := s.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	assertRemoved(ctx, t, fc, s)
}

// assertRemoved checks that no object Deploy made is left, nor the
// namespace it created.
func assertRemoved(ctx context.Context, t *testing.T, fc *fluxobj.Clients, s *Server) {
	t.Helper()
	selector := metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedBy}
	for gvrName, gvr := range resources {
		list, err := fc.Dynamic.Resource(gvr).Namespace("").List(ctx, selector)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range list.Items {
			t.Errorf("%s %s/%s is left after Remove", gvrName, it.GetNamespace(), it.GetName())
		}
	}
	if _, err := fc.Kube.CoreV1().Namespaces().Get(ctx, s.opts.Namespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s, created by Deploy, is left after Remove (%v)", s.opts.Namespace, err)
	}
}
