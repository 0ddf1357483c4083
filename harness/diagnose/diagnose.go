// Package diagnose explains why a Flux-managed cluster did not converge: a
// one-screen summary (Flux object tree with reasons, failing pods with their
// last log lines, recent Warning events) and a directory of artifacts for a
// deeper look (every Flux object with status, events, controller and pod
// logs, workload summary, Secret names — never Secret data; HelmRelease
// values and post-build substitutions by key and digest; kind's node logs
// with the node environment redacted and the values scrubbed by
// RedactKindLogs; owner-only modes).
package diagnose

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// clients are one environment's API clients plus the Flux kinds whose CRDs
// the cluster has.
type clients struct {
	*fluxobj.Clients
	flux []fluxobj.Kind
}

func newClients(cfg *rest.Config) (*clients, error) {
	fc, err := fluxobj.NewClients(cfg)
	if err != nil {
		return nil, err
	}
	c := &clients{Clients: fc}
	for _, k := range fluxobj.Kinds() {
		_, err := fc.Mapper.RESTMapping(k.GroupKind())
		if apimeta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("resolving API version of %s: %w", k.GVK.Kind, err)
		}
		c.flux = append(c.flux, k)
	}
	return c, nil
}

// listFlux lists every Flux object; kinds that fail to list are reported in
// the returned error while the others are still returned.
func (c *clients) listFlux(ctx context.Context) ([]*unstructured.Unstructured, []error) {
	var out []*unstructured.Unstructured
	var errs []error
	for _, k := range c.flux {
		list, err := c.Dynamic.Resource(k.GVR()).Namespace("").List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", k.GVK.Kind, err))
			continue
		}
		for i := range list.Items {
			u := &list.Items[i]
			if u.GetKind() == "" {
				u.SetGroupVersionKind(k.GVK)
			}
			out = append(out, u)
		}
	}
	return out, errs
}

// Summarize renders a one-screen explanation (about 60 lines) of the state of
// env's cluster: the Flux tree with the reason of every object not Ready,
// failing pods with their last log lines, and recent Warning events. What
// controllers say about a HelmRelease or Kustomization is scrubbed of its
// values (record.ValuesInPlay), since Helm's errors quote them.
func Summarize(ctx context.Context, env string, cfg *rest.Config) (string, error) {
	return SummarizeWith(ctx, env, cfg, Options{})
}

// SummarizeWith is Summarize; opts.RawValues leaves the messages as the
// controllers wrote them.
func SummarizeWith(ctx context.Context, env string, cfg *rest.Config, opts Options) (string, error) {
	c, err := newClients(cfg)
	if err != nil {
		return "", fmt.Errorf("summarizing %s: %w", env, err)
	}
	return c.summarizeWith(ctx, env, opts)
}

func (c *clients) summarize(ctx context.Context, env string) (string, error) {
	return c.summarizeWith(ctx, env, Options{})
}

// Line budgets per section keep the summary on one screen.
const (
	treeLines   = 26
	helmLines   = 12
	historyShow = 3
	podLines    = 22
	eventLines  = 10
	msgLimit    = 160
	logTail     = 10
	maxPodsShow = 4
	// notReadyAfter is how long a running container may stay unready before
	// it counts as failing rather than starting.
	notReadyAfter = time.Minute
)

