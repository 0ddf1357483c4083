package fleetenv

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/poll"
	"github.com/flux-fleet/flux-fleet/harness/probe"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// upgradeRoll is one Upgrade in progress: what its steps found so far.
type upgradeRoll struct {
	run  *Run
	git  *gitserver.Server
	head string
	base gitserver.Origin
	// reports by environment, and in the order of Options.Envs.
	reports     map[string]*UpgradeReport
	ordered     []*UpgradeReport
	baseRecords map[string]*record.Record
	watches     map[string]*probe.Watch
	// published is when the head was published, headCommit what it was
	// published as.
	published  time.Time
	headCommit string
}

type upgradeStep struct {
	name string
	do   func(ctx context.Context) error
}

func newUpgradeRoll(r *Run, git *gitserver.Server, head string) *upgradeRoll {
	u := &upgradeRoll{run: r, git: git, head: head, base: git.Origin(), reports: map[string]*UpgradeReport{},
		baseRecords: map[string]*record.Record{}, watches: map[string]*probe.Watch{}}
	for _, name := range r.opts.Envs {
		rep := &UpgradeReport{Env: name, Base: u.base, Traffic: ErrNotChecked}
		u.reports[name] = rep
		u.ordered = append(u.ordered, rep)
	}
	return u
}

// steps are the upgrade, in order.
func (u *upgradeRoll) steps() []upgradeStep {
	return []upgradeStep{
		{"checks at the base", u.checkBase},
		{"record the base", u.recordBase},
		{"watch availability", u.watchAvailability},
		{"publish the head", u.publishHead},
		{"roll to the head", u.rollToHead},
		{"settle", u.settle},
		{"checks at the head", u.checkHead},
		{"what changed", u.whatChanged},
	}
}

// checkBase requires each environment's readiness wait green at the base
// and the traffic check passing (GET / through the nginx ingress with the
// app's host answers 200 from a pod of the app).
func (u *upgradeRoll) checkBase(ctx context.Context) error {
	r := u.run
	return eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		if ready := r.state.outcome(e.Name).err; ready != nil {
			return fmt.Errorf("%s: the base (%s) is not Ready, so there is nothing to upgrade from: %w", e.Name, u.base, ready)
		}
		answer, err := checkTrafficAfterReady(ctx, e)
		if err != nil {
			return fmt.Errorf("%s: traffic check at the base (%s): %w", e.Name, u.base, err)
		}
		u.reports[e.Name].BaseAnswer = answer
		r.log.printf("%-11s checks at the base %s passed: every Flux object and workload Ready; GET / via nginx answered by pod %s (message %q)", e.Name, u.base, answer.Hostname, answer.Message)
		return nil
	})
}

// recordBase keeps what each environment runs at the base, for the diff,
// and writes it next to the head's record.
func (u *upgradeRoll) recordBase(ctx context.Context) error {
	r := u.run
	for _, name := range r.opts.Envs {
		rec, err := r.records.current(ctx, r.Env(name))
		if err != nil {
			return fmt.Errorf("%s: recording the base: %w", name, err)
		}
		u.baseRecords[name] = rec
		if err := record.Write(filepath.Join(r.opts.ArtifactsDir, record.FileName(name, "base")), rec); err != nil {
			r.log.printf("%-11s %v", name, err)
		}
	}
	return nil
}

// watchAvailability requests the app through the ingress every
// watchInterval from now until the roll settled, counting the requests
// not answered.
func (u *upgradeRoll) watchAvailability(ctx context.Context) error {
	r := u.run
	for _, name := range r.opts.Envs {
		route, err := probe.OpenAppRoute(ctx, r.Env(name).Clients, name)
		if err != nil {
			return fmt.Errorf("%s: watching the app's availability: %w", name, err)
		}
		u.watches[name] = probe.WatchApp(ctx, route, probe.WatchOptions{Interval: watchInterval, Timeout: watchTimeout, Out: r.out, Label: fmt.Sprintf("%-11s", name)})
	}
	return nil
}

// stopWatches ends the availability watches and keeps what they saw; safe
// to call again.
func (u *upgradeRoll) stopWatches() {
	for name, w := range u.watches {
		u.reports[name].Availability = w.Stop()
	}
	clear(u.watches)
}

