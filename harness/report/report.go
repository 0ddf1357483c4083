// Package report is a run's report: one versioned JSON file (report.json)
// holding, per environment, the steps with their start and end, every Flux
// object and workload with when it turned Ready (or why not), the verdict,
// the diagnosis and what changed against a base record; plus the checks'
// results. RenderHTML draws it as one self-contained page, failures first;
// RenderMarkdown as a short job summary.
//
// The model has no field for HelmRelease values, substitutions or Secret
// data, SetChanges withholds every raw value, and messages copied from the
// cluster are scrubbed of values they quote (Builder.SetScrubbers): a
// report is uploaded like the other artifacts and must never carry a secret.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
)

// Version is the report's format version, written into every file.
const Version = 1

// FileName is the report's file name in the artifacts directory, next to
// the records.
const FileName = "report.json"

// Verdict is how an environment, or the whole run, ended.
type Verdict string

// The verdicts, from best to worst.
const (
	Green Verdict = "green"
	// NotReady: the readiness wait ended with objects not Ready, or one
	// failed for good.
	NotReady Verdict = "not ready"
	// FailedStep: a step other than the wait failed, so readiness never
	// judged the environment.
	FailedStep Verdict = "failed step"
	// FailedChecks: every environment is green but a check failed (run
	// verdict only).
	FailedChecks Verdict = "failed checks"
	// Unknown: nothing judged the environment (the report was written
	// before its wait ran).
	Unknown Verdict = "unknown"
)

// verdicts are every verdict a report is given, for Read to refuse others.
var verdicts = []Verdict{Green, NotReady, FailedStep, FailedChecks, Unknown}

// Report is one run.
type Report struct {
	Version      int           `json:"version"`
	Run          Run           `json:"run"`
	Steps        []Step        `json:"steps,omitempty"` // steps that serve every environment
	Environments []Environment `json:"environments"`
	Checks       []Check       `json:"checks,omitempty"`
}

// Run identifies the run and what it deployed.
type Run struct {
	ID       string    `json:"id"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Fleet is the fleet directory; Revision the revision served (a
	// commit, or "working tree"); Base the revision an upgrade started
	// from, or the record the changes compare against.
	Fleet       string  `json:"fleet,omitempty"`
	Revision    string  `json:"revision,omitempty"`
	Base        string  `json:"base,omitempty"`
	FluxVersion string  `json:"fluxVersion,omitempty"`
	Verdict     Verdict `json:"verdict"`
}

// Environment is one environment's part of the run.
type Environment struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	// Steps run for this environment only (an upgrade's steps).
	Steps []Step `json:"steps,omitempty"`
	// WaitStart and WaitEnd bound the readiness wait; WaitEnd is when
	// everything was Ready on a green environment.
	WaitStart time.Time `json:"waitStart,omitzero"`
	WaitEnd   time.Time `json:"waitEnd,omitzero"`
	Objects   []Object  `json:"objects,omitempty"`
	// Failure is the object that decided a not-ready verdict.
	Failure *Failure `json:"failure,omitempty"`
	// Diagnosis is diagnose.Summarize's screen; Summarize replaces the
	// values each object's messages quote by their digests (record.Scrubbers).
	Diagnosis string `json:"diagnosis,omitempty"`
	// Changes are the record diff against Base, one line each.
	Base    string   `json:"base,omitempty"`
	Changes []string `json:"changes,omitempty"`
}

// Step is one named step of the bring-up.
type Step struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Error is the step's error, empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// Object is one Flux object or workload the readiness wait watched.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// FirstSeen is when the harness started watching the object; the
	// readiness wait reports its own start for every object.
	FirstSeen time.Time `json:"firstSeen"`
	// ReadyAt is when the harness saw it Ready; zero when it never was.
	ReadyAt      time.Time `json:"readyAt,omitzero"`
	AlreadyReady bool      `json:"alreadyReady,omitempty"`
	// Reason and Message are the last judgement of an object not Ready.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Failed  bool   `json:"failed,omitempty"`
	// After lists the objects (by Ref) this one waits for: its
	// Kustomization inventory, its dependsOn. The critical path follows it.
	After []string `json:"after,omitempty"`
}

// Ref names the object as the harness does: "Kind/namespace/name", or
// "Kind/name" for a cluster-scoped object.
func (o Object) Ref() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// Ready reports whether the object turned Ready.
func (o Object) Ready() bool { return !o.ReadyAt.IsZero() }

// Failure is the object that failed, or the first one still pending.
type Failure struct {
	Object  string `json:"object"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
	// Owner is the workload owning a failed pod, when known.
	Owner string `json:"owner,omitempty"`
}

// CheckResult is how one check ended.
type CheckResult string

// The check results.
const (
	Passed  CheckResult = "passed"
	Failed  CheckResult = "failed"
	Skipped CheckResult = "skipped"
)

// Check is one test's result.
type Check struct {
	Name    string      `json:"name"`
	Env     string      `json:"env,omitempty"`
	Result  CheckResult `json:"result"`
	Seconds float64     `json:"seconds"`
	// Failure is the first line of the failure message.
	Failure string `json:"failure,omitempty"`
}

// Env returns the environment named name, or nil.
func (r *Report) Env(name string) *Environment {
	for i := range r.Environments {
		if r.Environments[i].Name == name {
			return &r.Environments[i]
		}
	}
	return nil
}

// Write writes r as indented JSON to path, creating its directory. The file
// is 0600 and a directory it creates 0700, like the other artifacts: only
// their owner reads them before they are uploaded.
func Write(path string, r *Report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding run report %s: %w", path, err)
	}
	return privatefile.Write(path, append(data, '\n'))
}

// Read reads a report written by Write.
func Read(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading run report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("run report %s: not a report: %w", path, err)
	}
	if r.Version != Version {
		return nil, fmt.Errorf("run report %s: version %d, this harness reads version %d", path, r.Version, Version)
	}
	if problems := r.problems(); len(problems) > 0 {
		return nil, fmt.Errorf("run report %s: %s", path, strings.Join(problems, "; "))
	}
	return &r, nil
}

// problems lists what r lacks of what every written report has: the run's
// id and start (the harness gives them) and the verdicts judge sets. Without
// them another version-1 file (a night, "{}") would render as a run.
func (r *Report) problems() []string {
	var problems []string
	if r.Run.ID == "" {
		problems = append(problems, "no run.id")
	}
	if r.Run.Started.IsZero() {
		problems = append(problems, "no run.started")
	}
	problems = appendVerdictProblem(problems, "run.verdict", r.Run.Verdict)
	for i, e := range r.Environments {
		if e.Name == "" {
			problems = append(problems, fmt.Sprintf("no environments[%d].name", i))
		}
		problems = appendVerdictProblem(problems, fmt.Sprintf("environments[%d].verdict", i), e.Verdict)
	}
	return problems
}

// appendVerdictProblem adds why v, the verdict in field, is not one a
// report is given, if it is not.
func appendVerdictProblem(problems []string, field string, v Verdict) []string {
	switch {
	case v == "":
		return append(problems, "no "+field)
	case !slices.Contains(verdicts, v):
		return append(problems, fmt.Sprintf("%s %q is none of %s", field, v, quoted(verdicts)))
	}
	return problems
}

func quoted(vs []Verdict) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
