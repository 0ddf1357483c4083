package readiness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// workloadResources are the inventory kinds whose kstatus is waited on.
// Services and Ingresses are left out on purpose: in kind a LoadBalancer
// never gets an address, so kstatus would never call them Current.
var workloadResources = map[schema.GroupKind]schema.GroupVersionResource{
	{Group: "apps", Kind: "Deployment"}:  {Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Kind: "StatefulSet"}: {Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "apps", Kind: "DaemonSet"}:   {Group: "apps", Version: "v1", Resource: "daemonsets"},
	{Group: "batch", Kind: "Job"}:        {Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "", Kind: "Pod"}:             {Version: "v1", Resource: "pods"},
}

var podGK = schema.GroupKind{Kind: "Pod"}

// Waiter waits for one cluster's Flux objects and workloads.
type Waiter struct {
	opts   Options
	dyn    dynamic.Interface
	mapper apimeta.RESTMapper
}

// NewWaiter prepares a wait on the cluster of c.
func NewWaiter(c *fluxobj.Clients, opts Options) *Waiter {
	return &Waiter{opts: opts.withDefaults(), dyn: c.Dynamic, mapper: c.Mapper}
}

// WaitForFlux watches every Flux object, the workloads listed in
// Kustomization inventories and all pods until everything is Ready, a failure
// is certain (*FailureError) or ctx ends (*NotReadyError).
func WaitForFlux(ctx context.Context, c *fluxobj.Clients, opts Options) (*Report, error) {
	return NewWaiter(c, opts).Wait(ctx)
}

// readySeen is when the event handler first saw an object Ready.
type readySeen struct {
	seen       time.Time
	transition time.Time
}

// run is the state of one Wait call.
type run struct {
	opts  Options
	start time.Time
	// events reads a pod's last probe failure for a NotReady failure.
	events func(pod *corev1.Pod) string

	mu   sync.Mutex
	seen map[string]readySeen // key: "Kind ns/name"
	// helmFailures: the counted failures of each HelmRelease, by key.
	helmFailures map[string]helmFailures

	fluxStores map[string]cache.Store // by kind
	workStores map[schema.GroupKind]cache.Store

	printed     map[string]string // last progress line text per object, for dedupe
	readyAt     map[string]ObjectTiming
	failingFrom map[string]time.Time // key: object + reason
	pods        *podTracker
	firstEval   bool
	// scrub and scrubOf: the Scrubbers of the Flux objects as last seen,
	// and the resource versions they were made from.
	scrub   *record.Scrubbers
	scrubOf string
}

// Wait runs the wait; see WaitForFlux.
func (w *Waiter) Wait(ctx context.Context) (*Report, error) {
	r := w.newRun(ctx)
	informerCtx, stop := context.WithCancel(ctx)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(w.dyn, 0)
	defer func() {
		// Shutdown waits for the informers, which stop only once their
		// context is cancelled.
		stop()
		factory.Shutdown()
	}()
	wake := make(chan struct{}, 1)
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	if err := w.watchFlux(factory, r, signal); err != nil {
		return nil, err
	}
	if err := watchWorkloads(factory, r, signal); err != nil {
		return nil, err
	}
	factory.Start(informerCtx.Done())
	for gvr, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, r.notReady(fmt.Errorf("listing %s: %w", gvr.Resource, ctx.Err()))
		}
	}
	return r.loop(ctx, wake)
}

// newRun is the state of a wait starting now; pod events are read with ctx.
func (w *Waiter) newRun(ctx context.Context) *run {
	start := time.Now()
	return &run{
		opts:         w.opts,
		start:        start,
		events:       func(pod *corev1.Pod) string { return lastProbeFailure(ctx, w.dyn, pod) },
		seen:         map[string]readySeen{},
		helmFailures: map[string]helmFailures{},
		fluxStores:   map[string]cache.Store{},
		workStores:   map[schema.GroupKind]cache.Store{},
		printed:      map[string]string{},
		readyAt:      map[string]ObjectTiming{},
		failingFrom:  map[string]time.Time{},
		pods:         newPodTracker(w.opts.PodFailureGrace, start),
		firstEval:    true,
	}
}