// publishHead serves the head (and the charts again); the roll's times
// count from here.
func (u *upgradeRoll) publishHead(ctx context.Context) error {
	u.published = time.Now()
	commit, err := u.run.publish(ctx, u.head)
	if err != nil {
		return fmt.Errorf("publishing the head: %w", err)
	}
	u.headCommit = commit
	u.run.log.printf("published the head %s as %s; rolling %s from the base %s", u.git.Origin(), commit, strings.Join(u.run.opts.Envs, ", "), u.base)
	return nil
}

// rollToHead waits for every environment at the head as the wait step does
// (fail fast, diagnostics), timing publish → green or failure.
func (u *upgradeRoll) rollToHead(ctx context.Context) error {
	r := u.run
	headOrigin := u.git.Origin()
	err := eachEnv(ctx, r.state, r.opts.Envs, func(ctx context.Context, e *Environment) error {
		if err := fetchRevision(ctx, e, u.git, u.headCommit); err != nil {
			return err
		}
		err := r.waitAndRecord(ctx, e, u.published)
		outcome := r.state.outcome(e.Name)
		rep := u.reports[e.Name]
		rep.Head, rep.Ready, rep.Took = headOrigin, outcome.err, time.Since(u.published)
		if outcome.report != nil {
			// The wait's own end, before any diagnostics.
			rep.Took = outcome.report.Start.Add(outcome.report.Total).Sub(u.published)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("rolling to the head %s: %w", headOrigin, err)
	}
	return nil
}

// settle keeps the availability watch going for settle once an environment
// is Ready at the head, then stops it.
func (u *upgradeRoll) settle(ctx context.Context) error {
	anyReady := false
	for _, rep := range u.ordered {
		anyReady = anyReady || rep.Ready == nil
	}
	if anyReady {
		select {
		case <-time.After(settle):
		case <-ctx.Done():
			return fmt.Errorf("settling after the roll: %w", ctx.Err())
		}
	}
	u.stopWatches()
	return nil
}

// checkHead runs the traffic check again where the head is Ready.
func (u *upgradeRoll) checkHead(ctx context.Context) error {
	for _, name := range u.run.opts.Envs {
		if rep := u.reports[name]; rep.Ready == nil {
			rep.Answer, rep.Traffic = checkTraffic(ctx, u.run.Env(name))
		}
	}
	return nil
}

// whatChanged records the head, prints each environment's report with
// what the upgrade changed (record.Diff of the base's and the head's
// records), and fails when more requests failed than allowed.
func (u *upgradeRoll) whatChanged(ctx context.Context) error {
	r := u.run
	var errs []error
	for _, name := range r.opts.Envs {
		rep := u.reports[name]
		if headRecord, err := r.records.current(ctx, r.Env(name)); err != nil {
			r.log.printf("%-11s recording the head: %v", name, err)
		} else {
			rep.Changes = record.Diff(u.baseRecords[name], headRecord)
			r.state.report.SetChanges(name, rep.Changes)
		}
		for _, line := range strings.Split(rep.String(), "\n") {
			r.log.printf("%-11s %s", name, line)
		}
		if r.opts.MaxFailedRequests >= 0 && rep.Availability.Failed > r.opts.MaxFailedRequests {
			errs = append(errs, fmt.Errorf("%s: %d request(s) to the app failed while the head rolled out, more than E2E_MAX_FAILED_REQUESTS=%d allows: %s",
				name, rep.Availability.Failed, r.opts.MaxFailedRequests, rep.Availability))
		}
	}
	return errors.Join(errs...)
}

// trafficSettle bounds how long the traffic check at a base asks again:
// the wait just said Ready, but a Service's endpoints and kube-proxy's
// rules follow (seconds on a loaded machine), and until then the ingress
// answers 502. At a head the availability watch and settle come first.
const trafficSettle = 30 * time.Second

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

// checkTrafficAfterReady is checkTraffic asked again each second, within
// trafficSettle, for the moments right after the wait went green.
func checkTrafficAfterReady(ctx context.Context, e *Environment) (*probe.AppAnswer, error) {
	var answer *probe.AppAnswer
	spec := poll.Every(time.Second).Within(trafficSettle).For("GET / through the nginx ingress to answer 200 from a pod of the app")
	err := poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		a, err := checkTraffic(ctx, e)
		answer = a
		return err == nil, err
	})
	return answer, err
}
