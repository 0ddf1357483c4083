package report

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// Builder collects a report while the run goes. It is safe for concurrent
// use: environments come up in parallel lanes.
type Builder struct {
	mu sync.Mutex
	r  Report
	// after: per environment, what each object waits for (by Ref), merged
	// into the objects by Report because readiness may be set later.
	after map[string]map[string][]string
	// scrub: per environment, the scrubbers of the values its messages may
	// quote (SetScrubbers), applied by Report: they may come after the text.
	scrub map[string][]*record.Scrubbers
}

// NewBuilder starts the report of a run; run.Verdict is computed by Report.
func NewBuilder(run Run) *Builder {
	return &Builder{r: Report{Version: Version, Run: run}, after: map[string]map[string][]string{}, scrub: map[string][]*record.Scrubbers{}}
}

// env returns the environment named name, adding it in order of first
// mention. The caller holds b.mu.
func (b *Builder) env(name string) *Environment {
	if e := b.r.Env(name); e != nil {
		return e
	}
	b.r.Environments = append(b.r.Environments, Environment{Name: name})
	return &b.r.Environments[len(b.r.Environments)-1]
}

// AddStep records one finished step: env is "" for a step that serves
// every environment (clusters, Flux install), else the environment's name.
// The error is cut to its first line by Report, after scrubbing, so that no
// value is cut in two.
func (b *Builder) AddStep(env, name string, start, end time.Time, err error) {
	s := Step{Name: name, Start: start, End: end}
	if err != nil {
		s.Error = strings.TrimSpace(err.Error())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if env == "" {
		b.r.Steps = append(b.r.Steps, s)
		return
	}
	e := b.env(env)
	e.Steps = append(e.Steps, s)
}

// SetReadiness records an environment's readiness wait (see FromReadiness);
// a later wait (an upgrade's, a re-sync's) replaces an earlier one. A green
// wait also drops the diagnosis: it explained a failure that is gone.
func (b *Builder) SetReadiness(env string, rep *readiness.Report, err error) {
	part := FromReadiness(env, rep, err)
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.env(env)
	e.Verdict, e.WaitStart, e.WaitEnd = part.Verdict, part.WaitStart, part.WaitEnd
	e.Objects, e.Failure = part.Objects, part.Failure
	if part.Verdict == Green {
		e.Diagnosis = ""
	}
}

// ClearEnvironment forgets what the fleet on env left in the report — its
// own steps, objects, dependencies, verdict, diagnosis and changes — for a
// fleet taken off a kept cluster: the next fleet's report must show only
// its own objects and failure. The environment keeps its place in the
// report; the run's shared steps (clusters, Flux install) stay.
func (b *Builder) ClearEnvironment(env string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.env(env)
	*e = Environment{Name: env}
	delete(b.after, env)
}

// SetDiagnosis records diagnose.Summarize's screen for an environment.
func (b *Builder) SetDiagnosis(env, summary string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.env(env).Diagnosis = strings.TrimRight(summary, "\n")
}

// SetChanges records what changed against a base record, every value
// withheld (see ChangeLines).
func (b *Builder) SetChanges(env string, c record.Changes) {
	lines := ChangeLines(c)
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.env(env)
	e.Base, e.Changes = describeFleet(c.From), lines
}

// SetDependencies records what each Kustomization of a run record waits
// for: the objects of its inventory, so the critical path can follow them.
func (b *Builder) SetDependencies(env string, rec *record.Record) {
	for _, k := range rec.Kustomizations {
		var refs []string
		for _, o := range k.Objects {
			refs = append(refs, o.Ref)
		}
		b.AddDependency(env, k.Ref, refs...)
	}
}

// AddDependency records that object waits for after (a dependsOn, an
// inventory entry), all named as "Kind/namespace/name".
func (b *Builder) AddDependency(env, object string, after ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.after[env] == nil {
		b.after[env] = map[string][]string{}
	}
	b.after[env][object] = append(b.after[env][object], after...)
}

// AddCheck records one check's result; Report keeps its failure's first
// line, after scrubbing.
func (b *Builder) AddCheck(c Check) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.r.Checks = append(b.r.Checks, c)
}

// Report returns the report so far, finished at finished: the objects'
// dependencies merged, every verdict computed. The builder keeps going.
func (b *Builder) Report(finished time.Time) *Report {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := cloneReport(&b.r)
	r.Run.Finished = finished
	for i := range r.Environments {
		e := &r.Environments[i]
		for j := range e.Objects {
			o := &e.Objects[j]
			o.After = slices.Compact(slices.Sorted(slices.Values(b.after[e.Name][o.Ref()])))
		}
	}
	b.scrubReport(r)
	judge(r)
	return r
}