// watchFlux registers an informer for each Flux kind whose CRD the cluster
// has; their handler records Ready flips as they happen.
func (w *Waiter) watchFlux(factory dynamicinformer.DynamicSharedInformerFactory, r *run, signal func()) error {
	for _, kind := range w.opts.Kinds {
		fk, ok := fluxobj.KindOf(kind)
		if !ok {
			return fmt.Errorf("unknown Flux kind %q", kind)
		}
		mapping, err := w.mapper.RESTMapping(fk.GroupKind())
		if apimeta.IsNoMatchError(err) {
			continue // CRD not installed: nothing of that kind can exist
		}
		if err != nil {
			return fmt.Errorf("resolving API version of %s: %w", kind, err)
		}
		inf := factory.ForResource(mapping.Resource).Informer()
		if _, err := inf.AddEventHandler(r.fluxHandler(signal)); err != nil {
			return fmt.Errorf("watching %s: %w", kind, err)
		}
		r.fluxStores[kind] = inf.GetStore()
	}
	return nil
}

// watchWorkloads registers an informer for each workload kind; any change
// only wakes the evaluation.
func watchWorkloads(factory dynamicinformer.DynamicSharedInformerFactory, r *run, signal func()) error {
	for gk, gvr := range workloadResources {
		inf := factory.ForResource(gvr).Informer()
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { signal() },
			UpdateFunc: func(any, any) { signal() },
			DeleteFunc: func(any) { signal() },
		}); err != nil {
			return fmt.Errorf("watching %s: %w", gk.Kind, err)
		}
		r.workStores[gk] = inf.GetStore()
	}
	return nil
}

// loop evaluates the cluster on every watch event and grace deadline until
// it is Ready, a failure is certain or ctx ends.
func (r *run) loop(ctx context.Context, wake <-chan struct{}) (*Report, error) {
	// The timer only serves grace deadlines; every state change arrives
	// through the watches.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		done, next, err := r.evaluate(time.Now())
		if err != nil {
			return r.report(), err
		}
		if done {
			return r.report(), nil
		}
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 10*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return r.report(), r.notReady(ctx.Err())
		case <-wake:
		case <-timer.C:
		}
	}
}

// fluxHandler records the moment each Flux object is first seen Ready, in
// the watch goroutine, so the measured latency excludes evaluation time.
func (r *run) fluxHandler(signal func()) cache.ResourceEventHandler {
	observe := func(obj any) {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			now := time.Now()
			key := fluxobj.RefOf(u).String()
			r.mu.Lock()
			if fluxobj.IsReady(u) {
				if _, ok := r.seen[key]; !ok {
					s := readySeen{seen: now}
					if c := fluxobj.Condition(u, meta.ReadyCondition); c != nil {
						s.transition = c.LastTransitionTime.Time
					}
					r.seen[key] = s
				}
			} else {
				delete(r.seen, key)
			}
			r.mu.Unlock()
			r.recordHelmFailure(u)
		}
		signal()
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: func(any) { signal() },
	}
}

func (r *run) inScope(ns string) bool {
	return len(r.opts.Namespaces) == 0 || ns == "" || slices.Contains(r.opts.Namespaces, ns)
}

