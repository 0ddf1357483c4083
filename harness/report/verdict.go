package report

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// VerdictLine is an environment's verdict in one line, the same in every
// rendering:
//
//	staging: green in 2m3s
//	production: not ready: HelmRelease/podinfo/podinfo failed: InstallFailed
//	staging: failed step "clusters": creating cluster fleet-staging: ...
func (r *Report) VerdictLine(e *Environment) string {
	switch e.Verdict {
	case Green:
		if d, ok := r.TimeToGreen(e); ok {
			return e.Name + ": green in " + formatDuration(d)
		}
		return e.Name + ": green"
	case NotReady:
		if e.Failure == nil {
			return e.Name + ": not ready"
		}
		return e.Name + ": not ready: " + e.Failure.Object + failedOrPending(e) + e.Failure.Reason
	case FailedStep:
		if s, ok := r.FailedStep(e); ok {
			return fmt.Sprintf("%s: failed step %q: %s", e.Name, s.Name, s.Error)
		}
		return e.Name + ": failed step"
	default:
		return e.Name + ": " + string(Unknown) + " (no readiness wait recorded)"
	}
}

func failedOrPending(e *Environment) string {
	i := slices.IndexFunc(e.Objects, func(o Object) bool { return o.Ref() == e.Failure.Object })
	if i >= 0 && !e.Objects[i].Failed {
		return " not Ready: "
	}
	if i < 0 {
		return ": "
	}
	return " failed: "
}

// FailedStep is the first failed step of an environment: its own, else
// one of the run's.
func (r *Report) FailedStep(e *Environment) (Step, bool) {
	for _, steps := range [][]Step{e.Steps, r.Steps} {
		if i := slices.IndexFunc(steps, func(s Step) bool { return s.Error != "" }); i >= 0 {
			return steps[i], true
		}
	}
	return Step{}, false
}

// TimeToGreen is how long after the run started an environment was all
// Ready; false when it never was.
func (r *Report) TimeToGreen(e *Environment) (time.Duration, bool) {
	if e.Verdict != Green || e.WaitEnd.IsZero() {
		return 0, false
	}
	start := r.Run.Started
	if start.IsZero() {
		start = e.WaitStart
	}
	return e.WaitEnd.Sub(start), true
}

// Headline is the run's verdict in one line.
func (r *Report) Headline() string {
	id := r.Run.ID
	if id == "" {
		id = r.Run.Started.Format(time.DateTime)
	}
	return "flux-fleet run " + id + ": " + string(r.Run.Verdict)
}

// slowest returns the n objects that took longest to turn Ready, slowest
// first; objects already Ready when the wait started do not count.
func slowest(e *Environment, n int) []Object {
	var objs []Object
	for _, o := range e.Objects {
		if o.Ready() && !o.AlreadyReady {
			objs = append(objs, o)
		}
	}
	slices.SortStableFunc(objs, func(a, b Object) int {
		return cmp.Compare(b.ReadyAt.Sub(b.FirstSeen), a.ReadyAt.Sub(a.FirstSeen))
	})
	return objs[:min(n, len(objs))]
}
