package fleetenv

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flux-fleet/flux-fleet/harness/fluxinstall"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
	"github.com/flux-fleet/flux-fleet/harness/poll"
	"github.com/flux-fleet/flux-fleet/harness/probe"
	"github.com/flux-fleet/flux-fleet/harness/record"
	"github.com/flux-fleet/flux-fleet/harness/report"
)

// fluxUpgradeStep is the name of the step FluxUpgrade adds.
const fluxUpgradeStep = "flux upgrade"

// FluxUpgradeReport is what upgrading Flux in place did to one environment
// whose fleet had converged under the base Flux.
type FluxUpgradeReport struct {
	Env string
	// From and To are the Flux versions before and after.
	From, To string
	// Controllers are the controller Deployments' images before and after.
	Controllers []ControllerImages
	// Rolled is the time from applying To to every controller Available at
	// To; Reconciled from then until every Kustomization and HelmRelease
	// had reconciled under To and the fleet was Ready again.
	Rolled, Reconciled time.Duration
	// Ready is the readiness wait under To: nil when green.
	Ready error
	// Revisions lists each Kustomization and HelmRelease whose applied
	// revision differs from the base's (none when the upgrade kept them).
	Revisions []RevisionChange
	// Releases is, per HelmRelease, the Helm release revisions before and
	// after, and why helm-controller made a new one.
	Releases []HelmRevision
	// PodsReplaced lists the workload pods (outside flux-system) that were
	// running before and are gone or replaced after.
	PodsReplaced []string
	// Availability is what requests through the ingress saw from before
	// the controllers rolled until the upgrade settled.
	Availability probe.Availability
	// Traffic is the traffic check after the upgrade: nil when it passed
	// (Answer holds the answer), ErrNotChecked when the fleet is not Ready.
	Traffic error
	Answer  *probe.AppAnswer
	// Changes is the record diff between the base Flux and the new one.
	Changes record.Changes
}

// ControllerImages is one controller Deployment's images before and after.
type ControllerImages struct {
	Deployment string
	From, To   []string
}

// RevisionChange is one Flux object whose revision moved across the upgrade.
type RevisionChange struct {
	Object   string
	From, To string
}

// HelmRevision is one HelmRelease's Helm release across the upgrade: the
// storage Secrets' highest revision before and after, and when a new one
// was made, why (the release's description, and what the HelmRelease's
// history says changed).
type HelmRevision struct {
	HelmRelease string
	// Release is the Helm release as storage/name.
	Release       string
	Before, After int
	Why           string
}

// NewRevision reports whether helm-controller made a Helm release revision.
func (h HelmRevision) NewRevision() bool { return h.After != h.Before }

// Problems lists what the upgrade failed to prove, one line each; none
// means Flux was upgraded without touching the fleet.
func (f *FluxUpgradeReport) Problems() []string {
	var out []string
	if f.Ready != nil {
		out = append(out, fmt.Sprintf("not Ready under Flux %s: %v", f.To, f.Ready))
	}
	for _, c := range f.Revisions {
		out = append(out, fmt.Sprintf("%s moved from revision %q to %q", c.Object, c.From, c.To))
	}
	for _, h := range f.Releases {
		if h.NewRevision() && h.Why == "" {
			out = append(out, fmt.Sprintf("%s: new Helm release revision %d (was %d) without an explanation", h.HelmRelease, h.After, h.Before))
		}
	}
	out = append(out, f.PodsReplaced...)
	// Not checked means not Ready, which is already listed.
	if f.Traffic != nil && !errors.Is(f.Traffic, ErrNotChecked) {
		out = append(out, fmt.Sprintf("traffic check after the upgrade: %v", f.Traffic))
	}
	return out
}

