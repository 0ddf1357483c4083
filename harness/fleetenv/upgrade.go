package fleetenv

import (
	"context"
	"errors"
	"fmt"
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
	// ingress's resolver) follow, and a Service pruned while in use or a pod
	// stopped too early shows only then.
	settle = 10 * time.Second
	// watchInterval and watchTimeout bound the availability watch: five
	// requests a second at most, each given 2s.
	watchInterval = 200 * time.Millisecond
	watchTimeout  = 2 * time.Second
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

// UpgradeFromBase is the step "upgrade" that a base (E2E_BASE) adds after
// the wait: the base, brought up by the steps before, rolled to the head
// (E2E_REVISION, else the working tree).
func UpgradeFromBase() Step {
	return Step{Name: "upgrade", run: func(ctx context.Context, r *Run) error {
		_, err := r.Upgrade(ctx, r.opts.Revision)
		return err
	}}
}

// Upgrade rolls every environment from what is served now (the base, which
// must be Ready) to head — a git revision of the fleet's repository, or ""
// for the working tree — in named steps, each with its timing line
// (upgradeRoll.steps). The head's readiness outcome is also each
// Environment's Ready, for the checks that follow. The error says why the
// upgrade could not run, or that more requests failed than
// Options.MaxFailedRequests allows; a head that is not Ready is in the
// reports, not an error.
func (r *Run) Upgrade(ctx context.Context, head string) ([]*UpgradeReport, error) {
	git := r.Git()
	if git == nil {
		return nil, errors.New("nothing is served yet: bring the base up first")
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout+settle+2*time.Minute)
	defer cancel()
	u := newUpgradeRoll(r, git, head)
	defer u.stopWatches()
	for _, s := range u.steps() {
		if err := r.timed(ctx, s.name, s.do); err != nil {
			return u.ordered, err
		}
	}
	return u.ordered, nil
}
