package report

import (
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/readiness"
)

// FromReadiness is an environment's part of the report as one readiness
// wait left it: every object with when it turned Ready, the pending ones
// with their last reason, the verdict and the object that decided it. rep
// may be nil (the wait could not start); err is the wait's error.
func FromReadiness(env string, rep *readiness.Report, err error) Environment {
	e := Environment{Name: env, Verdict: Green}
	objects := map[string]*Object{}
	if rep != nil {
		e.WaitStart, e.WaitEnd = rep.Start, rep.Start.Add(rep.Total)
		for _, t := range rep.Objects {
			o := objectAt(t.Object, rep.Start)
			o.ReadyAt, o.AlreadyReady = t.Seen, t.AlreadyReady
			objects[t.Object] = &o
		}
	}
	if err != nil {
		e.Verdict = NotReady
		e.Failure = failureOf(err, objects, e.WaitStart)
	}
	for _, o := range objects {
		e.Objects = append(e.Objects, *o)
	}
	sort.Slice(e.Objects, func(i, j int) bool { return e.Objects[i].Ref() < e.Objects[j].Ref() })
	return e
}

// failureOf records the wait's error on the objects it names and returns
// the object that decided the verdict.
func failureOf(err error, objects map[string]*Object, seen time.Time) *Failure {
	pending := func(ref, reason, message string, failed bool) {
		o, ok := objects[ref]
		if !ok {
			n := objectAt(ref, seen)
			o = &n
			objects[ref] = o
		}
		o.Reason, o.Message, o.Failed = reason, message, failed
	}
	var fe *readiness.FailureError
	if errors.As(err, &fe) {
		msg := fe.Message
		if fe.Container != "" {
			msg = strings.TrimSuffix("container "+fe.Container+" image "+fe.Image+": "+msg, ": ")
		}
		pending(fe.Object, fe.Reason, msg, true)
		return &Failure{Object: fe.Object, Reason: fe.Reason, Message: msg, Owner: fe.Owner}
	}
	var nr *readiness.NotReadyError
	if errors.As(err, &nr) && len(nr.Pending) > 0 {
		for _, p := range nr.Pending {
			pending(p.Object, p.Reason, p.Message, false)
		}
		p := blocking(nr.Pending)
		return &Failure{Object: p.Object, Reason: p.Reason, Message: p.Message}
	}
	return &Failure{Object: "readiness wait", Reason: firstLine(err.Error())}
}

// blocking picks the pending object most likely to be the cause: the
// first one not merely waiting for a dependency, since those only echo it.
func blocking(pending []readiness.Pending) readiness.Pending {
	for _, p := range pending {
		if !strings.Contains(p.Reason, "Dependency") && !strings.Contains(p.Reason, "Progressing") {
			return p
		}
	}
	return pending[0]
}

// objectAt parses a harness object reference, "Kind/namespace/name" or
// "Kind/name", into an object first seen at seen.
func objectAt(ref string, seen time.Time) Object {
	parts := strings.SplitN(ref, "/", 3)
	switch len(parts) {
	case 3:
		return Object{Kind: parts[0], Namespace: parts[1], Name: parts[2], FirstSeen: seen}
	case 2:
		return Object{Kind: parts[0], Name: parts[1], FirstSeen: seen}
	default:
		return Object{Kind: "Object", Name: ref, FirstSeen: seen}
	}
}

// firstLine keeps the first line of s, at most 300 characters: reports
// show one line per failure, the artifacts hold the rest.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:297]) + "..."
	}
	return s
}
