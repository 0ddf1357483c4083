// Package diagnose explains why a Flux-managed cluster did not converge: a
// one-screen summary (Flux object tree with reasons, failing pods with their
// last log lines, recent Warning events) and a directory of artifacts for a
// deeper look (every Flux object with status, events, controller and pod
// logs, workload summary, Secret names — never Secret data).
package diagnose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/flux-fleet/flux-fleet/harness/readiness"
)

// fluxKinds are listed in the order a reader wants them: roots first.
var fluxKinds = []schema.GroupKind{
	{Group: "kustomize.toolkit.fluxcd.io", Kind: "Kustomization"},
	{Group: "helm.toolkit.fluxcd.io", Kind: "HelmRelease"},
	{Group: "source.toolkit.fluxcd.io", Kind: "GitRepository"},
	{Group: "source.toolkit.fluxcd.io", Kind: "OCIRepository"},
	{Group: "source.toolkit.fluxcd.io", Kind: "HelmRepository"},
	{Group: "source.toolkit.fluxcd.io", Kind: "HelmChart"},
	{Group: "source.toolkit.fluxcd.io", Kind: "Bucket"},
}

// systemNamespaces hold the kind node's own pods; their trouble is reported
// only through events.
var systemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}

type fluxResource struct {
	Kind string
	GVR  schema.GroupVersionResource
}

type clients struct {
	dyn  dynamic.Interface
	kube kubernetes.Interface
	meta metadata.Interface
	flux []fluxResource
}

func newClients(cfg *rest.Config) (*clients, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating dynamic client: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating metadata client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating discovery client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	c := &clients{dyn: dyn, kube: kube, meta: md}
	for _, gk := range fluxKinds {
		m, err := mapper.RESTMapping(gk)
		if apimeta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("resolving API version of %s: %w", gk.Kind, err)
		}
		c.flux = append(c.flux, fluxResource{Kind: gk.Kind, GVR: m.Resource})
	}
	return c, nil
}

// listFlux lists every Flux object; kinds that fail to list are reported in
// the returned error while the others are still returned.
func (c *clients) listFlux(ctx context.Context) ([]*unstructured.Unstructured, []error) {
	var out []*unstructured.Unstructured
	var errs []error
	for _, fr := range c.flux {
		list, err := c.dyn.Resource(fr.GVR).Namespace("").List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", fr.Kind, err))
			continue
		}
		for i := range list.Items {
			u := &list.Items[i]
			if u.GetKind() == "" {
				u.SetKind(fr.Kind)
			}
			out = append(out, u)
		}
	}
	return out, errs
}

// Summarize renders a one-screen explanation (about 60 lines) of the state of
// env's cluster: the Flux tree with the reason of every object not Ready,
// failing pods with their last log lines, and recent Warning events.
func Summarize(ctx context.Context, env string, cfg *rest.Config) (string, error) {
	c, err := newClients(cfg)
	if err != nil {
		return "", fmt.Errorf("summarizing %s: %w", env, err)
	}
	return c.summarize(ctx, env)
}

// Line budgets per section keep the summary on one screen.
const (
	treeLines   = 26
	podLines    = 22
	eventLines  = 10
	msgLimit    = 160
	logTail     = 10
	maxPodsShow = 4
	// notReadyAfter is how long a running container may stay unready before
	// it counts as failing rather than starting.
	notReadyAfter = time.Minute
)

func (c *clients) summarize(ctx context.Context, env string) (string, error) {
	var b strings.Builder
	var errs []error

	objs, lerrs := c.listFlux(ctx)
	errs = append(errs, lerrs...)
	fmt.Fprintf(&b, "=== %s: Flux (%d objects, %d not ready) ===\n", env, len(objs), countNotReady(objs))
	writeCapped(&b, renderTree(objs), treeLines)

	pods, err := c.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
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

	events, err := c.kube.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing events: %w", err))
	} else {
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

// readyOf returns the Ready and Stalled conditions of a Flux object.
func readyOf(u *unstructured.Unstructured) (ready, stalled *metav1.Condition) {
	getter := conditions.UnstructuredGetter(u)
	return conditions.Get(getter, meta.ReadyCondition), conditions.Get(getter, meta.StalledCondition)
}

func isReady(u *unstructured.Unstructured) bool {
	if s, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); s {
		return true
	}
	r, _ := readyOf(u)
	return r != nil && r.Status == metav1.ConditionTrue
}

func countNotReady(objs []*unstructured.Unstructured) int {
	n := 0
	for _, u := range objs {
		if !isReady(u) {
			n++
		}
	}
	return n
}

func refKey(kind, ns, name string) string { return kind + " " + ns + "/" + name }

func keyOf(u *unstructured.Unstructured) string {
	return refKey(u.GetKind(), u.GetNamespace(), u.GetName())
}

