package fluxinstall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/internal/typedstatus"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// Result describes a finished Install.
type Result struct {
	Version    string
	Components []string
	Cluster    string
	// Objects is the number of objects applied (Flux plus extra CRDs).
	Objects int
	// Changed counts the objects that were created or configured; it is 0
	// when Install runs again on an up-to-date cluster.
	Changed int
	// Images are the container images of each controller Deployment, by
	// its name, as the applied manifests name them.
	Images map[string][]string
	// Generate, Apply and Ready are the phases; Total is their sum plus overhead.
	Generate, Apply, Ready, Total time.Duration
}

// String is the one-line summary Install prints.
func (r *Result) String() string {
	return fmt.Sprintf("flux %s installed on %s in %s (generate %s, apply %s, controllers ready %s)",
		r.Version, r.Cluster, secs(r.Total), secs(r.Generate), secs(r.Apply), secs(r.Ready))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// Install generates the Flux manifests, applies them server-side (CRDs and
// Namespaces first, then the rest), applies the extra CRDs, and waits until
// every controller Deployment is Available. It is idempotent. Waiting is
// bounded by ctx; it gives up early when a controller pod is stuck in an
// image pull or crash loop, naming the pod and the reason.
func Install(ctx context.Context, c *fluxobj.Clients, opts Options) (*Result, error) {
	start := time.Now()
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	res := &Result{Version: opts.Version, Components: slices.Clone(opts.Components), Cluster: opts.ClusterName}
	if res.Cluster == "" {
		res.Cluster = c.Config.Host
	}

	objs, err := generate(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("installing Flux on %s: %w", res.Cluster, err)
	}
	res.Generate = time.Since(start)
	setLabels(objs, opts.Labels)
	if res.Images, err = ControllerImages(objs); err != nil {
		return nil, fmt.Errorf("installing Flux %s on %s: %w", opts.Version, res.Cluster, err)
	}
	if opts.BeforeApply != nil {
		if err := opts.BeforeApply(ctx); err != nil {
			return nil, fmt.Errorf("installing Flux on %s: before applying: %w", res.Cluster, err)
		}
	}

	applyStart := time.Now()
	man := c.Resources

	applyOpts := ssa.DefaultApplyOptions()
	applyOpts.WaitInterval = 500 * time.Millisecond
	if dl, ok := ctx.Deadline(); ok {
		// ApplyAllStaged waits for CRDs without a context: bound it by ours.
		applyOpts.WaitTimeout = max(time.Until(dl), time.Second)
	}
	cs, err := man.ApplyAllStaged(ctx, objs, applyOpts)
	if err != nil {
		return nil, fmt.Errorf("applying Flux %s manifests to %s: %w", opts.Version, res.Cluster, err)
	}
	res.Objects = len(objs)
	res.Changed = changed(cs)

	if opts.ExtraCRDsDir != "" {
		extra, err := readDir(opts.ExtraCRDsDir)
		if err != nil {
			return nil, fmt.Errorf("reading extra CRDs: %w", err)
		}
		setLabels(extra, opts.Labels)
		if len(extra) > 0 {
			cs, err := man.ApplyAllStaged(ctx, extra, applyOpts)
			if err != nil {
				return nil, fmt.Errorf("applying extra CRDs from %s to %s: %w", opts.ExtraCRDsDir, res.Cluster, err)
			}
			res.Changed += changed(cs)
		}
		res.Objects += len(extra)
	}
	res.Apply = time.Since(applyStart)
	// The Flux CRDs are new to the shared mapper's discovery cache.
	c.ResetMapper()

	readyStart := time.Now()
	if err := waitDeployments(ctx, c.Client, deployments(objs), stuckGrace); err != nil {
		return nil, fmt.Errorf("waiting for Flux controllers on %s: %w", res.Cluster, err)
	}
	res.Ready = time.Since(readyStart)
	res.Total = time.Since(start)
	if opts.Out != nil {
		fmt.Fprintln(opts.Out, res.String())
	}
	return res, nil
}

func changed(cs *ssa.ChangeSet) int {
	n := 0
	for _, e := range cs.Entries {
		if e.Action == ssa.CreatedAction || e.Action == ssa.ConfiguredAction {
			n++
		}
	}
	return n
}

// readDir reads every *.yaml file of dir, in name order.
func readDir(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var all []*unstructured.Unstructured
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		objs, err := utils.ReadObjects(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", f, err)
		}
		all = append(all, objs...)
	}
	return all, nil
}

func deployments(objs []*unstructured.Unstructured) []client.ObjectKey {
	var keys []client.ObjectKey
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GroupVersionKind().Group == "apps" {
			keys = append(keys, client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()})
		}
	}
	return keys
}

// stuckGrace is how long a controller pod may sit in a back-off state before
// the wait gives up: long enough for a transient pull error to clear, short
// enough not to burn the whole budget on an image that is not there.
const stuckGrace = 30 * time.Second

