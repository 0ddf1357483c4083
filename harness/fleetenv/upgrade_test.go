package fleetenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/probe"
	"github.com/flux-fleet/flux-fleet/harness/record"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// fleetRepo is a git checkout whose subdirectory "fleet" is a fleet with a
// staging environment, committed once (tag v1); "fleet-new" exists only in
// the working tree.
func fleetRepo(t *testing.T) (root, commit string) {
	t.Helper()
	testsupport.RequireGit(t, "the upgrade's base is a commit of the fleet")
	root = t.TempDir()
	for _, dir := range []string{"fleet/clusters/staging", "fleet-new/clusters/staging"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "fleet", "clusters", "staging", "apps.yaml"), []byte("kind: Kustomization\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testsupport.Git(t, root, "init", "--quiet", "--initial-branch=main")
	testsupport.Git(t, root, "add", "fleet")
	testsupport.Git(t, root, "commit", "--quiet", "-m", "fleet")
	testsupport.Git(t, root, "tag", "v1")
	return root, testsupport.Git(t, root, "rev-parse", "HEAD")
}

func TestUpgradeOptionsFromEnv(t *testing.T) {
	root, _ := fleetRepo(t)
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, o Options)
		wantErr string
	}{
		{"defaults: the working tree, report only", nil, func(t *testing.T, o Options) {
			if o.Revision != "" || o.Base != "" || o.MaxFailedRequests != -1 || o.firstRevision() != "" {
				t.Errorf("got Revision %q Base %q MaxFailedRequests %d", o.Revision, o.Base, o.MaxFailedRequests)
			}
		}, ""},
		{"replay a revision", map[string]string{"E2E_REVISION": "v1"}, func(t *testing.T, o Options) {
			if o.Revision != "v1" || o.Base != "" || o.firstRevision() != "v1" {
				t.Errorf("got Revision %q Base %q, first %q", o.Revision, o.Base, o.firstRevision())
			}
		}, ""},
		{"upgrade from a base to a revision, at most 3 failed requests", map[string]string{"E2E_BASE": "HEAD", "E2E_REVISION": "v1", "E2E_MAX_FAILED_REQUESTS": "3"}, func(t *testing.T, o Options) {
			if o.Base != "HEAD" || o.Revision != "v1" || o.MaxFailedRequests != 3 || o.firstRevision() != "HEAD" {
				t.Errorf("got Revision %q Base %q MaxFailedRequests %d, first %q", o.Revision, o.Base, o.MaxFailedRequests, o.firstRevision())
			}
		}, ""},
		{"no failed request allowed", map[string]string{"E2E_MAX_FAILED_REQUESTS": "0"}, func(t *testing.T, o Options) {
			if o.MaxFailedRequests != 0 {
				t.Errorf("MaxFailedRequests = %d", o.MaxFailedRequests)
			}
		}, ""},
		{"unknown base", map[string]string{"E2E_BASE": "origin/nope"}, nil, `E2E_BASE="origin/nope": git revision "origin/nope" is not a commit of the repository of ` + filepath.Join(root, "fleet")},
		{"fleet not committed at the revision", map[string]string{"E2E_FLEET": "fleet-new", "E2E_REVISION": "v1"}, nil,
			`E2E_REVISION="v1": git revision "v1" (commit `},
		{"negative limit", map[string]string{"E2E_MAX_FAILED_REQUESTS": "-1"}, nil, `E2E_MAX_FAILED_REQUESTS="-1": want a number of failed requests allowed, 0 or more (unset: report only)`},
		{"not a number", map[string]string{"E2E_MAX_FAILED_REQUESTS": "some"}, nil, `E2E_MAX_FAILED_REQUESTS="some": want a number`},
	}
	vars := []string{"E2E_FLEET", "E2E_REVISION", "E2E_BASE", "E2E_MAX_FAILED_REQUESTS", "E2E_WORKDIR", "E2E_ARTIFACTS", "E2E_KEEP",
		"E2E_REUSE", "E2E_TIMEOUT", "E2E_POD_FAILURE_GRACE", "E2E_FLUX_COMPONENTS", "FLEET_NODE_IMAGE", "FLEET_KIND_CONFIG",
		"FLEET_FLUX_MANIFESTS", "FLEET_PRELOAD_IMAGES", "FLEET_FLUX_COMPONENTS", "FLEET_EXTRA_CHARTS", "E2E_CHARTS", "E2E_OFFLINE_CHECKS", "E2E_PREFLIGHT"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range vars {
				t.Setenv(v, tt.env[v])
			}
			if tt.env["E2E_FLEET"] == "" {
				t.Setenv("E2E_FLEET", "fleet")
			}
			t.Setenv("E2E_ENVS", "staging")
			o, err := OptionsFromEnv(root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v\nwant it to say %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestUpgradeReportString(t *testing.T) {
	base := gitserver.Origin{Ref: "HEAD~1", Commit: "0123456789abcdef0123456789abcdef01234567"}
	head := gitserver.Origin{Commit: "0123456789abcdef0123456789abcdef01234567", WorkingTree: true}
	t0 := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	avail := probe.Availability{Start: t0, End: t0.Add(12 * time.Second), Interval: 200 * time.Millisecond, Requests: 60}
	changes := record.Changes{From: record.Fleet{Ref: "HEAD~1", Commit: base.Commit}, To: record.Fleet{Commit: head.Commit, WorkingTree: true},
		Kustomizations: []record.InventoryChange{{Kustomization: "Kustomization/flux-system/apps", Changed: []string{"Deployment/apps/fleet-app"}}}}
	green := &UpgradeReport{Env: "staging", Base: base, Head: head, Took: 6340 * time.Millisecond, Availability: avail, Changes: changes,
		Answer: &probe.AppAnswer{Hostname: "fleet-app-1", Message: "v2", Version: "dev"}}
	want := strings.Join([]string{
		"upgrade commit 0123456789ab (HEAD~1) → working tree (on 0123456789ab): Ready 6.3s after publishing the head",
		"availability during the roll: 60 requests every 200ms over 12s: none failed",
		`traffic check at the head: GET / via nginx answered by pod fleet-app-1 (message "v2", version "dev")`,
		"what the upgrade changed:",
		"  fleet: commit 0123456789ab (HEAD~1) → working tree (on 0123456789ab)",
		"  Kustomization/flux-system/apps: 1 changed",
		"    ~ Deployment/apps/fleet-app",
	}, "\n")
	if got := green.String(); got != want {
		t.Errorf("String():\n%s\nwant:\n%s", got, want)
	}
	failed := &UpgradeReport{Env: "staging", Base: base, Head: head, Took: 2100 * time.Millisecond, Availability: avail, Changes: changes,
		Ready: errors.New("staging: Kustomization/flux-system/apps failed: ReconciliationFailed: x"), Traffic: ErrNotChecked}
	got := failed.String()
	for _, line := range []string{
		"upgrade commit 0123456789ab (HEAD~1) → working tree (on 0123456789ab): NOT Ready, failed 2.1s after publishing the head: staging: Kustomization/flux-system/apps failed: ReconciliationFailed: x",
		"traffic check at the head: not checked: the head is not Ready",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("String() lacks %q:\n%s", line, got)
		}
	}
}