// summarizeWith scrubs the messages it reads before anything truncates
// them: a value cut in two would no longer be found.
func (c *clients) summarizeWith(ctx context.Context, env string, opts Options) (string, error) {
	var b strings.Builder
	var errs []error

	objs, scrub, lerrs := c.listFluxScrubbed(ctx, opts.RawValues)
	errs = append(errs, lerrs...)
	fmt.Fprintf(&b, "=== %s: Flux (%d objects, %d not ready) ===\n", env, len(objs), countNotReady(objs))
	writeCapped(&b, renderTree(objs), treeLines)
	if lines := helmReleaseLines(objs); len(lines) > 0 {
		fmt.Fprintf(&b, "=== %s: Helm releases not ready ===\n", env)
		writeCapped(&b, lines, helmLines)
	}

	pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing pods: %w", err))
	} else {
		troubled := failingPods(pods.Items)
		fmt.Fprintf(&b, "=== %s: failing pods (%d) ===\n", env, len(troubled))
		var lines []string
		for i, pt := range troubled {
			if i >= maxPodsShow {
				lines = append(lines, fmt.Sprintf("... and %d more failing pods", len(troubled)-maxPodsShow))
				break
			}
			lines = append(lines, c.describePod(ctx, pt, i == 0)...)
		}
		writeCapped(&b, lines, podLines)
	}

	events, err := c.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing events: %w", err))
	} else {
		scrubEvents(scrub, events.Items)
		recent := recentWarnings(events.Items, eventLines)
		fmt.Fprintf(&b, "=== %s: recent Warning events (newest first) ===\n", env)
		for _, e := range recent {
			b.WriteString(e + "\n")
		}
		if len(recent) == 0 {
			b.WriteString("(none)\n")
		}
	}
	if len(errs) > 0 {
		return b.String(), fmt.Errorf("summarizing %s: %w", env, errors.Join(errs...))
	}
	return b.String(), nil
}

func writeCapped(b *strings.Builder, lines []string, limit int) {
	if len(lines) == 0 {
		b.WriteString("(none)\n")
		return
	}
	for i, l := range lines {
		if i == limit-1 && len(lines) > limit {
			fmt.Fprintf(b, "... %d more lines (see artifacts)\n", len(lines)-i)
			return
		}
		b.WriteString(l + "\n")
	}
}

func countNotReady(objs []*unstructured.Unstructured) int {
	n := 0
	for _, u := range objs {
		if !fluxobj.IsReady(u) {
			n++
		}
	}
	return n
}

func refKey(kind, ns, name string) string {
	return fluxobj.ObjectRef{Kind: kind, Namespace: ns, Name: name}.String()
}

func keyOf(u *unstructured.Unstructured) string { return fluxobj.RefOf(u).String() }

// renderTree draws the Flux objects as a tree like `flux tree`: each
// Kustomization's children are the Flux objects in its inventory; objects
// that nothing lists are roots, the flux-system Kustomization first.
func renderTree(objs []*unstructured.Unstructured) []string {
	t := newFluxTree(objs)
	t.adoptInventories(objs)
	t.adoptHelmCharts(objs)
	var lines []string
	visited := map[string]bool{}
	for _, root := range t.roots() {
		lines = t.draw(lines, visited, root, "", "")
	}
	return lines
}

// fluxTree is the parent/child structure renderTree draws, by object key.
type fluxTree struct {
	byKey    map[string]*unstructured.Unstructured
	children map[string][]string
	isChild  map[string]bool
}

func newFluxTree(objs []*unstructured.Unstructured) *fluxTree {
	t := &fluxTree{byKey: map[string]*unstructured.Unstructured{}, children: map[string][]string{}, isChild: map[string]bool{}}
	for _, u := range objs {
		t.byKey[keyOf(u)] = u
	}
	return t
}

// adopt makes child a child of parent when child is one of the objects.
func (t *fluxTree) adopt(parent, child string) {
	if _, ok := t.byKey[child]; ok {
		t.children[parent] = append(t.children[parent], child)
		t.isChild[child] = true
	}
}

// adoptInventories places the Flux objects a Kustomization applied under
// it (never under itself).
func (t *fluxTree) adoptInventories(objs []*unstructured.Unstructured) {
	for _, u := range objs {
		if u.GetKind() != "Kustomization" {
			continue
		}
		entries, _, _ := unstructured.NestedSlice(u.Object, "status", "inventory", "entries")
		for _, e := range entries {
			m, _ := e.(map[string]any)
			id, _ := m["id"].(string)
			ref, err := fluxobj.ParseInventoryID(id)
			if err != nil {
				continue
			}
			if k := refKey(ref.Kind, ref.Namespace, ref.Name); k != keyOf(u) {
				t.adopt(keyOf(u), k)
			}
		}
	}
}