// SetScrubbers adds what hides env's values (HelmRelease values, post-build
// substitutions) in the text the report copies from its cluster: each
// object's messages, step errors, check failures. Earlier scrubbers stay,
// for text from before the values changed. The diagnosis is left alone:
// diagnose.Summarize scrubbed it, object by object.
func (b *Builder) SetScrubbers(env string, s *record.Scrubbers) {
	if s == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scrub[env] = append(b.scrub[env], s)
}

// scrubReport applies the scrubbers to r (a clone), then cuts step errors
// and check failures to their first line. The caller holds b.mu.
func (b *Builder) scrubReport(r *Report) {
	var every []*record.Scrubbers
	for _, env := range slices.Sorted(maps.Keys(b.scrub)) {
		every = append(every, b.scrub[env]...)
	}
	for i := range r.Steps {
		r.Steps[i].Error = firstLine(scrubAll(every, r.Steps[i].Error))
	}
	for i := range r.Checks {
		c := &r.Checks[i]
		sc := every
		if c.Env != "" {
			sc = b.scrub[c.Env]
		}
		c.Failure = firstLine(scrubAll(sc, c.Failure))
	}
	for i := range r.Environments {
		e := &r.Environments[i]
		sc := b.scrub[e.Name]
		for j := range e.Steps {
			e.Steps[j].Error = firstLine(scrubAll(sc, e.Steps[j].Error))
		}
		for j := range e.Objects {
			o := &e.Objects[j]
			o.Reason, o.Message = scrubObject(sc, o.Ref(), o.Reason), scrubObject(sc, o.Ref(), o.Message)
		}
		if f := e.Failure; f != nil {
			f.Reason, f.Message = scrubObject(sc, f.Object, f.Reason), scrubObject(sc, f.Object, f.Message)
		}
	}
}

func scrubAll(scrubbers []*record.Scrubbers, text string) string {
	for _, s := range scrubbers {
		text = s.All(text)
	}
	return text
}

func scrubObject(scrubbers []*record.Scrubbers, ref, text string) string {
	for _, s := range scrubbers {
		text = s.Object(ref, text)
	}
	return text
}

// cloneReport copies r deeply enough that the builder's later changes do
// not reach a report already handed out.
func cloneReport(src *Report) *Report {
	r := *src
	r.Steps = slices.Clone(src.Steps)
	r.Checks = slices.Clone(src.Checks)
	r.Environments = slices.Clone(src.Environments)
	for i := range r.Environments {
		e := &r.Environments[i]
		e.Steps, e.Objects, e.Changes = slices.Clone(e.Steps), slices.Clone(e.Objects), slices.Clone(e.Changes)
		if e.Failure != nil {
			f := *e.Failure
			e.Failure = &f
		}
	}
	return &r
}

// judge sets each environment's verdict and the run's. A failed step of
// the environment's own makes it a failed step; a failed step that serves
// every environment (the wait runs them all) only when readiness never
// judged it, so one lane's failure does not paint the other red. The run
// takes its worst environment, a failed shared step, or failed checks.
func judge(r *Report) {
	failed := func(s Step) bool { return s.Error != "" }
	runStepFailed := slices.ContainsFunc(r.Steps, failed)
	worst := Green
	for i := range r.Environments {
		e := &r.Environments[i]
		switch {
		case e.Verdict == NotReady:
		case slices.ContainsFunc(e.Steps, failed), e.Verdict == "" && runStepFailed:
			e.Verdict = FailedStep
		case e.Verdict == "":
			e.Verdict = Unknown
		}
		if rank(e.Verdict) > rank(worst) {
			worst = e.Verdict
		}
	}
	if runStepFailed && rank(worst) < rank(NotReady) {
		worst = FailedStep
	}
	if worst == Green && slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Result == Failed }) {
		worst = FailedChecks
	}
	r.Run.Verdict = worst
}

func rank(v Verdict) int {
	return slices.Index([]Verdict{Green, FailedChecks, Unknown, NotReady, FailedStep}, v)
}

// sortedObjects returns objects ordered by when they turned Ready, those
// never Ready last.
func sortedObjects(objs []Object) []Object {
	out := slices.Clone(objs)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Ready() != b.Ready() {
			return a.Ready()
		}
		if !a.ReadyAt.Equal(b.ReadyAt) {
			return a.ReadyAt.Before(b.ReadyAt)
		}
		return a.Ref() < b.Ref()
	})
	return out
}