// String is the report as the log shows it.
func (f *FluxUpgradeReport) String() string {
	var b strings.Builder
	verdict := "fleet untouched"
	if len(f.Problems()) > 0 {
		verdict = "PROBLEMS"
	}
	fmt.Fprintf(&b, "flux upgrade %s → %s: %s; controllers rolled in %s, fleet reconciled and Ready in %s\n",
		f.From, f.To, verdict, f.Rolled.Round(100*time.Millisecond), f.Reconciled.Round(100*time.Millisecond))
	for _, c := range f.Controllers {
		fmt.Fprintf(&b, "controller %s: %s → %s\n", c.Deployment, strings.Join(c.From, ","), strings.Join(c.To, ","))
	}
	if len(f.Revisions) == 0 {
		b.WriteString("every Kustomization and HelmRelease Ready at the same revision\n")
	}
	for _, h := range f.Releases {
		if h.NewRevision() {
			fmt.Fprintf(&b, "%s: new Helm release %s v%d (was v%d): %s\n", h.HelmRelease, h.Release, h.After, h.Before, h.Why)
		} else {
			fmt.Fprintf(&b, "%s: no new Helm release (%s v%d)\n", h.HelmRelease, h.Release, h.After)
		}
	}
	if len(f.PodsReplaced) == 0 {
		b.WriteString("no workload pod replaced\n")
	}
	fmt.Fprintf(&b, "availability during the roll: %s\n", f.Availability)
	if f.Answer != nil && f.Traffic == nil {
		fmt.Fprintf(&b, "traffic check after the upgrade: GET / via nginx answered by pod %s (message %q)\n", f.Answer.Hostname, f.Answer.Message)
	}
	for _, p := range f.Problems() {
		b.WriteString("PROBLEM: " + p + "\n")
	}
	b.WriteString("what the Flux upgrade changed:\n")
	for _, line := range strings.Split(f.Changes.String(), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// check is the report as one check of the run report.
func (f *FluxUpgradeReport) check() report.Check {
	c := report.Check{Name: fluxUpgradeStep + " " + f.From + " → " + f.To, Env: f.Env, Result: report.Passed,
		Seconds: (f.Rolled + f.Reconciled).Seconds()}
	if problems := f.Problems(); len(problems) > 0 {
		c.Result, c.Failure = report.Failed, strings.Join(problems, "; ")
	}
	return c
}

// FluxUpgrade is the step "flux upgrade" that a base Flux (E2E_FLUX_BASE)
// adds at the end: Flux upgraded in place under the converged fleet.
func FluxUpgrade() Step {
	return Step{Name: fluxUpgradeStep, run: func(ctx context.Context, r *Run) error {
		_, err := r.UpgradeFlux(ctx)
		return err
	}}
}

// UpgradeFlux upgrades Flux on every environment from the base Flux the
// run installed (Options.FluxBase, which must be Ready) to go.mod's, the way
// `flux install` does, in named steps each with its timing line
// (fluxRoll.steps). The error says why the upgrade could not run, which
// proof failed (Problems), or that more requests failed than
// Options.MaxFailedRequests allows.
func (r *Run) UpgradeFlux(ctx context.Context) ([]*FluxUpgradeReport, error) {
	if r.opts.FluxBase == "" {
		return nil, errors.New("no base Flux to upgrade from: set E2E_FLUX_BASE (-flux-base)")
	}
	if r.Git() == nil {
		return nil, errors.New("nothing is served yet: bring the fleet up under the base Flux first")
	}
	target, err := r.opts.fluxTarget()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, fluxInstallTimeout+r.opts.Timeout+settle+2*time.Minute)
	defer cancel()
	f := newFluxRoll(r, target)
	defer f.avail.stopWatches()
	for _, s := range f.steps() {
		if err := r.timed(ctx, s.name, s.do); err != nil {
			return f.ordered, err
		}
	}
	return f.ordered, nil
}

// fluxAtInstall is the Flux the "flux install" step installs: the base
// with FluxBase (the kit's when there is a kit), else go.mod's (Version
// empty: fluxinstall's default) from the kit's manifests or the release.
func (o Options) fluxAtInstall() (kitprofile.FluxSet, error) {
	if o.FluxBase == "" {
		return kitprofile.FluxSet{Manifests: o.Kit.FluxManifests}, nil
	}
	if !o.Kit.Offline() {
		return kitprofile.FluxSet{Version: o.FluxBase}, nil
	}
	base, ok := o.Kit.FluxBase()
	switch {
	case !ok:
		return kitprofile.FluxSet{}, fmt.Errorf("base Flux %s: the kit has no base Flux: build it with `go run ./hack/kit -flux-base %s`", o.FluxBase, o.FluxBase)
	case base.Version != o.FluxBase:
		return kitprofile.FluxSet{}, fmt.Errorf("base Flux %s: the kit's base Flux is %s: build %s with `go run ./hack/kit -flux-base %s`", o.FluxBase, base.Version, o.FluxBase, o.FluxBase)
	}
	return base, nil
}

// fluxTarget is the Flux the "flux upgrade" step upgrades to: go.mod's,
// from the kit's manifests or the release.
func (o Options) fluxTarget() (kitprofile.FluxSet, error) {
	v, err := fluxinstall.FluxVersion()
	if err != nil {
		return kitprofile.FluxSet{}, err
	}
	return kitprofile.FluxSet{Version: v, Manifests: o.Kit.FluxManifests}, nil
}

// fluxBase reads E2E_FLUX_BASE: a flux2 release older than go.mod's, which
// the kit (when there is one) has built.
func (r *resolver) fluxBase(s setting) string {
	v := s.value()
	if v == "" {
		return ""
	}
	if err := fluxinstall.CheckVersion(v); err != nil {
		r.failf(s, "%v", err)
		return ""
	}
	target, err := fluxinstall.FluxVersion()
	if err != nil {
		r.failf(s, "%v", err)
		return ""
	}
	if cmp, err := fluxinstall.CompareVersions(v, target); err != nil || cmp >= 0 {
		r.failf(s, "the base Flux must be older than the version it is upgraded to, go.mod's %s", target)
		return ""
	}
	withBase := r.opts
	withBase.FluxBase = v
	if _, err := withBase.fluxAtInstall(); err != nil {
		r.failf(s, "%v", err)
		return ""
	}
	return v
}

// revisionChanges lists the Kustomizations whose applied revision, and the
// HelmReleases whose chart version or values digest, differ between two
// records of one environment.
func revisionChanges(before, after *record.Record) []RevisionChange {
	var out []RevisionChange
	was := map[string]string{}
	for _, k := range before.Kustomizations {
		was[k.Ref] = k.AppliedRevision
	}
	for _, h := range before.HelmReleases {
		was[h.Ref] = helmRevision(h)
	}
	now := map[string]string{}
	for _, k := range after.Kustomizations {
		now[k.Ref] = k.AppliedRevision
	}
	for _, h := range after.HelmReleases {
		now[h.Ref] = helmRevision(h)
	}
	for _, ref := range slices.Sorted(maps.Keys(was)) {
		if was[ref] != now[ref] {
			out = append(out, RevisionChange{Object: ref, From: was[ref], To: now[ref]})
		}
	}
	for _, ref := range slices.Sorted(maps.Keys(now)) {
		if _, ok := was[ref]; !ok {
			out = append(out, RevisionChange{Object: ref, To: now[ref]})
		}
	}
	return out
}

// helmRevision is what a HelmRelease applies: its chart version and the
// digest of its values.
func helmRevision(h record.HelmRelease) string {
	return fmt.Sprintf("chart %s %s, values %s", h.Chart, h.Version, h.ConfigDigest)
}

// workloadPod is one pod of the fleet's workloads, as the Flux upgrade
// must leave it.
type workloadPod struct {
	uid   types.UID
	owner string
}

// fleetNamespaces are the namespaces of the fleet's workloads in rec,
// without flux-system (whose controllers the upgrade replaces by design)
// and the node's own.
func fleetNamespaces(rec *record.Record) []string {
	var out []string
	for _, w := range rec.Workloads {
		parts := strings.Split(w.Ref, "/")
		if len(parts) != 3 {
			continue
		}
		ns := parts[1]
		if ns != fluxobj.Namespace && !fluxobj.IsSystemNamespace(ns) && !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

// workloadPods reads the pods that run (or are starting) in namespaces, by
// namespace/name; finished and terminating pods are left out.
func workloadPods(ctx context.Context, c *fluxobj.Clients, namespaces []string) (map[string]workloadPod, error) {
	out := map[string]workloadPod{}
	for _, ns := range namespaces {
		pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing the pods in namespace %s: %w", ns, err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			out[ns+"/"+p.Name] = workloadPod{uid: p.UID, owner: fluxobj.PodOwner(p)}
		}
	}
	return out, nil
}

// replacedPods describes each pod of before that after no longer has, or
// has as a new pod of the same name.
func replacedPods(before, after map[string]workloadPod) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(before)) {
		was := before[name]
		now, ok := after[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("pod %s (of %s) is gone after the Flux upgrade", name, was.owner))
		case now.uid != was.uid:
			out = append(out, fmt.Sprintf("pod %s (of %s) was replaced: uid %s → %s", name, was.owner, was.uid, now.uid))
		}
	}
	return out
}