// adoptHelmCharts places a HelmRelease's HelmChart (made by
// helm-controller, in no inventory) under the release.
func (t *fluxTree) adoptHelmCharts(objs []*unstructured.Unstructured) {
	for _, u := range objs {
		if u.GetKind() != helmv2.HelmReleaseKind {
			continue
		}
		if chart, _, _ := unstructured.NestedString(u.Object, "status", "helmChart"); chart != "" {
			ns, name, _ := strings.Cut(chart, "/")
			if k := refKey("HelmChart", ns, name); !t.isChild[k] {
				t.adopt(keyOf(u), k)
			}
		}
	}
}

// roots are the objects nothing lists, in reading order.
func (t *fluxTree) roots() []string {
	var roots []string
	for k := range t.byKey {
		if !t.isChild[k] {
			roots = append(roots, k)
		}
	}
	t.order(roots)
	return roots
}

// order sorts keys for reading: the sync Kustomization first, then by
// kind (kindRank), then by key.
func (t *fluxTree) order(keys []string) {
	rank := func(k string) int {
		u := t.byKey[k]
		if fluxobj.RefOf(u) == fluxobj.SyncKustomization() {
			return -1
		}
		return kindRank(u.GetKind())
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
}

// draw appends the line of k, drawn after prefix and branch, and below it
// its children's subtrees; an object met again is marked as a cycle.
func (t *fluxTree) draw(lines []string, visited map[string]bool, k, prefix, branch string) []string {
	if visited[k] {
		return append(lines, prefix+branch+k+"  (cycle)")
	}
	visited[k] = true
	lines = append(lines, prefix+branch+describeFlux(t.byKey[k]))
	kids := t.children[k]
	t.order(kids)
	switch branch {
	case "├── ":
		prefix += "│   "
	case "└── ":
		prefix += "    "
	}
	for i, c := range kids {
		b := "├── "
		if i == len(kids)-1 {
			b = "└── "
		}
		lines = t.draw(lines, visited, c, prefix, b)
	}
	return lines
}

// helmReleaseLines explains each HelmRelease that is not Ready: which chart
// at which version from which source, helm-controller's message, its
// HelmChart's trouble, and the last entries of its release history.
func helmReleaseLines(objs []*unstructured.Unstructured) []string {
	byKey := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		byKey[keyOf(u)] = u
	}
	var lines []string
	for _, u := range objs {
		if u.GetKind() != helmv2.HelmReleaseKind || fluxobj.IsReady(u) {
			continue
		}
		chart, _, _ := unstructured.NestedString(u.Object, "spec", "chart", "spec", "chart")
		version, _, _ := unstructured.NestedString(u.Object, "spec", "chart", "spec", "version")
		if version == "" {
			version = "*"
		}
		head := keyOf(u) + "  chart "
		if chart != "" {
			head += chart + "@" + version
		} else {
			head += "(chartRef)"
		}
		if src, ok := fluxobj.SourceOf(u); ok {
			head += " from " + src.String()
		}
		if attempted, _, _ := unstructured.NestedString(u.Object, "status", "lastAttemptedRevision"); attempted != "" {
			head += "  attempted " + attempted
		}
		lines = append(lines, head)
		v := fluxobj.Judge(u, "")
		lines = append(lines, "  helm-controller: "+v.Reason+": "+Truncate(v.Message, msgLimit))
		if name, _, _ := unstructured.NestedString(u.Object, "status", "helmChart"); name != "" {
			ns, n, _ := strings.Cut(name, "/")
			if hc := byKey[refKey(sourcev1.HelmChartKind, ns, n)]; hc != nil && !fluxobj.IsReady(hc) {
				hv := fluxobj.Judge(hc, "")
				lines = append(lines, "  "+keyOf(hc)+": "+hv.Reason+": "+Truncate(hv.Message, msgLimit))
			}
		}
		history, _, _ := unstructured.NestedSlice(u.Object, "status", "history")
		for i, h := range history {
			if i >= historyShow {
				break
			}
			m, _ := h.(map[string]any)
			lines = append(lines, "  history: "+historyEntry(m))
		}
		if len(history) == 0 {
			lines = append(lines, "  history: (no release yet)")
		}
	}
	return lines
}

