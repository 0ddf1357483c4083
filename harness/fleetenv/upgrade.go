package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/probe"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

const (
	// settle is how long the availability watch goes on once every
	// environment is Ready at the head. Ready says the objects converged;
	// Service endpoints, kube-proxy rules and DNS caches (CoreDNS, an
	// ingress's resolver) follow within seconds, and a Service pruned while
	// in use or a pod stopped too early shows only then.
	settle = 10 * time.Second
	// watchInterval and watchTimeout bound the availability watch: five
	// requests a second at most, each given 2s.
	watchInterval = 200 * time.Millisecond
	watchTimeout  = 2 * time.Second
	// recordTimeout bounds reading what an environment runs.
	recordTimeout = 30 * time.Second
)

// UpgradeReport is what rolling one environment from the base revision to
// the head did.
type UpgradeReport struct {
	Env string
	// Base and Head say what was served before and after.
	Base, Head gitserver.Origin
	// BaseAnswer is the app's answer to the traffic check at the base.
	BaseAnswer *probe.AppAnswer
	// Took is the time from publishing the head to the environment's
	// readiness outcome: green, or the failure.
	Took time.Duration
	// Ready is the readiness outcome at the head: nil when green, else
	// why not (often a *readiness.FailureError).
	Ready error
	// Traffic is the traffic check at the head, run once the roll settled:
	// nil when it passed (Answer holds the answer), ErrNotChecked when the
	// head was not Ready, else what failed.
	Traffic error
	Answer  *probe.AppAnswer
	// Availability is what requests to the app through the ingress saw from
	// publishing the head until the roll settled.
	Availability probe.Availability
	// Changes is what the upgrade changed, from the records of the base and
	// the head.
	Changes record.Changes
}

// ErrNotChecked marks a head traffic check that did not run because the
// head is not Ready.
var ErrNotChecked = errors.New("not checked: the head is not Ready")