// helmStorage is where a HelmRelease's Helm release is stored, and the
// highest revision its storage Secrets hold.
type helmStorage struct {
	namespace, release string
	revision           int
	// latest is the HelmRelease's newest history entry.
	latest *helmv2.Snapshot
}

// helmReleaseStorage reads, per HelmRelease (by its ref), its Helm
// release's storage Secrets: sh.helm.release.v1.<release>.v<N> in its
// storage namespace, labeled owner=helm and name=<release>.
func helmReleaseStorage(ctx context.Context, c *fluxobj.Clients) (map[string]helmStorage, error) {
	k, _ := fluxobj.KindOf(helmv2.HelmReleaseKind)
	list, err := c.Dynamic.Resource(k.GVR()).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing HelmReleases: %w", err)
	}
	out := map[string]helmStorage{}
	for i := range list.Items {
		u := &list.Items[i]
		ref := fluxobj.RefOf(u).String()
		var hr helmv2.HelmRelease
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &hr); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", ref, err)
		}
		latest := hr.Status.History.Latest()
		if latest == nil {
			continue
		}
		s := helmStorage{namespace: hr.Status.StorageNamespace, release: latest.Name, latest: latest}
		if s.namespace == "" {
			s.namespace = hr.Namespace
		}
		if s.revision, err = highestRevision(ctx, c, s.namespace, s.release); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		out[ref] = s
	}
	return out, nil
}