// deploymentsPoll is how often waitDeployments reads the Deployments.
const deploymentsPoll = 500 * time.Millisecond

// waitDeployments polls until every Deployment is Available and fully
// rolled out (kstatus Current). On ctx expiry or a stuck pod, the error names
// each Deployment that is not ready, its Available condition message and the
// waiting reason of its pods.
func waitDeployments(ctx context.Context, c client.Client, keys []client.ObjectKey, grace time.Duration) error {
	if len(keys) == 0 {
		return errors.New("no controller Deployments in the generated manifests")
	}
	start := time.Now()
	// last keeps the latest description per Deployment so that the error
	// after ctx ends still says what was wrong, not that a Get was cancelled.
	last := map[client.ObjectKey]string{}
	spec := poll.Every(deploymentsPoll).For("the controller Deployments to be available")
	return poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		pending, stuck := pendingDeployments(ctx, c, keys, last)
		switch {
		case len(pending) == 0:
			return true, nil
		case stuck && time.Since(start) >= grace:
			// A pod in back-off will not mend by waiting longer.
			return true, fmt.Errorf("giving up after %s: %s", secs(time.Since(start)), strings.Join(pending, "; "))
		default:
			return false, errors.New(strings.Join(pending, "; "))
		}
	})
}

// pendingDeployments describes each Deployment of keys that is not ready,
// and reports whether a pod of one is stuck; last carries each one's
// description from poll to poll.
func pendingDeployments(ctx context.Context, c client.Client, keys []client.ObjectKey, last map[client.ObjectKey]string) (pending []string, stuck bool) {
	for _, k := range keys {
		ok, detail, isStuck, err := deploymentState(ctx, c, k)
		switch {
		case err != nil && ctx.Err() != nil:
			// keep the previous detail
		case err != nil:
			last[k] = err.Error()
		case ok:
			delete(last, k)
			continue
		default:
			last[k] = detail
			stuck = stuck || isStuck
		}
		d := last[k]
		if d == "" {
			d = "no status yet"
		}
		pending = append(pending, fmt.Sprintf("Deployment %s not available: %s", k, d))
	}
	return pending, stuck
}

func deploymentState(ctx context.Context, c client.Client, key client.ObjectKey) (ready bool, detail string, stuck bool, err error) {
	var d appsv1.Deployment
	if err := c.Get(ctx, key, &d); err != nil {
		return false, "", false, err
	}
	st, err := typedstatus.Compute(&d)
	if err != nil {
		return false, "", false, fmt.Errorf("judging Deployment %s: %w", key, err)
	}
	available := false
	var parts []string
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentAvailable {
			available = cond.Status == corev1.ConditionTrue
			if !available {
				parts = append(parts, fmt.Sprintf("Available=%s %s: %s", cond.Status, cond.Reason, cond.Message))
			}
		}
	}
	if available && st.Status == status.CurrentStatus {
		return true, "", false, nil
	}
	if st.Status != status.CurrentStatus && st.Message != "" {
		parts = append(parts, st.Message)
	}
	podDetail, stuck := podStates(ctx, c, &d)
	parts = append(parts, podDetail...)
	if len(parts) == 0 {
		parts = append(parts, string(st.Status))
	}
	return false, strings.Join(parts, "; "), stuck, nil
}

// podStates describes the not-ready containers of the Deployment's pods.
func podStates(ctx context.Context, c client.Client, d *appsv1.Deployment) ([]string, bool) {
	if d.Spec.Selector == nil {
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, false
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(d.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return []string{fmt.Sprintf("listing pods: %v", err)}, false
	}
	var out []string
	stuck := false
	for i := range pods.Items {
		p := &pods.Items[i]
		for _, pr := range fluxobj.PodProblems(p) {
			what := "pod " + p.Name
			if pr.Container != "" {
				what += " container " + pr.Container + " (" + pr.Image + ")"
			}
			out = append(out, fmt.Sprintf("%s: %s: %s", what, pr.Reason, pr.Message))
			stuck = stuck || stuckAtInstall(pr)
		}
	}
	return out, stuck
}

// stuckAtInstall reports whether a controller pod's problem does not heal by
// waiting. A container still starting is not stuck. Nor is one that exited
// at start a time or two: on busy cores kube-proxy programs the Service
// network 10–25 s after the node is Ready, and a controller started before
// that cannot reach the API server, exits, and runs fine after kubelet's
// next restart. Anything else (an image that does not pull, a crash that
// keeps repeating) is stuck.
func stuckAtInstall(p fluxobj.PodProblem) bool {
	switch {
	case p.Reason == fluxobj.NotReadyReason:
		return false
	case p.Container != "" && p.Logs && p.Restarts < 3:
		return false
	}
	return true
}

// setLabels adds labels to each object, keeping the labels it has.
func setLabels(objs []*unstructured.Unstructured, labels map[string]string) {
	if len(labels) == 0 {
		return
	}
	for _, o := range objs {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		for k, v := range labels {
			l[k] = v
		}
		o.SetLabels(l)
	}
}