// String is the report as the log shows it.
func (u *UpgradeReport) String() string {
	var b strings.Builder
	if u.Ready == nil {
		fmt.Fprintf(&b, "upgrade %s → %s: Ready %s after publishing the head\n", u.Base, u.Head, u.Took.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(&b, "upgrade %s → %s: NOT Ready, failed %s after publishing the head: %v\n", u.Base, u.Head, u.Took.Round(100*time.Millisecond), u.Ready)
	}
	fmt.Fprintf(&b, "availability during the roll: %s\n", u.Availability)
	switch {
	case u.Traffic == nil && u.Answer != nil:
		fmt.Fprintf(&b, "traffic check at the head: GET / via nginx answered by pod %s (message %q, version %q)\n", u.Answer.Hostname, u.Answer.Message, u.Answer.Version)
	case u.Traffic != nil:
		fmt.Fprintf(&b, "traffic check at the head: %v\n", u.Traffic)
	}
	b.WriteString("what the upgrade changed:\n")
	for _, line := range strings.Split(u.Changes.String(), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// firstRevision is the revision the git server starts with: the base of an
// upgrade, else the revision replayed ("" for the working tree).
func (o Options) firstRevision() string {
	if o.Base != "" {
		return o.Base
	}
	return o.Revision
}

// upgradeOptionsFromEnv reads E2E_REVISION, E2E_BASE and
// E2E_MAX_FAILED_REQUESTS; a revision that the fleet's repository does not
// have (or where the fleet directory does not exist) is an error now, not
// after the clusters were created.
func upgradeOptionsFromEnv(fleetDir string) (revision, base string, maxFailed int, err error) {
	revision, base = strings.TrimSpace(os.Getenv("E2E_REVISION")), strings.TrimSpace(os.Getenv("E2E_BASE"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range []struct{ key, rev string }{{"E2E_REVISION", revision}, {"E2E_BASE", base}} {
		if v.rev == "" {
			continue
		}
		if _, err := gitserver.ResolveRevision(ctx, fleetDir, v.rev); err != nil {
			return "", "", 0, fmt.Errorf("%s=%q: %w", v.key, v.rev, err)
		}
	}
	maxFailed = -1
	if v := strings.TrimSpace(os.Getenv("E2E_MAX_FAILED_REQUESTS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return "", "", 0, fmt.Errorf("E2E_MAX_FAILED_REQUESTS=%q: want a number of failed requests allowed, 0 or more (unset: report only)", v)
		}
		maxFailed = n
	}
	return revision, base, maxFailed, nil
}

func (r *Run) publish(ctx context.Context, rev string) (string, error) {
	if rev != "" {
		return r.git.PublishRevision(ctx, rev)
	}
	return r.git.Publish(ctx)
}

// upgrade is the step E2E_BASE adds after the wait at the base.
func (r *Run) upgrade(ctx context.Context) error {
	_, err := r.Upgrade(ctx, r.opts.Revision)
	return err
}

// Upgrade rolls every environment from what is served now (the base, which
// must be Ready) to head — a git revision of the fleet's repository, or ""
// for the working tree:
//
//  1. checks at the base: each environment's readiness wait was green, and
//     the traffic check passes (GET / through the nginx ingress with the
//     app's host answers 200 from a pod of the app);
//  2. while the head rolls out, and for a short settle time once it is
//     Ready, requests the app through the ingress every 200ms and counts
//     the requests not answered;
//  3. publishes the head and waits for every environment as the wait step
//     does (fail fast, diagnostics), timing publish → green or failure;
//  4. at a Ready head, the traffic check again;
//  5. records the head and prints, per environment, what the upgrade
//     changed (record.Diff of the base's and the head's records).
//
// The head's readiness outcome is also each Environment's Ready, for the
// checks that follow. The error says why the upgrade could not run, or
// that more requests failed than Options.MaxFailedRequests allows; a head
// that is not Ready is in the reports, not an error.
func (r *Run) Upgrade(ctx context.Context, head string) ([]*UpgradeReport, error) {
	if r.git == nil {
		return nil, errors.New("nothing is served yet: bring the base up first")
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout+settle+2*time.Minute)
	defer cancel()
	base := r.git.Origin()
	reports := map[string]*UpgradeReport{}
	var ordered []*UpgradeReport
	for _, name := range r.opts.Envs {
		rep := &UpgradeReport{Env: name, Base: base, Traffic: ErrNotChecked}
		reports[name] = rep
		ordered = append(ordered, rep)
	}

	baseRecords := map[string]*record.Record{}
	err := r.eachEnv(ctx, func(ctx context.Context, e *Environment) error {
		rep := reports[e.Name]
		if e.Ready != nil {
			return fmt.Errorf("%s: the base (%s) is not Ready, so there is nothing to upgrade from: %w", e.Name, base, e.Ready)
		}
		answer, err := checkTraffic(ctx, e)
		if err != nil {
			return fmt.Errorf("%s: traffic check at the base (%s): %w", e.Name, base, err)
		}
		rep.BaseAnswer = answer
		r.logf("%-11s checks at the base %s passed: every Flux object and workload Ready; GET / via nginx answered by pod %s (message %q)", e.Name, base, answer.Hostname, answer.Message)
		return nil
	})
	if err != nil {
		return ordered, err
	}
	for _, name := range r.opts.Envs {
		rec, err := r.currentRecord(ctx, r.Env(name))
		if err != nil {
			return ordered, fmt.Errorf("%s: recording the base: %w", name, err)
		}
		baseRecords[name] = rec
		if err := record.Write(filepath.Join(r.opts.ArtifactsDir, record.FileName(name, "base")), rec); err != nil {
			r.logf("%-11s %v", name, err)
		}
	}

	watches := map[string]*probe.Watch{}
	stopWatches := func() {
		for name, w := range watches {
			reports[name].Availability = w.Stop()
		}
	}
	defer stopWatches()
	for _, name := range r.opts.Envs {
		route, err := probe.OpenAppRoute(ctx, r.Env(name).Clients, name)
		if err != nil {
			return ordered, fmt.Errorf("%s: watching the app's availability: %w", name, err)
		}
		watches[name] = probe.WatchApp(ctx, route, probe.WatchOptions{Interval: watchInterval, Timeout: watchTimeout, Out: r.out, Label: fmt.Sprintf("%-11s", name)})
	}

	start := time.Now()
	if r.charts != nil {
		if _, err := r.charts.Publish(ctx); err != nil {
			return ordered, fmt.Errorf("publishing charts: %w", err)
		}
	}
	rev, err := r.publish(ctx, head)
	if err != nil {
		return ordered, fmt.Errorf("publishing the head: %w", err)
	}
	headOrigin := r.git.Origin()
	r.logf("published the head %s as %s; rolling %s from the base %s", headOrigin, rev, strings.Join(r.opts.Envs, ", "), base)
	err = r.eachEnv(ctx, func(ctx context.Context, e *Environment) error {
		if err := r.fetchRevision(ctx, e, rev); err != nil {
			return err
		}
		err := r.waitEnv(ctx, e, start)
		rep := reports[e.Name]
		rep.Head, rep.Ready, rep.Took = headOrigin, e.Ready, time.Since(start)
		if e.Report != nil {
			// The wait's own end, before any diagnostics.
			rep.Took = e.Report.Start.Add(e.Report.Total).Sub(start)
		}
		return err
	})
	if err != nil {
		return ordered, fmt.Errorf("rolling to the head %s: %w", headOrigin, err)
	}

	anyReady := false
	for _, rep := range ordered {
		anyReady = anyReady || rep.Ready == nil
	}
	if anyReady {
		select {
		case <-time.After(settle):
		case <-ctx.Done():
			return ordered, fmt.Errorf("settling after the roll: %w", ctx.Err())
		}
	}
	stopWatches()
	clear(watches)

	var errs []error
	for _, name := range r.opts.Envs {
		e, rep := r.Env(name), reports[name]
		if rep.Ready == nil {
			rep.Answer, rep.Traffic = checkTraffic(ctx, e)
		}
		if headRecord, err := r.currentRecord(ctx, e); err != nil {
			r.logf("%-11s recording the head: %v", name, err)
		} else {
			rep.Changes = record.Diff(baseRecords[name], headRecord)
		}
		for _, line := range strings.Split(rep.String(), "\n") {
			r.logf("%-11s %s", name, line)
		}
		if r.opts.MaxFailedRequests >= 0 && rep.Availability.Failed > r.opts.MaxFailedRequests {
			errs = append(errs, fmt.Errorf("%s: %d request(s) to the app failed while the head rolled out, more than E2E_MAX_FAILED_REQUESTS=%d allows: %s",
				name, rep.Availability.Failed, r.opts.MaxFailedRequests, rep.Availability))
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.MarkFailed()
		return ordered, err
	}
	return ordered, nil
}

// checkTraffic is the traffic check the e2e suite runs (TestTraffic): GET /
// through the nginx ingress with the app's host, answered 200 by a pod of
// the app.
func checkTraffic(ctx context.Context, e *Environment) (*probe.AppAnswer, error) {
	route, err := probe.OpenAppRoute(ctx, e.Clients, e.Name)
	if err != nil {
		return nil, err
	}
	defer route.Close()
	return route.CheckApp(ctx)
}

// fleetRecord says what the git server serves now.
func (r *Run) fleetRecord() record.Fleet {
	o := r.git.Origin()
	return record.Fleet{Served: r.git.Revision(), Commit: o.Commit, Ref: o.Ref, WorkingTree: o.WorkingTree, Path: o.Path}
}

func (r *Run) recordPath(env string) string {
	return filepath.Join(r.opts.ArtifactsDir, record.FileName(env, ""))
}

// writeRecord writes what an environment runs after a readiness wait into
// the artifacts directory (record-<env>.json). A record that cannot be
// written is reported, never a failure of the run.
func (r *Run) writeRecord(ctx context.Context, e *Environment) {
	if ctx.Err() != nil || r.git == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	rec, err := record.CollectWith(ctx, e.Clients, e.Name, r.fleetRecord(), record.Options{RawValues: r.opts.RawValues})
	if err != nil {
		r.logf("%-11s record incomplete: %v", e.Name, err)
	}
	rec.Outcome = "Ready"
	if e.Ready != nil {
		rec.Outcome = e.Ready.Error()
	}
	if err := record.Write(r.recordPath(e.Name), rec); err != nil {
		r.logf("%-11s %v", e.Name, err)
		return
	}
	r.logf("%-11s record of what runs: %s", e.Name, r.recordPath(e.Name))
}

// currentRecord is the record of the revision served now: the one the last
// wait wrote, or a new one when that is missing or older.
func (r *Run) currentRecord(ctx context.Context, e *Environment) (*record.Record, error) {
	if rec, err := record.Read(r.recordPath(e.Name)); err == nil && rec.Fleet.Served == r.git.Revision() {
		return rec, nil
	}
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	rec, err := record.CollectWith(ctx, e.Clients, e.Name, r.fleetRecord(), record.Options{RawValues: r.opts.RawValues})
	if err != nil {
		return rec, err
	}
	rec.Outcome = "Ready"
	if e.Ready != nil {
		rec.Outcome = e.Ready.Error()
	}
	return rec, nil
}