// highestRevision is the highest revision among a Helm release's storage
// Secrets (their label version), 0 when there is none.
func highestRevision(ctx context.Context, c *fluxobj.Clients, namespace, release string) (int, error) {
	secrets, err := c.Metadata.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(namespace).
		List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + release})
	if err != nil {
		return 0, fmt.Errorf("listing the Helm storage Secrets of release %s/%s: %w", namespace, release, err)
	}
	highest := 0
	for _, s := range secrets.Items {
		n, err := strconv.Atoi(s.GetLabels()["version"])
		if err != nil {
			return 0, fmt.Errorf("Helm storage Secret %s/%s: label version %q is not a number", namespace, s.GetName(), s.GetLabels()["version"])
		}
		highest = max(highest, n)
	}
	return highest, nil
}

// compareReleases pairs each HelmRelease's storage before and after and,
// where helm-controller made a new revision, says why.
func compareReleases(ctx context.Context, c *fluxobj.Clients, before, after map[string]helmStorage, recBefore, recAfter *record.Record) ([]HelmRevision, error) {
	var out []HelmRevision
	for _, ref := range slices.Sorted(maps.Keys(after)) {
		now := after[ref]
		h := HelmRevision{HelmRelease: ref, Release: now.namespace + "/" + now.release, After: now.revision}
		if was, ok := before[ref]; ok {
			h.Before = was.revision
		}
		if h.NewRevision() {
			description, err := releaseDescription(ctx, c, now.namespace, now.release, now.revision)
			if err != nil {
				return nil, err
			}
			h.Why = whyNewRelease(description, now.latest, releaseOf(recBefore, ref), releaseOf(recAfter, ref))
		}
		out = append(out, h)
	}
	return out, nil
}

func releaseOf(rec *record.Record, ref string) record.HelmRelease {
	for _, h := range rec.HelmReleases {
		if h.Ref == ref {
			return h
		}
	}
	return record.HelmRelease{Ref: ref}
}

// whyNewRelease says why helm-controller made a release: Helm's own
// description of it, the history's action and status, and which of chart
// and values changed (neither: the new controller decided alone).
func whyNewRelease(description string, latest *helmv2.Snapshot, before, after record.HelmRelease) string {
	var what []string
	if before.Version != after.Version {
		what = append(what, fmt.Sprintf("chart %s → %s", before.Version, after.Version))
	}
	if before.ConfigDigest != after.ConfigDigest {
		what = append(what, "values changed")
	}
	if len(what) == 0 {
		what = append(what, "same chart and values: made by the new helm-controller itself")
	}
	action := ""
	if latest != nil {
		action = fmt.Sprintf(" (history: %s %s v%d)", latest.Action, latest.Status, latest.Version)
	}
	return fmt.Sprintf("Helm: %q%s; %s", description, action, strings.Join(what, ", "))
}

