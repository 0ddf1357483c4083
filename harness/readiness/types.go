// Package readiness waits for a Flux-managed cluster to converge by watching
// (not polling) every Flux object, the workloads in Kustomization inventories
// and all pods, and fails fast with a typed error as soon as the cluster is
// known not to converge without a change to the fleet (a stalled object, a
// build failure on the current revision, a HelmRelease whose install or
// upgrade failed twice in the same way, an image that cannot be pulled).
package readiness

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// Options tunes WaitForFlux. The zero value is usable.
type Options struct {
	// Env labels progress lines and errors (e.g. "staging").
	Env string
	// Out receives one timestamped progress line per state change; nil discards.
	Out io.Writer
	// PodFailureGrace is how long a pod problem (fluxobj.PodProblems: an
	// image that does not pull, a container running but never Ready, a pod
	// that cannot be scheduled) may last before it is a failure; a crash
	// loop fails at once. Default 45s.
	PodFailureGrace time.Duration
	// SourceFailureGrace is how long a source may report an authentication,
	// URL or fetch failure before that is treated as a failure. Default 20s.
	SourceFailureGrace time.Duration
	// Kinds restricts the Flux kinds watched; default every kind of
	// fluxobj.Kinds, each only when its CRD is installed.
	Kinds []string
	// Namespaces restricts the namespaces watched; default all.
	Namespaces []string
	// Require lists objects that must exist (and be Ready) before the wait can
	// succeed; default the root Kustomization flux-system/flux-system.
	Require []fluxobj.ObjectRef
	// RawValues keeps controllers' messages as they are. By default the
	// values of HelmReleases and Kustomization substitutions that a message
	// about a Flux object quotes (Helm's errors quote rejected values) are
	// replaced by their digests (record.Scrubbers) before any part of the
	// message is printed or kept in an error.
	RawValues bool
}

func (o Options) withDefaults() Options {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.PodFailureGrace <= 0 {
		o.PodFailureGrace = 45 * time.Second
	}
	if o.SourceFailureGrace <= 0 {
		o.SourceFailureGrace = 20 * time.Second
	}
	if len(o.Kinds) == 0 {
		for _, k := range fluxobj.Kinds() {
			o.Kinds = append(o.Kinds, k.GVK.Kind)
		}
	}
	if o.Require == nil {
		o.Require = []fluxobj.ObjectRef{fluxobj.SyncKustomization()}
	}
	return o
}

// FailureError reports an object that will not become Ready without a change
// to the fleet. Terminal is true when the controller itself gave up (Stalled,
// retries exhausted, build failed on the current revision); false when the
// harness gave up after a grace period (a source or pod kept failing).
type FailureError struct {
	Env      string
	Object   string // "Kind ns/name"
	Reason   string
	Message  string
	Terminal bool
	// Pod failures only.
	Container string
	Image     string
	Owner     string // owning workload, "Deployment ns/name", when known
}

func (e *FailureError) Error() string {
	var b strings.Builder
	if e.Env != "" {
		b.WriteString(e.Env + ": ")
	}
	b.WriteString(e.Object)
	if e.Owner != "" {
		b.WriteString(" (of " + e.Owner + ")")
	}
	if e.Terminal {
		b.WriteString(" failed")
	} else {
		b.WriteString(" keeps failing")
	}
	if e.Container != "" {
		fmt.Fprintf(&b, ", container %s", e.Container)
	}
	if e.Image != "" {
		fmt.Fprintf(&b, " image %s", e.Image)
	}
	b.WriteString(": " + e.Reason)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Pending is one object that was not Ready when the wait ended.
type Pending struct {
	Object  string
	Reason  string
	Message string
}

// NotReadyError is returned when the context ends before everything is Ready;
// it lists every object still pending and unwraps to the context's error.
type NotReadyError struct {
	Env     string
	Elapsed time.Duration
	Pending []Pending
	Err     error
}

func (e *NotReadyError) Error() string {
	var b strings.Builder
	env := e.Env
	if env != "" {
		env += ": "
	}
	fmt.Fprintf(&b, "%snot ready after %s (%v); %d object(s) pending:", env, e.Elapsed.Round(100*time.Millisecond), e.Err, len(e.Pending))
	for _, p := range e.Pending {
		fmt.Fprintf(&b, "\n  %s  %s", p.Object, p.Reason)
		if p.Message != "" {
			fmt.Fprintf(&b, ": %s", p.Message)
		}
	}
	return b.String()
}

func (e *NotReadyError) Unwrap() error { return e.Err }

// ObjectTiming is how long one object took to become Ready.
type ObjectTiming struct {
	Object string
	// AlreadyReady is true when the object was Ready when the wait started.
	AlreadyReady bool
	// TimeToReady is measured from the start of the wait to the moment the
	// harness saw the object Ready.
	TimeToReady time.Duration
	// Transition is the Ready condition's lastTransitionTime (second
	// granularity, set by the controller); zero for workloads.
	Transition time.Time
	Seen       time.Time
	// Latency is Seen minus Transition: how late the harness saw the flip.
	// Because Transition is truncated to seconds, it is accurate to ±1s.
	Latency time.Duration
}

// Report summarizes a finished wait.
type Report struct {
	Env     string
	Start   time.Time
	Total   time.Duration
	Objects []ObjectTiming
}

// String renders the report as a table, slowest first.
func (r *Report) String() string {
	objs := append([]ObjectTiming(nil), r.Objects...)
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].TimeToReady > objs[j].TimeToReady })
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ready in %s (%d objects)\n", r.Env, r.Total.Round(100*time.Millisecond), len(objs))
	for _, o := range objs {
		switch {
		case o.AlreadyReady:
			fmt.Fprintf(&b, "  %-60s  already ready\n", o.Object)
		case o.Transition.IsZero():
			fmt.Fprintf(&b, "  %-60s  %8s\n", o.Object, o.TimeToReady.Round(100*time.Millisecond))
		default:
			fmt.Fprintf(&b, "  %-60s  %8s  latency %s (±1s)\n", o.Object, o.TimeToReady.Round(100*time.Millisecond), o.Latency.Round(10*time.Millisecond))
		}
	}
	return b.String()
}
