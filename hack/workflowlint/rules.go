package workflowlint

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/rhysd/actionlint"
)

// Finding is one broken project rule in a workflow.
type Finding struct {
	File string
	Line int
	Rule string
	Msg  string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s [%s]", f.File, f.Line, f.Msg, f.Rule) }

// The project's rules, beyond actionlint's: what the workflows promise
// about secrets, the kit cache and the nightly summary (docs/ci.md).
const (
	RuleSecretInRun   = "secret-in-run"   // a secret expanded into a script instead of its environment
	RuleKubeconfig    = "kubeconfig"      // a kubeconfig secret written other than to a 0600 file, or printed
	RuleKitCacheKey   = "kit-cache-key"   // a kit cache not keyed by go run ./hack/kit -hash
	RuleKitCacheSave  = "kit-cache-save"  // a kit cache saved off main
	RuleSummaryNeeds  = "summary-needs"   // the nightly summary not after every job, or not always
	RuleClustersNotes = "clusters-notice" // no notice when no existing cluster is configured
	RuleScenariosPkg  = "e2e-scenarios"   // a job's go test takes e2e/scenarios along with the e2e suite
)

var (
	secretExpr = regexp.MustCompile(`\$\{\{[^}]*\bsecrets\s*[.\[]`)
	kitHashRun = regexp.MustCompile(`go run \./hack/kit -hash\b`)
	e2eTree    = regexp.MustCompile(`\bgo(testsum)? .*\./e2e/\.\.\.`)
	stepOutput = regexp.MustCompile(`steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)`)
)

// Check applies the project's rules to one parsed workflow.
func Check(path string, w *actionlint.Workflow) []Finding {
	var out []Finding
	add := func(pos *actionlint.Pos, rule, format string, args ...any) {
		line := 0
		if pos != nil {
			line = pos.Line
		}
		out = append(out, Finding{File: path, Line: line, Rule: rule, Msg: fmt.Sprintf(format, args...)})
	}
	for _, id := range sortedJobs(w) {
		job := w.Jobs[id]
		for _, st := range job.Steps {
			checkSecrets(st, add)
			checkKitCache(job, st, add)
			checkE2EPackage(st, add)
		}
	}
	checkSummary(w, add)
	return out
}

type addFunc func(pos *actionlint.Pos, rule, format string, args ...any)

func sortedJobs(w *actionlint.Workflow) []string {
	ids := make([]string, 0, len(w.Jobs))
	for id := range w.Jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func runScript(st *actionlint.Step) string {
	if r, ok := st.Exec.(*actionlint.ExecRun); ok && r.Run != nil {
		return r.Run.Value
	}
	return ""
}

func input(st *actionlint.Step, name string) string {
	if a, ok := st.Exec.(*actionlint.ExecAction); ok {
		if in := a.Inputs[name]; in != nil && in.Value != nil {
			return in.Value.Value
		}
	}
	return ""
}

func uses(st *actionlint.Step) string {
	if a, ok := st.Exec.(*actionlint.ExecAction); ok && a.Uses != nil {
		return a.Uses.Value
	}
	return ""
}

func str(s *actionlint.String) string {
	if s == nil {
		return ""
	}
	return s.Value
}

// checkSecrets: secrets reach scripts through env only (GitHub masks them
// in logs, but a secret pasted into a script lands in its file); a
// kubeconfig secret goes to a file created under umask 077 in the runner's
// temporary directory, and its variable is never echoed or traced.
func checkSecrets(st *actionlint.Step, add addFunc) {
	script := runScript(st)
	if secretExpr.MatchString(script) {
		add(st.Pos, RuleSecretInRun, "step %q expands a secret inside its script: pass it through env", str(st.Name))
	}
	if st.Env == nil {
		return
	}
	for _, v := range st.Env.Vars {
		if v.Value == nil || !strings.Contains(v.Value.Value, "E2E_KUBECONFIG") || !secretExpr.MatchString(v.Value.Value) {
			continue
		}
		name := v.Name.Value
		switch {
		case !strings.Contains(script, "umask 077"):
			add(st.Pos, RuleKubeconfig, "step %q writes the kubeconfig secret %s without umask 077", str(st.Name), name)
		case !strings.Contains(script, `>"$RUNNER_TEMP/`):
			add(st.Pos, RuleKubeconfig, "step %q must write the kubeconfig secret %s to a file in $RUNNER_TEMP", str(st.Name), name)
		case strings.Contains(script, "set -x") || regexp.MustCompile(`\becho\b[^\n]*\$\{?`+regexp.QuoteMeta(name)+`\b`).MatchString(script):
			add(st.Pos, RuleKubeconfig, "step %q prints the kubeconfig secret %s", str(st.Name), name)
		}
	}
}

// checkE2EPackage: a job runs the e2e suite as ./e2e/, not ./e2e/...,
// which adds e2e/scenarios: those need the offline kit, fail without it
// under CI, and already run in make test on every pull request.
func checkE2EPackage(st *actionlint.Step, add addFunc) {
	if e2eTree.MatchString(runScript(st)) {
		add(st.Pos, RuleScenariosPkg, "step %q runs ./e2e/...: run the e2e suite as ./e2e/ (e2e/scenarios runs in make test)", str(st.Name))
	}
}

// checkKitCache: a cache holding the kit is keyed by the kit's content
// hash, and saved on main only (a pull request's cache would evict main's).
func checkKitCache(job *actionlint.Job, st *actionlint.Step, add addFunc) {
	action := uses(st)
	if !strings.HasPrefix(action, "actions/cache") || !strings.Contains(input(st, "path"), "flux-fleet/kit") {
		return
	}
	if !keyedByKitHash(job, input(st, "key")) {
		add(st.Pos, RuleKitCacheKey, "kit cache step %q: key %q is not the output of a step running go run ./hack/kit -hash", str(st.Name), input(st, "key"))
	}
	if strings.HasPrefix(action, "actions/cache/save") && !onMainOnly(job, str(st.If)) {
		add(st.Pos, RuleKitCacheSave, "kit cache step %q saves off main: its if (or the step output it tests) must require refs/heads/main", str(st.Name))
	}
	if strings.HasPrefix(action, "actions/cache@") {
		add(st.Pos, RuleKitCacheSave, "kit cache step %q uses actions/cache, which saves on every branch: use actions/cache/restore and /save", str(st.Name))
	}
}

func stepByID(job *actionlint.Job, id string) *actionlint.Step {
	for _, st := range job.Steps {
		if str(st.ID) == id {
			return st
		}
	}
	return nil
}

// keyedByKitHash: the key uses the hash output of a step running the kit's
// -hash, or the primary key of a restore step that does.
func keyedByKitHash(job *actionlint.Job, key string) bool {
	for _, m := range stepOutput.FindAllStringSubmatch(key, -1) {
		st := stepByID(job, m[1])
		switch {
		case st == nil:
		case m[2] == "hash" && kitHashRun.MatchString(runScript(st)):
			return true
		case m[2] == "cache-primary-key" && keyedByKitHash(job, input(st, "key")):
			return true
		}
	}
	return false
}

// onMainOnly: cond requires refs/heads/main, or tests an output of a step
// whose own condition does.
func onMainOnly(job *actionlint.Job, cond string) bool {
	if strings.Contains(cond, "github.ref == 'refs/heads/main'") {
		return true
	}
	for _, m := range stepOutput.FindAllStringSubmatch(cond, -1) {
		if st := stepByID(job, m[1]); st != nil && st.If != nil && onMainOnly(job, st.If.Value) {
			return true
		}
	}
	return false
}

// checkSummary: a workflow with a summary job runs it always, after every
// other job, so that it sees every shard; the job that reads the existing
// clusters says so when none is configured.
func checkSummary(w *actionlint.Workflow, add addFunc) {
	for _, job := range w.Jobs {
		for _, st := range job.Steps {
			if st.Env == nil {
				continue
			}
			for _, v := range st.Env.Vars {
				if v.Value != nil && strings.Contains(v.Value.Value, "vars.E2E_EXISTING_CLUSTERS") && !strings.Contains(runScript(st), "::notice::") {
					add(st.Pos, RuleClustersNotes, "step %q reads E2E_EXISTING_CLUSTERS but emits no ::notice:: when it is unset", str(st.Name))
				}
			}
		}
	}
	summary := w.Jobs["summary"]
	if summary == nil {
		return
	}
	if !strings.Contains(str(summary.If), "always()") {
		add(summary.Pos, RuleSummaryNeeds, "job summary must run if: always(), so that failed shards are summarized too")
	}
	var needs []string
	for _, n := range summary.Needs {
		needs = append(needs, strings.ToLower(n.Value))
	}
	for _, id := range sortedJobs(w) {
		if id != "summary" && !slices.Contains(needs, id) {
			add(summary.Pos, RuleSummaryNeeds, "job summary does not need job %s: its shard would be missed", id)
		}
	}
}
