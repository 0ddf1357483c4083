package fleetenv

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// plantedProxy is the password of the proxy the fake node is configured
// with; no artifact may carry it.
const plantedProxy = "PLANTED-proxy-pw-51d7"

// fakeKindNode puts a docker on PATH that answers kind's log export for
// node <cluster>-control-plane, its inspect (proxy credentials in
// Config.Env) taking a second and then touching the returned file; TMPDIR
// moves to the returned directory.
func fakeKindNode(t *testing.T, clusterName string) (done, tmpDir string) {
	t.Helper()
	bin, tmpDir := t.TempDir(), t.TempDir()
	done = filepath.Join(t.TempDir(), "inspect-done")
	script := `#!/bin/sh
case "$1" in
ps) echo "` + clusterName + `-control-plane" ;;
inspect)
	if [ "$2" = "--format" ]; then echo control-plane; exit 0; fi
	sleep 1
	echo '[{"Config":{"Env":["HTTP_PROXY=http://u:` + plantedProxy + `@proxy:3128"]}}]'
	touch '` + done + `' ;;
*) echo "HTTPS_PROXY=u:` + plantedProxy + `@proxy:3128" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("TMPDIR", tmpDir)
	return done, tmpDir
}

// Diagnostics whose time runs out while kind exports its logs leave
// nothing of kind's in the artifacts, however late kind writes, and every
// artifact is private.
func TestSummarizeOutOfTimeLeavesNoKindLogsUnredacted(t *testing.T) {
	done, tmpDir := fakeKindNode(t, "hx-fake")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	defer api.Close()
	artifacts := filepath.Join(t.TempDir(), "artifacts")
	d := &diagnostics{opts: Options{ArtifactsDir: artifacts}}
	e := &Environment{
		Name:    "staging",
		Cluster: &cluster.Cluster{Name: "hx-fake"},
		Clients: &fluxobj.Clients{Config: &rest.Config{Host: api.URL}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	summary := d.summarize(ctx, e)
	if !strings.Contains(summary, "kind node logs not exported") {
		t.Errorf("the summary does not say the export was cut short:\n%s", summary)
	}
	waitUntil(t, "kind's inspect", func() bool { _, err := os.Stat(done); return err == nil })
	waitUntil(t, "the temporary directory's removal", func() bool { entries, _ := os.ReadDir(tmpDir); return len(entries) == 0 })
	err := filepath.WalkDir(artifacts, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && info.Mode().Perm() != 0o700:
			t.Errorf("directory %s has mode %v, want 0700", path, info.Mode().Perm())
		case info.Mode().IsRegular() && info.Mode().Perm() != 0o600:
			t.Errorf("file %s has mode %v, want 0600", path, info.Mode().Perm())
		}
		if data, _ := os.ReadFile(path); strings.Contains(string(data), plantedProxy) {
			t.Errorf("%s holds the proxy password", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
