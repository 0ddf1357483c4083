package scenarios

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/fixtures/upgrades"
	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/probe"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/record"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// pairRevisions are an upgrade pair's two commits.
type pairRevisions struct{ base, head string }

// upgradeRepo makes a git repository whose root is an upgrade pair's fleet
// (fixtures/upgrades/<name>): the base committed, then the head committed
// on top; the working tree is then put back to the base, so the head can
// only come from its commit. It returns the repository and both commits.
func upgradeRepo(t *testing.T, name string) (dir, base, head string) {
	t.Helper()
	dir, revs := upgradeRepoOf(t, name)
	return dir, revs[name].base, revs[name].head
}

// upgradeRepoOf is upgradeRepo for several pairs, committed one after the
// other (each commit holds exactly that fleet); the working tree is put
// back to the first pair's base.
func upgradeRepoOf(t *testing.T, names ...string) (string, map[string]pairRevisions) {
	t.Helper()
	dir := t.TempDir()
	testsupport.Git(t, dir, "init", "--quiet", "--initial-branch=main")
	revs := map[string]pairRevisions{}
	for _, name := range names {
		pair, err := upgrades.Load(testsupport.RepoRoot(t), name)
		if err != nil {
			t.Fatal(err)
		}
		emptyExceptGit(t, dir)
		if err := pair.WriteBase(dir); err != nil {
			t.Fatal(err)
		}
		testsupport.Git(t, dir, "add", "--all")
		testsupport.Git(t, dir, "commit", "--quiet", "-m", "base of "+name)
		base := testsupport.Git(t, dir, "rev-parse", "HEAD")
		if err := pair.WriteHead(dir); err != nil {
			t.Fatal(err)
		}
		testsupport.Git(t, dir, "add", "--all")
		testsupport.Git(t, dir, "commit", "--quiet", "-m", "head of "+name)
		revs[name] = pairRevisions{base, testsupport.Git(t, dir, "rev-parse", "HEAD")}
	}
	emptyExceptGit(t, dir)
	testsupport.Git(t, dir, "checkout", "--quiet", revs[names[0]].base, "--", ".")
	return dir, revs
}