// renderTree draws the Flux objects as a tree like `flux tree`: each
// Kustomization's children are the Flux objects in its inventory; objects
// that nothing lists are roots, the flux-system Kustomization first.
func renderTree(objs []*unstructured.Unstructured) []string {
	byKey := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		byKey[keyOf(u)] = u
	}
	children := map[string][]string{}
	isChild := map[string]bool{}
	for _, u := range objs {
		if u.GetKind() != "Kustomization" {
			continue
		}
		entries, _, _ := unstructured.NestedSlice(u.Object, "status", "inventory", "entries")
		for _, e := range entries {
			m, _ := e.(map[string]any)
			id, _ := m["id"].(string)
			ref, err := readiness.ParseInventoryID(id)
			if err != nil {
				continue
			}
			k := refKey(ref.Kind, ref.Namespace, ref.Name)
			if _, ok := byKey[k]; ok && k != keyOf(u) {
				children[keyOf(u)] = append(children[keyOf(u)], k)
				isChild[k] = true
			}
		}
	}
	order := func(keys []string) {
		rank := func(k string) int {
			u := byKey[k]
			for i, gk := range fluxKinds {
				if gk.Kind == u.GetKind() {
					if u.GetNamespace() == "flux-system" && u.GetName() == "flux-system" && i == 0 {
						return -1
					}
					return i
				}
			}
			return len(fluxKinds)
		}
		sort.SliceStable(keys, func(i, j int) bool {
			if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
				return ri < rj
			}
			return keys[i] < keys[j]
		})
	}
	var roots []string
	for k := range byKey {
		if !isChild[k] {
			roots = append(roots, k)
		}
	}
	order(roots)

	var lines []string
	visited := map[string]bool{}
	var walk func(k, prefix, branch string)
	walk = func(k, prefix, branch string) {
		if visited[k] {
			lines = append(lines, prefix+branch+k+"  (cycle)")
			return
		}
		visited[k] = true
		lines = append(lines, prefix+branch+describeFlux(byKey[k]))
		kids := children[k]
		order(kids)
		next := prefix
		switch branch {
		case "├── ":
			next += "│   "
		case "└── ":
			next += "    "
		}
		for i, c := range kids {
			b := "├── "
			if i == len(kids)-1 {
				b = "└── "
			}
			walk(c, next, b)
		}
	}
	for _, r := range roots {
		walk(r, "", "")
	}
	return lines
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
	ready, stalled := readyOf(u)
	var state string
	switch {
	case stalled != nil && stalled.Status == metav1.ConditionTrue:
		state = "STALLED  " + stalled.Reason + ": " + Truncate(stalled.Message, msgLimit)
	case ready == nil:
		state = "Unknown  no Ready condition (is its controller running?)"
	case ready.Status == metav1.ConditionTrue:
		state = "Ready"
		rev, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
		if rev == "" {
			rev, _, _ = unstructured.NestedString(u.Object, "status", "artifact", "revision")
		}
		if rev != "" {
			state += "  " + shortRevision(rev)
		}
	default:
		state = "NOT READY  " + ready.Reason + ": " + Truncate(ready.Message, msgLimit)
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

var benignWaiting = map[string]bool{"": true, "ContainerCreating": true, "PodInitializing": true}

// troublesOf lists what is wrong with a pod (nothing for a healthy or
// successfully completed one).
func troublesOf(pod *corev1.Pod) []podTrouble {
	if pod.Status.Phase == corev1.PodSucceeded {
		return nil
	}
	var out []podTrouble
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			out = append(out, podTrouble{State: nonEmpty(c.Reason, "Unschedulable"), Message: c.Message})
		}
	}
	statuses := append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		t := podTrouble{Container: cs.Name, Image: cs.Image, Restarts: cs.RestartCount}
		last := cs.LastTerminationState.Terminated
		switch {
		case cs.State.Waiting != nil && !benignWaiting[cs.State.Waiting.Reason]:
			t.State, t.Message = cs.State.Waiting.Reason, cs.State.Waiting.Message
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
			t.State = nonEmpty(cs.State.Terminated.Reason, "Error")
			t.Message = fmt.Sprintf("exit code %d %s", cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
			t.HasLogs = true
		case !cs.Ready && cs.RestartCount > 0:
			t.State = "NotReady"
			t.Message = "restarting"
		case !cs.Ready && cs.State.Running != nil && time.Since(cs.State.Running.StartedAt.Time) > notReadyAfter:
			t.State = "NotReady"
			t.Message = fmt.Sprintf("running since %s but not ready (readiness probe failing?)", cs.State.Running.StartedAt.UTC().Format("15:04:05"))
		default:
			continue
		}
		if last != nil {
			t.Previous, t.HasLogs = true, true
			t.Message = strings.TrimSpace(fmt.Sprintf("%s (last exit %d %s)", t.Message, last.ExitCode, last.Reason))
		}
		if cs.State.Running != nil {
			t.HasLogs = true
		}
		out = append(out, t)
	}
	if len(out) == 0 && pod.Status.Phase == corev1.PodFailed {
		out = append(out, podTrouble{State: nonEmpty(pod.Status.Reason, "Failed"), Message: pod.Status.Message})
	}
	return out
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// failingPods returns the troubled pods outside system namespaces, most
// restarts first.
func failingPods(pods []corev1.Pod) []troubledPod {
	var out []troubledPod
	for i := range pods {
		p := &pods[i]
		if slices.Contains(systemNamespaces, p.Namespace) {
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

func podOwner(pod *corev1.Pod) string {
	for _, o := range pod.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if h := pod.Labels["pod-template-hash"]; o.Kind == "ReplicaSet" && h != "" && strings.HasSuffix(o.Name, "-"+h) {
			return "Deployment " + strings.TrimSuffix(o.Name, "-"+h)
		}
		return o.Kind + " " + o.Name
	}
	return ""
}

func (c *clients) describePod(ctx context.Context, tp troubledPod, withLogs bool) []string {
	head := "Pod " + tp.Pod.Namespace + "/" + tp.Pod.Name
	if o := podOwner(&tp.Pod); o != "" {
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
	raw, err := c.kube.CoreV1().Pods(ns).GetLogs(pod, opts).DoRaw(ctx)
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
		obj := e.InvolvedObject.Kind + " " + e.InvolvedObject.Namespace + "/" + e.InvolvedObject.Name
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