// releaseDescription reads Helm's description of one release revision
// from its storage Secret: base64 text of gzipped JSON, of which only
// info.description is kept (the rest holds the values).
func releaseDescription(ctx context.Context, c *fluxobj.Clients, namespace, release string, revision int) (string, error) {
	name := fmt.Sprintf("sh.helm.release.v1.%s.v%d", release, revision)
	s, err := c.Kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading Helm storage Secret %s/%s: %w", namespace, name, err)
	}
	description, err := decodeReleaseDescription(s.Data["release"])
	if err != nil {
		return "", fmt.Errorf("Helm storage Secret %s/%s: %w", namespace, name, err)
	}
	return description, nil
}

// gzipMagic starts a gzip stream; Helm gzips the release before base64.
var gzipMagic = []byte{0x1f, 0x8b, 0x08}

func decodeReleaseDescription(data []byte) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(string(data))
	if err != nil {
		return "", fmt.Errorf("release is not base64: %w", err)
	}
	if bytes.HasPrefix(raw, gzipMagic) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return "", fmt.Errorf("release is not gzip: %w", err)
		}
		defer zr.Close()
		if raw, err = io.ReadAll(io.LimitReader(zr, maxReleaseSize)); err != nil {
			return "", fmt.Errorf("decompressing the release: %w", err)
		}
	}
	var rel struct {
		Info struct {
			Description string `json:"description"`
		} `json:"info"`
	}
	if err := json.Unmarshal(raw, &rel); err != nil {
		return "", fmt.Errorf("decoding the release: %w", err)
	}
	return rel.Info.Description, nil
}

// maxReleaseSize bounds a decompressed release: Kubernetes caps a Secret
// at 1 MiB, and gzip compresses a release's JSON well under a factor 64.
const maxReleaseSize = 64 << 20

// reconcilePoll is how often reconcileAll reads the objects back.
const reconcilePoll = 500 * time.Millisecond

// reconcileAll asks every Kustomization and HelmRelease (not suspended) to
// reconcile, the way fluxsync.RequestReconcile and `flux reconcile` do, and
// waits until each controller reports it handled that request
// (status.lastHandledReconcileAt); the error names those that did not.
func reconcileAll(ctx context.Context, c *fluxobj.Clients, now time.Time) error {
	token := now.UTC().Format(time.RFC3339Nano)
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, token))
	var requested []*unstructured.Unstructured
	for _, kind := range []string{"Kustomization", helmv2.HelmReleaseKind} {
		k, _ := fluxobj.KindOf(kind)
		list, err := c.Dynamic.Resource(k.GVR()).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing %ss: %w", kind, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			if suspended, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); suspended {
				continue
			}
			if _, err := c.Dynamic.Resource(k.GVR()).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.MergePatchType, patch,
				metav1.PatchOptions{FieldManager: fluxobj.FieldManager}); err != nil {
				return fmt.Errorf("requesting reconciliation of %s: %w", fluxobj.RefOf(u), err)
			}
			requested = append(requested, u)
		}
	}
	spec := poll.Every(reconcilePoll).For("every Kustomization and HelmRelease to reconcile under the new controllers")
	return poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		var pending []string
		for _, u := range requested {
			k, _ := fluxobj.KindOf(u.GetKind())
			got, err := c.Dynamic.Resource(k.GVR()).Namespace(u.GetNamespace()).Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, fmt.Errorf("reading %s: %w", fluxobj.RefOf(u), err)
			}
			if handled, _, _ := unstructured.NestedString(got.Object, "status", "lastHandledReconcileAt"); handled != token {
				pending = append(pending, fluxobj.RefOf(u).String())
			}
		}
		if len(pending) > 0 {
			return false, fmt.Errorf("not reconciled yet: %s", strings.Join(pending, ", "))
		}
		return true, nil
	})
}