// historyEntry renders one helm-controller release snapshot:
// "v2 failed redis@0.1.0 digest sha256:1234567890ab deployed 06:01:02".
func historyEntry(m map[string]any) string {
	str := func(k string) string { s, _ := m[k].(string); return s }
	version := fmt.Sprint(m["version"])
	digest := str("digest")
	if i := strings.Index(digest, ":"); i >= 0 && len(digest) > i+13 {
		digest = digest[:i+13]
	}
	out := fmt.Sprintf("v%s %s %s@%s", version, str("status"), str("chartName"), str("chartVersion"))
	if digest != "" {
		out += " digest " + digest
	}
	if t, err := time.Parse(time.RFC3339, str("lastDeployed")); err == nil {
		out += " deployed " + t.UTC().Format("15:04:05")
	}
	return out
}

// kindRank orders kinds the way a reader wants them: roots
// (Kustomization, HelmRelease) before sources.
func kindRank(kind string) int {
	kinds := fluxobj.Kinds()
	rank := len(kinds)
	for i, k := range kinds {
		if k.GVK.Kind == kind {
			rank = i
			if !k.Source {
				rank -= len(kinds)
			}
		}
	}
	return rank
}

// describeFlux renders one object: ready objects briefly, others with the
// reason and message a reader needs to act on.
func describeFlux(u *unstructured.Unstructured) string {
	s := keyOf(u)
	var extras []string
	if deps, _, _ := unstructured.NestedSlice(u.Object, "spec", "dependsOn"); len(deps) > 0 {
		var names []string
		for _, d := range deps {
			m, _ := d.(map[string]any)
			n, _ := m["name"].(string)
			names = append(names, n)
		}
		extras = append(extras, "dependsOn "+strings.Join(names, ","))
	}
	if src, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "name"); src != "" && u.GetKind() == "Kustomization" {
		sk, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "kind")
		extras = append(extras, "source "+sk+"/"+src)
	}
	if s2, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); s2 {
		return s + "  Suspended"
	}
	v := fluxobj.Judge(u, "")
	var state string
	switch {
	case v.Phase == fluxobj.Failed:
		state = "FAILED  " + v.Reason + ": " + Truncate(v.Message, msgLimit)
	case v.Phase == fluxobj.Ready && fluxobj.Condition(u, meta.ReadyCondition) == nil:
		state = "Ready  (" + v.Message + ")"
	case v.Reason == "Pending":
		state = "Unknown  no Ready condition (is its controller running?)"
	case v.Phase == fluxobj.Ready:
		state = "Ready"
		rev, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
		if rev == "" {
			rev, _, _ = unstructured.NestedString(u.Object, "status", "artifact", "revision")
		}
		if rev != "" {
			state += "  " + shortRevision(rev)
		}
	default:
		state = "NOT READY  " + v.Reason + ": " + Truncate(v.Message, msgLimit)
	}
	line := s + "  " + state
	if len(extras) > 0 {
		line += "  [" + strings.Join(extras, "; ") + "]"
	}
	return line
}

// shortRevision shortens "main@sha1:<40 hex>" to "main@sha1:<12 hex>".
func shortRevision(rev string) string {
	if i := strings.LastIndex(rev, ":"); i >= 0 && len(rev)-i-1 > 12 {
		return rev[:i+13]
	}
	return rev
}

// Truncate flattens s to one line and, when longer than limit, keeps its
// start and its end: Kubernetes errors put the context first and the cause
// (the part to fix) last.
func Truncate(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= limit || limit < 20 {
		return s
	}
	head := limit / 3
	tail := limit - head - 5
	return s[:head] + " ... " + s[len(s)-tail:]
}

// podTrouble is one container (or the pod itself) that is not healthy.
type podTrouble struct {
	Container string
	Image     string
	State     string // waiting/terminated reason
	Message   string
	Restarts  int32
	Previous  bool // logs of the previous instance are the interesting ones
	HasLogs   bool // the container ran at least once
}

type troubledPod struct {
	Pod      corev1.Pod
	Troubles []podTrouble
}

// troublesOf lists what is wrong with a pod, as fluxobj judges it.
func troublesOf(pod *corev1.Pod) []podTrouble {
	var out []podTrouble
	for _, p := range fluxobj.PodProblems(pod) {
		out = append(out, podTrouble{Container: p.Container, Image: p.Image, State: p.Reason, Message: p.Message,
			Restarts: p.Restarts, Previous: p.PreviousLogs, HasLogs: p.Logs})
	}
	return out
}

