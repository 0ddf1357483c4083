package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
)

// The phases of a bring-up, in the order the report prints them.
const (
	phasePrepare = "prepare"       // offline checks, chart server, pre-flight, servers
	phaseCreate  = "create"        // kind create and Ready nodes, slowest environment
	phaseFlux    = "flux install"  // manifests applied, controllers Available, with the next two alongside
	phaseNetwork = "  Service net" // started by the clusters step, done within flux install: Service network and DNS ready, slowest environment
	phaseImages  = "  images"      // started by the clusters step, done within flux install: images into the nodes (or the check that they are there), slowest environment
	phaseSync    = "sync"          // sync objects applied, first revision fetched
	phaseReady   = "ready"         // every Flux object and workload Ready
	phaseGreen   = "green"         // all of the above: from nothing to every environment Ready
	phaseChecks  = "checks"        // GET / through the ingress reaches the app, every environment
	phaseDelete  = "delete"        // servers stopped, clusters deleted
	phaseResync  = "re-sync"       // edit published, fetched, applied, Ready again
)

// phaseOrder is the report's rows; the indented ones run inside the row
// above them and do not add to green.
var phaseOrder = []string{phasePrepare, phaseCreate, phaseFlux, phaseNetwork, phaseImages, phaseSync, phaseReady, phaseGreen, phaseChecks, phaseDelete}

// stepPhase maps fleetenv's step names to phases; the Service network and
// images come from the clusters' own timings.
var stepPhase = map[string]string{
	"offline checks": phasePrepare,
	"chart server":   phasePrepare,
	"pre-flight":     phasePrepare,
	"servers":        phasePrepare,
	"clusters":       phaseCreate,
	"flux install":   phaseFlux,
	"sync":           phaseSync,
	"wait":           phaseReady,
}

// sample is one bring-up's phases.
type sample struct {
	way     string
	phases  map[string]time.Duration
	loaded  map[string][]string // env → images sent to its nodes
	resyncs []time.Duration
	err     error
}

// clusterTiming is what one environment's cluster reports of its bring-up.
type clusterTiming struct {
	env           string
	network, load time.Duration
	loaded        []string
}

// fromRun fills the phases from the run's step timings and its clusters.
func (s *sample) fromRun(r *fleetenv.Run) error {
	var clusters []clusterTiming
	for _, env := range r.Options().Envs {
		if e := r.Env(env); e != nil && e.Cluster != nil {
			clusters = append(clusters, clusterTiming{env, e.Cluster.ServiceNetworkTook, e.Cluster.LoadTook, e.Cluster.Loaded})
		}
	}
	return s.fromSteps(r.Timings(), clusters)
}

func (s *sample) fromSteps(steps []fleetenv.StepTiming, clusters []clusterTiming) error {
	for _, st := range steps {
		phase, ok := stepPhase[st.Name]
		if !ok {
			// A new step would silently vanish from the table.
			return fmt.Errorf("the bench does not know bring-up step %q: add it to stepPhase", st.Name)
		}
		if phase != "" {
			s.phases[phase] += st.Took
		}
	}
	for _, c := range clusters {
		s.phases[phaseNetwork] = max(s.phases[phaseNetwork], c.network)
		s.phases[phaseImages] = max(s.phases[phaseImages], c.load)
		if s.loaded == nil {
			s.loaded = map[string][]string{}
		}
		s.loaded[c.env] = c.loaded
	}
	return nil
}

// line is the one-line summary of a sample.
func (s sample) line(i, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %d/%d: ", s.way, i, n)
	if s.err != nil {
		fmt.Fprintf(&b, "FAILED: %v; ", s.err)
	}
	fmt.Fprintf(&b, "green in %s (", secs(s.phases[phaseGreen]))
	for i, p := range []string{phaseCreate, phaseFlux, phaseNetwork, phaseImages, phaseSync, phaseReady} {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", strings.TrimSpace(p), secs(s.phases[p]))
	}
	fmt.Fprintf(&b, "), checks %s, delete %s", secs(s.phases[phaseChecks]), secs(s.phases[phaseDelete]))
	envs := make([]string, 0, len(s.loaded))
	for env := range s.loaded {
		envs = append(envs, env)
	}
	slices.Sort(envs)
	var loaded []string
	for _, env := range envs {
		loaded = append(loaded, fmt.Sprintf("%s %d", env, len(s.loaded[env])))
	}
	if len(loaded) > 0 {
		fmt.Fprintf(&b, "; images loaded: %s", strings.Join(loaded, ", "))
	}
	if len(s.resyncs) > 0 {
		var rs []string
		for _, d := range s.resyncs {
			rs = append(rs, secs(d))
		}
		fmt.Fprintf(&b, "; re-syncs %s", strings.Join(rs, " "))
	}
	return b.String()
}

// stats are the min, median and max of some durations.
type stats struct {
	n                int
	min, median, max time.Duration
}

func statsOf(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{n: len(s), min: s[0], median: med, max: s[len(s)-1]}
}

func (s stats) String() string {
	if s.n == 0 {
		return fmt.Sprintf("%-22s", "—")
	}
	return fmt.Sprintf("%6s %6s %6s    ", secs(s.min), secs(s.median), secs(s.max))
}

// report is the table of every phase per way (successful runs only), with
// the ratio of the medians of the second way to the first.
func report(samples []sample, ways []way) string {
	var b strings.Builder
	per := map[string][]sample{}
	for _, s := range samples {
		if s.err == nil {
			per[s.way] = append(per[s.way], s)
		}
	}
	fmt.Fprintf(&b, "\n%-14s", "phase")
	for _, w := range ways {
		fmt.Fprintf(&b, "%-22s", fmt.Sprintf("%s (n=%d)", w.name, len(per[w.name])))
	}
	if len(ways) == 2 {
		fmt.Fprintf(&b, "%s / %s", ways[1].name, ways[0].name)
	}
	fmt.Fprintf(&b, "\n%-14s", "")
	for range ways {
		fmt.Fprintf(&b, "%-22s", "   min    med    max")
	}
	if len(ways) == 2 {
		b.WriteString("(medians)")
	}
	b.WriteString("\n")
	for _, phase := range phaseOrder {
		fmt.Fprintf(&b, "%-14s", phase)
		var meds []time.Duration
		for _, w := range ways {
			var ds []time.Duration
			for _, s := range per[w.name] {
				ds = append(ds, s.phases[phase])
			}
			st := statsOf(ds)
			meds = append(meds, st.median)
			b.WriteString(st.String())
		}
		if len(meds) == 2 {
			b.WriteString(ratio(meds[1], meds[0]))
		}
		b.WriteString("\n")
	}
	var resyncs []time.Duration
	for _, s := range samples {
		resyncs = append(resyncs, s.resyncs...)
	}
	if len(resyncs) > 0 {
		fmt.Fprintf(&b, "%-14s%s(n=%d, kept clusters, every environment)\n", phaseResync, statsOf(resyncs), len(resyncs))
	}
	return b.String()
}

func ratio(a, b time.Duration) string {
	if b < 50*time.Millisecond || a < 50*time.Millisecond {
		return "—"
	}
	return fmt.Sprintf("%.1f×", float64(a)/float64(b))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