// emptyExceptGit removes everything in dir but the repository itself.
func emptyExceptGit(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Name() != ".git" {
			if err := os.RemoveAll(filepath.Join(dir, en.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// upgradeOptions are the scenario options for a pair's repository, with the
// records and diagnostics in a directory of the test's own.
func upgradeOptions(t *testing.T, dir, clusterPrefix string) fleetenv.Options {
	t.Helper()
	opts := options(t, dir, clusterPrefix)
	opts.ArtifactsDir = t.TempDir()
	opts.MaxFailedRequests = -1
	requireKit(t, opts)
	return opts
}

// requireBase requires the base (served by its exact commit) green.
func requireBase(t *testing.T, run *fleetenv.Run, e *fleetenv.Environment, took time.Duration, base string) {
	t.Helper()
	if e.Ready != nil {
		t.Fatalf("the base did not converge: %v", e.Ready)
	}
	if o := run.Git().Origin(); o.Commit != base || o.WorkingTree {
		t.Fatalf("served %s, want exactly the base commit %s", o, base)
	}
	t.Logf("base %s green in %s", base[:12], took.Round(100*time.Millisecond))
}

func inventoryChange(t *testing.T, c record.Changes, ks string) record.InventoryChange {
	t.Helper()
	for _, k := range c.Kustomizations {
		if k.Kustomization == ks {
			return k
		}
	}
	t.Fatalf("no %s in the changes:\n%s", ks, c)
	return record.InventoryChange{}
}

// assertOnlyAppsChanged checks the inventories: Kustomization apps changed
// exactly as given, every other Kustomization not at all.
func assertOnlyAppsChanged(t *testing.T, c record.Changes, want record.InventoryChange) {
	t.Helper()
	want.Kustomization = "Kustomization/flux-system/apps"
	got := inventoryChange(t, c, want.Kustomization)
	if !slices.Equal(got.Added, want.Added) || !slices.Equal(got.Removed, want.Removed) || !slices.Equal(got.Changed, want.Changed) {
		t.Errorf("apps: added %v removed %v changed %v; want added %v removed %v changed %v\n%s",
			got.Added, got.Removed, got.Changed, want.Added, want.Removed, want.Changed, c)
	}
	for _, k := range c.Kustomizations {
		if k.Kustomization != want.Kustomization && !k.Unchanged() {
			t.Errorf("%s changed too: %+v", k.Kustomization, k)
		}
	}
}

// TestUpgrades rolls a converged base to a head on real kind. The
// successful upgrade and the one the API server refuses follow one another
// on one cluster (cleared in between, the second base published on it);
// the E2E_BASE path runs end to end on a cluster of its own.
func TestUpgrades(t *testing.T) {
	t.Run("one-cluster", func(t *testing.T) {
		t.Parallel()
		dir, revs := upgradeRepoOf(t, "new-message", "immutable-selector")
		opts := upgradeOptions(t, dir, "up-kept-")
		opts.Revision = revs["new-message"].base
		run := newRun(t, opts)
		t.Run("new-message", func(t *testing.T) { upgradeNewMessage(t, run, revs["new-message"]) })
		t.Run("immutable-selector", func(t *testing.T) { upgradeImmutableSelector(t, run, revs["immutable-selector"]) })
	})

	// A head that prunes an object still in use: the Service nginx routes
	// to. Every object left is healthy, so the readiness wait is green; the
	// traffic check and the availability watch are what catch it. This one
	// runs the E2E_BASE path end to end (the "upgrade" step of Up), with
	// the head served by E2E_REVISION while the working tree holds the base:
	// the committed broken revision is reproduced exactly.
	t.Run("prune-in-use", func(t *testing.T) {
		t.Parallel()
		dir, base, head := upgradeRepo(t, "prune-in-use")
		opts := upgradeOptions(t, dir, "up-prune-")
		opts.Base, opts.Revision, opts.MaxFailedRequests = base, head, 0
		run := fleetenv.New(opts, testWriter{t})
		t.Cleanup(func() {
			run.MarkFailed() // fails on purpose: keep only if E2E_KEEP=always
			if err := run.Down(context.Background()); err != nil {
				t.Errorf("tearing down: %v", err)
			}
		})
		ctx := contextBeforeTestTimeout(t)
		err := run.Up(ctx)
		limit := regexp.MustCompile(`^upgrade: staging: \d+ request\(s\) to the app failed while the head rolled out, more than E2E_MAX_FAILED_REQUESTS=0 allows: \d+ requests every 200ms over .*: \d+ failed \(`)
		if err == nil || !limit.MatchString(err.Error()) {
			t.Fatalf("Up = %v\nwant the upgrade step to fail on E2E_MAX_FAILED_REQUESTS=0: %s", err, limit)
		}
		e := run.Env("staging")
		if e.Ready != nil {
			t.Fatalf("the head is not Ready (%v); this pair must leave only healthy objects", e.Ready)
		}
		if o := run.Git().Origin(); o.Commit != head || o.WorkingTree {
			t.Fatalf("served %s at the end, want exactly the head commit %s", o, head)
		}

		// The traffic check at the head, as TestTraffic runs it: the request
		// crosses nginx, which cannot reach the pruned Service and answers
		// an error page of its own. From the basic fleet's nginx.conf, only
		// two statuses are possible:
		//   - 502: the name no longer resolves (nginx answers every resolver
		//     error with 502), or a connect to the old address is refused;
		//   - 504: nginx still holds the pruned ClusterIP (resolver
		//     valid=10s) and the connect meets no kube-proxy rule, so
		//     proxy_connect_timeout (5s, within the check's 15s) expires.
		// Not 503: the config has no limit_req/limit_conn, and a variable
		// proxy_pass has one peer, whose failure is a 502. A 404 would be the
		// default server (the Host not routed); a 200 would be the app. The
		// error page's title must be nginx's for that same status, so an
		// answer from anything past nginx (an egress proxy) fails too.
		route, err := probe.OpenAppRoute(ctx, e.Clients, "staging")
		if err != nil {
			t.Fatal(err)
		}
		defer route.Close()
		_, caught := route.CheckApp(ctx)
		if msg := gatewayFailure(caught); msg != "" {
			t.Errorf("traffic check at the head: %s", msg)
		}

		// The records of the base and the head, as the step wrote them.
		baseRec, err := record.Read(filepath.Join(opts.ArtifactsDir, record.FileName("staging", "base")))
		if err != nil {
			t.Fatal(err)
		}
		headRec, err := record.Read(filepath.Join(opts.ArtifactsDir, record.FileName("staging", "")))
		if err != nil {
			t.Fatal(err)
		}
		if baseRec.Fleet.Commit != base || headRec.Fleet.Commit != head || headRec.Fleet.WorkingTree || headRec.Outcome != "Ready" {
			t.Errorf("records: base %+v, head %+v (outcome %q)", baseRec.Fleet, headRec.Fleet, headRec.Outcome)
		}
		changes := record.Diff(baseRec, headRec)
		assertOnlyAppsChanged(t, changes, record.InventoryChange{Removed: []string{"Service/apps/fleet-app"}})
		if e.Report != nil {
			t.Logf("publish → green (the readiness wait): %s; caught by the traffic check: %v", e.Report.Total.Round(100*time.Millisecond), caught)
		}
	})
}

// nginxGatewayPages are the error pages nginx answers when the upstream is
// gone, by status: the title of nginx's own page (ngx_http_special_response).
var nginxGatewayPages = map[string]string{
	"502": "502 Bad Gateway",
	"504": "504 Gateway Time-out",
}

// gatewayAnswer is CheckApp's error for a status other than 200 through
// the basic fleet's nginx, with the route of fleet-app.staging.
var gatewayAnswer = regexp.MustCompile(`^GET / with Host fleet-app\.staging through service nginx/nginx port 80 answered (\d{3}): <html>\s*<head><title>([^<]*)</title>`)

// gatewayFailure says what is wrong with err as the traffic check's verdict
// on a route whose Service was pruned, or "" when it is nginx's 502 or 504.
func gatewayFailure(err error) string {
	if err == nil {
		return "passed; want nginx's 502 or 504 for the pruned Service"
	}
	m := gatewayAnswer.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Sprintf("%v\nwant an answer of nginx's through %s", err, gatewayAnswer)
	}
	title, ok := nginxGatewayPages[m[1]]
	if !ok {
		return fmt.Sprintf("answered %s, want 502 or 504 (nginx with no upstream): %v", m[1], err)
	}
	if m[2] != title {
		return fmt.Sprintf("answered %s with a page titled %q, not nginx's %q: %v", m[1], m[2], title, err)
	}
	return ""
}

// upgradeNewMessage is the successful upgrade: the head's new APP_MESSAGE
// is in the app's answer through nginx. It brings the run up at the base.
func upgradeNewMessage(t *testing.T, run *fleetenv.Run, revs pairRevisions) {
	e, took := up(t, run)
	requireBase(t, run, e, took, revs.base)

	reports, err := run.Upgrade(contextBeforeTestTimeout(t), revs.head)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	rep := reports[0]
	if rep.Ready != nil || rep.Traffic != nil {
		t.Fatalf("head not green: ready %v, traffic %v", rep.Ready, rep.Traffic)
	}
	if got, want := rep.BaseAnswer.Message, "served by Flux from the fixture fleet"; got != want {
		t.Errorf("at the base the app said %q, want %q", got, want)
	}
	if got, want := rep.Answer.Message, "upgraded by the new-message fixture head"; got != want {
		t.Errorf("at the head the app says %q, want %q", got, want)
	}
	if rep.Base.Commit != revs.base || rep.Head.Commit != revs.head || rep.Head.WorkingTree {
		t.Errorf("rolled %s → %s, want commit %s → commit %s", rep.Base, rep.Head, revs.base, revs.head)
	}
	assertOnlyAppsChanged(t, rep.Changes, record.InventoryChange{Changed: []string{"Deployment/apps/fleet-app"}})
	if len(rep.Changes.Images) != 0 || len(rep.Changes.HelmReleases) != 0 {
		t.Errorf("images or releases changed: %+v %+v", rep.Changes.Images, rep.Changes.HelmReleases)
	}
	t.Logf("publish → green: %s (goal < 15s); availability: %s", rep.Took.Round(100*time.Millisecond), rep.Availability)
}

// upgradeImmutableSelector is an upgrade that fails only on upgrade: the
// head changes the Deployment's selector, which the API server refuses to
// change. The harness must name the Kustomization, the object and the API
// server's message at once, not after kustomize-controller's retries and
// timeout. The run's cluster is cleared and brought to this pair's base
// first.
func upgradeImmutableSelector(t *testing.T, run *fleetenv.Run, revs pairRevisions) {
	ctx := contextBeforeTestTimeout(t)
	cleared, err := run.Publisher().Clear(ctx)
	if err != nil {
		t.Fatalf("clearing the previous pair off the cluster: %v", err)
	}
	t.Logf("previous pair cleared off the cluster in %s", cleared.Round(100*time.Millisecond))
	took, err := run.Publisher().PublishRevision(ctx, revs.base)
	if err != nil {
		t.Fatalf("publishing the base %s: %v", revs.base, err)
	}
	requireBase(t, run, run.Env("staging"), took, revs.base)

	reports, err := run.Upgrade(ctx, revs.head)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	rep := reports[0]
	var got *readiness.FailureError
	if !errors.As(rep.Ready, &got) {
		t.Fatalf("want a fail-fast *readiness.FailureError at the head, got %T: %v", rep.Ready, rep.Ready)
	}
	message := regexp.MustCompile(`^Deployment/apps/fleet-app dry-run failed \(Invalid\): Deployment\.apps "fleet-app" is invalid: spec\.selector: Invalid value: .*: field is immutable`)
	revision := "(revision " + run.Git().FluxRevision(run.Git().Revision()) + ")"
	if got.Object != "Kustomization/flux-system/apps" || got.Reason != "ReconciliationFailed" || !got.Terminal ||
		!message.MatchString(got.Message) || !strings.HasSuffix(got.Message, revision) {
		t.Errorf("failure %q reason %q terminal %v message %q; want Kustomization/flux-system/apps, ReconciliationFailed, terminal, message %s ending %s",
			got.Object, got.Reason, got.Terminal, got.Message, message, revision)
	}
	// Fast: before kustomize-controller's retryInterval (30s in the basic
	// fleet's apps.yaml), so the verdict came from the first refused apply
	// and not from a retry, let alone the Kustomization's 3m timeout.
	const retryInterval = 30 * time.Second
	if rep.Took >= retryInterval {
		t.Errorf("the failure took %s after publishing the head, want it before the retryInterval %s", rep.Took.Round(100*time.Millisecond), retryInterval)
	}
	if !errors.Is(rep.Traffic, fleetenv.ErrNotChecked) {
		t.Errorf("traffic at a failed head: %v, want ErrNotChecked", rep.Traffic)
	}
	// The API server refused the head, so the base kept serving.
	if rep.Availability.Failed != 0 {
		t.Errorf("requests failed while the head was refused: %s", rep.Availability)
	}
	if e := run.Env("staging"); !strings.Contains(e.Summary, got.Object) || !strings.Contains(e.Summary, "field is immutable") {
		t.Errorf("the diagnostics summary does not show %s and the API server's message:\n%s", got.Object, e.Summary)
	}
	t.Logf("publish → failure: %s; %v", rep.Took.Round(100*time.Millisecond), got)
}

// TestGatewayFailure pins what the prune-in-use traffic check accepts: only
// nginx's own 502 and 504 pages. The pages are nginx's (a user-facing
// contract of nginx, not of this repository's code).
func TestGatewayFailure(t *testing.T) {
	const route = "GET / with Host fleet-app.staging through service nginx/nginx port 80 answered "
	page := func(status string) string {
		return "<html>\r\n<head><title>" + status + "</title></head>\r\n<body>\r\n<center><h1>" + status + "</h1></center>\r\n<hr><center>nginx</center>"
	}
	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"nginx 502", errors.New(route + "502: " + page("502 Bad Gateway")), true},
		{"nginx 504", errors.New(route + "504: " + page("504 Gateway Time-out")), true},
		{"passed", nil, false},
		{"nginx 503", errors.New(route + "503: " + page("503 Service Temporarily Unavailable")), false},
		{"the default server's 404 (Host not routed)", errors.New(route + `404: {"error":"no route for host fleet-app.staging"}`), false},
		{"an egress proxy's answer", errors.New(route + "426: " + page("426 Upgrade Required")), false},
		{"a 502 that is not nginx's page", errors.New(route + "502: upstream connect error"), false},
		{"a 502 titled as another status", errors.New(route + "502: " + page("504 Gateway Time-out")), false},
		{"another host", errors.New("GET / with Host fleet-app.production through service nginx/nginx port 80 answered 502: " + page("502 Bad Gateway")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := gatewayFailure(tt.err)
			if (msg == "") != tt.ok {
				t.Errorf("gatewayFailure(%v) = %q, want accepted %v", tt.err, msg, tt.ok)
			}
		})
	}
}