// failingPods returns the troubled pods outside system namespaces, most
// restarts first.
func failingPods(pods []corev1.Pod) []troubledPod {
	var out []troubledPod
	for i := range pods {
		p := &pods[i]
		if fluxobj.IsSystemNamespace(p.Namespace) {
			continue
		}
		if t := troublesOf(p); len(t) > 0 {
			out = append(out, troubledPod{Pod: *p, Troubles: t})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Pod.Namespace != out[j].Pod.Namespace {
			return out[i].Pod.Namespace < out[j].Pod.Namespace
		}
		return out[i].Pod.Name < out[j].Pod.Name
	})
	return out
}

func (c *clients) describePod(ctx context.Context, tp troubledPod, withLogs bool) []string {
	head := fluxobj.PodRef(&tp.Pod).String()
	if o := fluxobj.PodOwner(&tp.Pod); o != "" {
		head += " (" + o + ")"
	}
	lines := []string{head + "  phase " + string(tp.Pod.Status.Phase)}
	tail := 3
	if withLogs {
		tail = logTail
	}
	for _, t := range tp.Troubles {
		l := "  "
		if t.Container != "" {
			l += "container " + t.Container + ": "
		}
		l += t.State
		if t.Image != "" {
			l += "  image " + t.Image
		}
		if t.Restarts > 0 {
			l += fmt.Sprintf("  restarts %d", t.Restarts)
		}
		lines = append(lines, l)
		if t.Message != "" {
			lines = append(lines, "    "+Truncate(t.Message, msgLimit))
		}
		if !t.HasLogs || t.Container == "" {
			continue
		}
		logs, err := c.podLogs(ctx, tp.Pod.Namespace, tp.Pod.Name, t.Container, t.Previous, int64(tail))
		if err != nil {
			lines = append(lines, "    (logs unavailable: "+Truncate(err.Error(), 100)+")")
			continue
		}
		for _, ll := range lastLines(logs, tail) {
			lines = append(lines, "    | "+Truncate(ll, msgLimit))
		}
	}
	return lines
}

func (c *clients) podLogs(ctx context.Context, ns, pod, container string, previous bool, tail int64) (string, error) {
	opts := &corev1.PodLogOptions{Container: container, Previous: previous}
	if tail > 0 {
		opts.TailLines = &tail
	}
	raw, err := c.Kube.CoreV1().Pods(ns).GetLogs(pod, opts).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("getting logs of %s/%s container %s: %w", ns, pod, container, err)
	}
	return string(raw), nil
}

func lastLines(s string, n int) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

// recentWarnings renders the newest Warning events, one line each, merging
// repeats of the same reason and message on the same object.
func recentWarnings(events []corev1.Event, limit int) []string {
	evs := append([]corev1.Event(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool { return eventTime(&evs[i]).After(eventTime(&evs[j])) })
	type agg struct {
		line  string
		count int32
	}
	var order []string
	seen := map[string]*agg{}
	for i := range evs {
		e := &evs[i]
		if e.Type != corev1.EventTypeWarning {
			continue
		}
		obj := fluxobj.ObjectRef{Kind: e.InvolvedObject.Kind, Namespace: e.InvolvedObject.Namespace, Name: e.InvolvedObject.Name}.String()
		key := obj + "\x00" + e.Reason + "\x00" + e.Message
		count := max(e.Count, 1)
		if e.Series != nil {
			count = max(count, e.Series.Count)
		}
		if a, ok := seen[key]; ok {
			a.count += count
			continue
		}
		if len(order) == limit {
			continue
		}
		seen[key] = &agg{line: fmt.Sprintf("%s %s %s: %s", eventTime(e).UTC().Format("15:04:05"), obj, e.Reason, Truncate(e.Message, msgLimit)), count: count}
		order = append(order, key)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		a := seen[k]
		if a.count > 1 {
			out = append(out, fmt.Sprintf("%s (x%d)", a.line, a.count))
		} else {
			out = append(out, a.line)
		}
	}
	return out
}