func sortedObjects(s cache.Store) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range s.List() {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GetNamespace() != out[j].GetNamespace() {
			return out[i].GetNamespace() < out[j].GetNamespace()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out
}

func getObject(s cache.Store, ns, name string) *unstructured.Unstructured {
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	o, ok, _ := s.GetByKey(key)
	if !ok {
		return nil
	}
	u, _ := o.(*unstructured.Unstructured)
	return u
}

// pass is one evaluation of the whole cluster: what is still pending, the
// earliest grace deadline to re-check at, and the workloads the
// Kustomizations list.
type pass struct {
	now       time.Time
	first     bool // the wait's first evaluation: Ready objects were Ready already
	pending   int
	next      time.Time
	inventory []fluxobj.ObjectRef
	scrub     *record.Scrubbers // nil with Options.RawValues
}

// shown is a controller's message about the object key as a progress line
// shows it: its values replaced first, then flattened and cut short, so
// that no cut leaves part of a value standing.
func (p *pass) shown(key, msg string) string { return oneLine(p.scrub.Object(key, msg), 200) }

// recheckBy moves the next evaluation to t when that is earlier.
func (p *pass) recheckBy(t time.Time) {
	if !t.IsZero() && (p.next.IsZero() || t.Before(p.next)) {
		p.next = t
	}
}

// evaluate judges the whole cluster from the informer caches. It returns
// done when nothing is pending, or the earliest grace deadline to re-check.
// Flux objects come first: their inventories name the workloads to judge.
func (r *run) evaluate(now time.Time) (done bool, next time.Time, err error) {
	p := &pass{now: now, first: r.firstEval, scrub: r.scrubbers()}
	r.firstEval = false
	if err := r.judgeFluxObjects(p); err != nil {
		return false, p.next, err
	}
	r.checkRequired(p)
	if err := r.judgeInventory(p); err != nil {
		return false, p.next, err
	}
	if err := r.judgePods(p); err != nil {
		return false, p.next, err
	}
	if p.pending == 0 {
		fmt.Fprintf(r.opts.Out, "%s %s  all Flux objects and workloads Ready  %s\n", now.Format("15:04:05"), r.opts.Env, now.Sub(r.start).Round(100*time.Millisecond))
	}
	return p.pending == 0, p.next, nil
}

// judgeFluxObjects judges every Flux object in scope, sources before their
// consumers, and collects the Kustomizations' inventories.
func (r *run) judgeFluxObjects(p *pass) error {
	kinds := make([]string, 0, len(r.fluxStores))
	for k := range r.fluxStores {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return kindOrder(kinds[i]) < kindOrder(kinds[j]) })
	for _, kind := range kinds {
		for _, u := range sortedObjects(r.fluxStores[kind]) {
			if !r.inScope(u.GetNamespace()) {
				continue
			}
			if err := r.judgeFlux(p, kind, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// judgeFlux judges one Flux object of kind with fluxobj.Judge, adding the
// wait's own rules: a HelmRelease failing twice the same way, and a graced
// failure that outlasted its grace.
func (r *run) judgeFlux(p *pass, kind string, u *unstructured.Unstructured) error {
	key := fluxobj.RefOf(u).String()
	v := fluxobj.Judge(u, r.sourceRevision(u))
	if kind == kustomizev1.KustomizationKind {
		// Entries that do not parse cannot be waited on.
		refs, _ := fluxobj.Inventory(u)
		p.inventory = append(p.inventory, refs...)
	}
	switch v.Phase {
	case fluxobj.Failed:
		return r.fail(p, &FailureError{Object: key, Reason: v.Reason, Message: v.Message, Terminal: v.Terminal})
	case fluxobj.Ready:
		r.markReady(p.now, key, p.first, true)
		return nil
	}
	if kind == helmv2.HelmReleaseKind {
		if fe := r.repeatedHelmFailure(key, u); fe != nil {
			return r.fail(p, fe)
		}
	}
	p.pending++
	if v.Graced {
		if err := r.checkGrace(p, key, u, v); err != nil {
			return err
		}
	} else {
		r.clearFailing(key)
	}
	r.progress(p.now, key, "NotReady  "+v.Reason+": "+p.shown(key, v.Message))
	return nil
}

// checkGrace fails a graced failure once it has lasted SourceFailureGrace,
// and otherwise asks for a re-check when the grace ends.
func (r *run) checkGrace(p *pass, key string, u *unstructured.Unstructured, v fluxobj.Verdict) error {
	since := r.failingSince(p.now, key, u, v)
	if p.now.Sub(since) >= r.opts.SourceFailureGrace {
		return r.fail(p, &FailureError{Object: key, Reason: v.Reason, Message: fmt.Sprintf("%s (failing for %s)", v.Message, p.now.Sub(since).Round(time.Second))})
	}
	p.recheckBy(since.Add(r.opts.SourceFailureGrace))
	return nil
}

// failingSince is when the graced failure of key began, remembered from
// the first evaluation that saw it. A failure that began before the wait
// counts from when the object says it began.
func (r *run) failingSince(now time.Time, key string, u *unstructured.Unstructured, v fluxobj.Verdict) time.Time {
	// Keyed by object only: a retrying source alternates reasons.
	fk := key + "\x00"
	if since, ok := r.failingFrom[fk]; ok {
		return since
	}
	since := now
	began := v.FailingSince
	if c := fluxobj.Condition(u, meta.ReadyCondition); began.IsZero() && c != nil {
		began = c.LastTransitionTime.Time
	}
	if !began.IsZero() && began.Before(now) {
		since = began
	}
	r.failingFrom[fk] = since
	return since
}

// checkRequired counts each required object that does not exist yet (or
// whose Flux kind has no CRD) as pending.
func (r *run) checkRequired(p *pass) {
	for _, req := range r.opts.Require {
		kind := req.Kind
		s, ok := r.fluxStores[kind]
		if !ok {
			if _, flux := fluxobj.KindOf(kind); flux {
				p.pending++
				r.progress(p.now, req.String(), "NotReady  NotFound: CRD for "+kind+" is not installed")
			}
			continue
		}
		if getObject(s, req.Namespace, req.Name) == nil {
			p.pending++
			r.progress(p.now, req.String(), "NotReady  NotFound: waiting for it to be created")
		}
	}
}

// judgeInventory judges, with kstatus, each workload the Kustomizations
// list; a workload kstatus calls Failed ends the wait.
func (r *run) judgeInventory(p *pass) error {
	for _, ref := range p.inventory {
		s, ok := r.workStores[schema.GroupKind{Group: ref.Group, Kind: ref.Kind}]
		if !ok || !r.inScope(ref.Namespace) {
			continue
		}
		key := ref.String()
		u := getObject(s, ref.Namespace, ref.Name)
		if u == nil {
			p.pending++
			r.progress(p.now, key, "NotReady  NotFound: in a Kustomization inventory but not in the cluster")
			continue
		}
		v := fluxobj.JudgeWorkload(u)
		switch v.Phase {
		case fluxobj.Ready:
			r.markReady(p.now, key, p.first, false)
		case fluxobj.Failed:
			return r.fail(p, &FailureError{Object: key, Reason: v.Reason, Message: v.Message, Terminal: true})
		default:
			p.pending++
			r.progress(p.now, key, "NotReady  "+v.Reason+": "+p.shown(key, v.Message))
		}
	}
	return nil
}

// judgePods hands every live pod outside the system namespaces to the pod
// tracker, which fails a problem once it is certain or outlasted its grace.
// A NotReady failure carries the pod's last probe failure.
func (r *run) judgePods(p *pass) error {
	alive := map[string]bool{}
	for _, u := range sortedObjects(r.workStores[podGK]) {
		if !r.inScope(u.GetNamespace()) || fluxobj.IsSystemNamespace(u.GetNamespace()) {
			continue
		}
		var pod corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pod); err != nil {
			continue
		}
		alive[string(pod.UID)] = true
		if pod.DeletionTimestamp != nil {
			continue
		}
		fe, at := r.pods.observe(&pod, p.now)
		if fe != nil {
			if fe.Reason == fluxobj.NotReadyReason {
				if probe := r.events(&pod); probe != "" {
					fe.Message += "; last probe failure: " + probe
				}
			}
			return r.fail(p, fe)
		}
		p.recheckBy(at)
	}
	r.pods.forget(alive)
	return nil
}

// kindOrder evaluates sources before their consumers so progress lines read
// in dependency order.
func kindOrder(kind string) int {
	k, _ := fluxobj.KindOf(kind)
	switch {
	case k.Source:
		return 0
	case kind == kustomizev1.KustomizationKind:
		return 1
	default:
		return 2
	}
}

func (r *run) sourceRevision(u *unstructured.Unstructured) string {
	if u.GetKind() != kustomizev1.KustomizationKind {
		return ""
	}
	ref, ok := fluxobj.SourceOf(u)
	if !ok {
		return ""
	}
	s, ok := r.fluxStores[ref.Kind]
	if !ok {
		return ""
	}
	src := getObject(s, ref.Namespace, ref.Name)
	if src == nil {
		return ""
	}
	return fluxobj.ArtifactRevision(src)
}

func (r *run) clearFailing(key string) {
	for k := range r.failingFrom {
		if strings.HasPrefix(k, key+"\x00") {
			delete(r.failingFrom, k)
		}
	}
}

func (r *run) markReady(now time.Time, key string, first, flux bool) {
	if _, ok := r.readyAt[key]; ok {
		// Only a regression followed by a recovery is worth a line.
		if !strings.HasPrefix(r.printed[key], "Ready") {
			r.progress(now, key, "Ready  (again)")
		}
		return
	}
	t := ObjectTiming{Object: key, Seen: now, AlreadyReady: first}
	if flux {
		r.mu.Lock()
		if s, ok := r.seen[key]; ok {
			t.Seen, t.Transition = s.seen, s.transition
		}
		r.mu.Unlock()
		if !t.Transition.IsZero() {
			t.Latency = t.Seen.Sub(t.Transition)
		}
	}
	if !first {
		t.TimeToReady = t.Seen.Sub(r.start)
	}
	r.readyAt[key] = t
	line := "Ready  " + t.TimeToReady.Round(100*time.Millisecond).String()
	if first {
		line = "Ready  (already)"
	}
	r.progress(t.Seen, key, line)
}

func (r *run) progress(at time.Time, key, text string) {
	if r.printed[key] == text {
		return
	}
	r.printed[key] = text
	fmt.Fprintf(r.opts.Out, "%s %s  %s  %s\n", at.Format("15:04:05"), r.opts.Env, key, text)
}

func (r *run) fail(p *pass, fe *FailureError) error {
	fe.Env = r.opts.Env
	fe.Message = p.scrub.Object(fe.Object, fe.Message)
	r.progress(p.now, fe.Object, "Failed  "+fe.Reason+": "+oneLine(fe.Message, 200))
	return fe
}

// scrubbers are the Scrubbers of the HelmReleases and Kustomizations the
// watches hold (nil with Options.RawValues), made again only when one of
// them changed.
func (r *run) scrubbers() *record.Scrubbers {
	if r.opts.RawValues {
		return nil
	}
	var objs []*unstructured.Unstructured
	var versions strings.Builder
	for _, kind := range []string{helmv2.HelmReleaseKind, kustomizev1.KustomizationKind} {
		if s, ok := r.fluxStores[kind]; ok {
			for _, u := range sortedObjects(s) {
				objs = append(objs, u)
				fmt.Fprintf(&versions, "%s/%s/%s@%s ", kind, u.GetNamespace(), u.GetName(), u.GetResourceVersion())
			}
		}
	}
	if r.scrub == nil || r.scrubOf != versions.String() {
		r.scrub, r.scrubOf = record.NewScrubbers(objs), versions.String()
	}
	return r.scrub
}

func (r *run) report() *Report {
	rep := &Report{Env: r.opts.Env, Start: r.start, Total: time.Since(r.start)}
	for _, t := range r.readyAt {
		rep.Objects = append(rep.Objects, t)
	}
	sort.Slice(rep.Objects, func(i, j int) bool { return rep.Objects[i].Object < rep.Objects[j].Object })
	return rep
}

// notReady lists every object not Ready at the end of the wait, from the
// last judgement of each.
func (r *run) notReady(cause error) error {
	if cause == nil {
		cause = errors.New("wait ended")
	}
	e := &NotReadyError{Env: r.opts.Env, Elapsed: time.Since(r.start), Err: cause}
	keys := make([]string, 0, len(r.printed))
	for k := range r.printed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		text, ok := strings.CutPrefix(r.printed[k], "NotReady  ")
		if !ok {
			if text, ok = strings.CutPrefix(r.printed[k], "Failed  "); !ok {
				continue
			}
		}
		reason, msg, _ := strings.Cut(text, ": ")
		e.Pending = append(e.Pending, Pending{Object: k, Reason: reason, Message: msg})
	}
	return e
}

// oneLine flattens and shortens a controller message for a progress line.
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > limit {
		s = s[:limit-3] + "..."
	}
	return s
}

// lastProbeFailure returns the message of the newest "Unhealthy" event of a
// pod (kubelet's readiness/liveness probe failures), or "".
func lastProbeFailure(ctx context.Context, dyn dynamic.Interface, pod *corev1.Pod) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "events"}).Namespace(pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + pod.Name + ",reason=Unhealthy",
	})
	if err != nil {
		return ""
	}
	var newest time.Time
	msg := ""
	for _, e := range list.Items {
		var ev corev1.Event
		if runtime.DefaultUnstructuredConverter.FromUnstructured(e.Object, &ev) != nil {
			continue
		}
		at := ev.LastTimestamp.Time
		if at.IsZero() {
			at = ev.EventTime.Time
		}
		if msg == "" || at.After(newest) {
			newest, msg = at, oneLine(ev.Message, 200)
		}
	}
	return msg
}
