package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
	"github.com/flux-fleet/flux-fleet/harness/internal/typedstatus"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// Options are the choices of CollectArtifactsWith.
type Options struct {
	// RawValues writes HelmRelease spec.values and Kustomization
	// spec.postBuild.substitute as they are instead of their digests.
	// Artifacts get uploaded and values commonly hold passwords: set it
	// only on request.
	RawValues bool
}

// CollectArtifacts is CollectArtifactsWith with the default Options: values
// and substitutions written by their digests only.
func CollectArtifacts(ctx context.Context, env string, cfg *rest.Config, dir string) error {
	return CollectArtifactsWith(ctx, env, cfg, dir, Options{})
}

// CollectArtifactsWith writes everything needed to debug env's cluster under
// dir/<env>: flux/<kind>/<ns>_<name>.yaml (with status; values and post-build
// substitutions as digests, see record.RedactValues), events.yaml,
// controllers/<deployment>.log (flux-system), pods/<ns>_<pod>_<container>.log
// (statuses, events, controller and pod logs scrubbed of those values, which
// Helm's errors quote: see record.Scrubber)
// for failing pods, workloads.yaml and secrets.txt (names only). Files are
// 0600 and directories 0700. Every part is attempted; failures are joined
// into the returned error.
func CollectArtifactsWith(ctx context.Context, env string, cfg *rest.Config, dir string, opts Options) error {
	c, err := newClients(cfg)
	if err != nil {
		return fmt.Errorf("collecting artifacts of %s: %w", env, err)
	}
	return c.collect(ctx, env, filepath.Join(dir, env), opts)
}

func (c *clients) collect(ctx context.Context, env, root string, opts Options) error {
	if err := makePrivateDir(root); err != nil {
		return fmt.Errorf("collecting artifacts of %s: %w", env, err)
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	objs, scrub, lerrs := c.listFluxScrubbed(ctx, opts.RawValues)
	add(errors.Join(lerrs...))
	add(c.collectFlux(root, objs, opts))
	add(c.collectEvents(ctx, root, scrub))
	add(c.collectControllerLogs(ctx, root, scrub))
	add(c.collectPodLogs(ctx, root, scrub))
	add(c.collectWorkloads(ctx, root))
	add(c.collectSecretNames(ctx, root))
	if len(errs) > 0 {
		return fmt.Errorf("collecting artifacts of %s: %w", env, errors.Join(errs...))
	}
	return nil
}

// Artifacts are readable by their owner only (privatefile's modes): they get
// uploaded, and until then nobody else on the machine needs pod logs or Flux
// objects.
const (
	fileMode = privatefile.FileMode
	dirMode  = privatefile.DirMode
)

// makePrivateDir creates dir (and its parents) 0700, and makes dir itself
// 0700 when it already existed.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("making directory %s private: %w", dir, err)
	}
	return nil
}

func writeYAML(path string, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return privatefile.Write(path, data)
}

// collectFlux writes objs (as listFluxScrubbed returns them).
func (c *clients) collectFlux(root string, objs []*unstructured.Unstructured, opts Options) error {
	var errs []error
	for _, u := range objs {
		u = u.DeepCopy()
		u.SetManagedFields(nil)
		if !opts.RawValues {
			redactValues(u.Object)
		}
		name := u.GetName()
		if ns := u.GetNamespace(); ns != "" {
			name = ns + "_" + name
		}
		path := filepath.Join(root, "flux", strings.ToLower(u.GetKind()), name+".yaml")
		if err := writeYAML(path, u.Object); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// valuePaths are the fields of Flux objects that hold values rather than
// configuration: HelmRelease values and Kustomization post-build
// substitutions commonly carry passwords and tokens.
func valuePaths() [][]string {
	return [][]string{
		{"spec", "values"},
		{"spec", "postBuild", "substitute"},
	}
}

// lastApplied is the annotation in which client-side apply keeps a copy of
// the object as applied, values included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// redactValues replaces the values an object carries in valuePaths, and in
// its last-applied-configuration copy, by their digests, keeping the keys.
func redactValues(obj map[string]any) {
	for _, path := range valuePaths() {
		if v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...); ok {
			_ = unstructured.SetNestedField(obj, record.RedactValues(v), path...)
		}
	}
	ann, _, _ := unstructured.NestedStringMap(obj, "metadata", "annotations")
	copyJSON, ok := ann[lastApplied]
	if !ok {
		return
	}
	var applied map[string]any
	dec := json.NewDecoder(strings.NewReader(copyJSON))
	dec.UseNumber() // numbers stay as written
	if err := dec.Decode(&applied); err != nil {
		ann[lastApplied] = "(withheld: not JSON, may hold values)"
	} else {
		redactValues(applied)
		data, err := json.Marshal(applied)
		if err != nil {
			data = []byte("(withheld: " + err.Error() + ")")
		}
		ann[lastApplied] = string(data)
	}
	_ = unstructured.SetNestedStringMap(obj, ann, "metadata", "annotations")
}

func (c *clients) collectEvents(ctx context.Context, root string, scrub *record.Scrubbers) error {
	list, err := c.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing events: %w", err)
	}
	scrubEvents(scrub, list.Items)
	sort.SliceStable(list.Items, func(i, j int) bool { return eventTime(&list.Items[i]).Before(eventTime(&list.Items[j])) })
	for i := range list.Items {
		list.Items[i].ManagedFields = nil
	}
	list.APIVersion, list.Kind = "v1", "EventList"
	return writeYAML(filepath.Join(root, "events.yaml"), list)
}

// collectControllerLogs saves the logs of every Deployment in Flux's
// namespace (all containers of each of its pods), scrubbed of every value of
// the environment: helm-controller logs the errors it puts in conditions.
func (c *clients) collectControllerLogs(ctx context.Context, root string, scrub *record.Scrubbers) error {
	deps, err := c.Kube.AppsV1().Deployments(fluxobj.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing %s deployments: %w", fluxobj.Namespace, err)
	}
	var errs []error
	for _, d := range deps.Items {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			errs = append(errs, fmt.Errorf("selector of deployment %s: %w", d.Name, err))
			continue
		}
		pods, err := c.Kube.CoreV1().Pods(fluxobj.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing pods of deployment %s: %w", d.Name, err))
			continue
		}
		var b strings.Builder
		for _, p := range pods.Items {
			for _, ctr := range p.Spec.Containers {
				fmt.Fprintf(&b, "==> pod %s container %s <==\n", p.Name, ctr.Name)
				logs, err := c.podLogs(ctx, p.Namespace, p.Name, ctr.Name, false, 0)
				if err != nil {
					errs = append(errs, err)
					fmt.Fprintf(&b, "(%v)\n", err)
					continue
				}
				b.WriteString(logs)
			}
		}
		if len(pods.Items) == 0 {
			b.WriteString("(no pods)\n")
		}
		if err := privatefile.Write(filepath.Join(root, "controllers", d.Name+".log"), []byte(scrub.All(b.String()))); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *clients) collectPodLogs(ctx context.Context, root string, scrub *record.Scrubbers) error {
	pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	var errs []error
	for _, tp := range failingPods(pods.Items) {
		for _, t := range tp.Troubles {
			if t.Container == "" {
				continue
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# pod %s/%s container %s image %s: %s %s\n", tp.Pod.Namespace, tp.Pod.Name, t.Container, t.Image, t.State, t.Message)
			if t.Previous {
				b.WriteString("==> previous instance <==\n")
				if logs, err := c.podLogs(ctx, tp.Pod.Namespace, tp.Pod.Name, t.Container, true, 0); err == nil {
					b.WriteString(logs)
				} else {
					fmt.Fprintf(&b, "(%v)\n", err)
				}
				b.WriteString("==> current instance <==\n")
			}
			if t.HasLogs {
				if logs, err := c.podLogs(ctx, tp.Pod.Namespace, tp.Pod.Name, t.Container, false, 0); err == nil {
					b.WriteString(logs)
				} else {
					fmt.Fprintf(&b, "(%v)\n", err)
				}
			} else {
				b.WriteString("(container never started: no logs)\n")
			}
			// A workload may print what its chart rendered from the values.
			path := filepath.Join(root, "pods", tp.Pod.Namespace+"_"+tp.Pod.Name+"_"+t.Container+".log")
			if err := privatefile.Write(path, []byte(scrub.All(b.String()))); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// workloadSummary is one line of workloads.yaml.
type workloadSummary struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Ready     string `json:"ready"`
	Status    string `json:"status"`
	Message   string `json:"message,omitempty"`
	Images    string `json:"images,omitempty"`
}

func summarizeWorkload(obj runtime.Object, kind, ns, name, ready string, podSpec *corev1.PodSpec) workloadSummary {
	ws := workloadSummary{Kind: kind, Namespace: ns, Name: name, Ready: ready}
	if res, err := typedstatus.Compute(obj); err == nil {
		ws.Status, ws.Message = string(res.Status), res.Message
	}
	if podSpec != nil {
		var imgs []string
		for _, c := range podSpec.Containers {
			imgs = append(imgs, c.Image)
		}
		ws.Images = strings.Join(imgs, ",")
	}
	return ws
}

func (c *clients) collectWorkloads(ctx context.Context, root string) error {
	var out []workloadSummary
	var errs []error
	if l, err := c.Kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{}); err != nil {
		errs = append(errs, fmt.Errorf("listing deployments: %w", err))
	} else {
		for i := range l.Items {
			d := &l.Items[i]
			out = append(out, summarizeWorkload(d, "Deployment", d.Namespace, d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, d.Status.Replicas), &d.Spec.Template.Spec))
		}
	}
	if l, err := c.Kube.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{}); err != nil {
		errs = append(errs, fmt.Errorf("listing statefulsets: %w", err))
	} else {
		for i := range l.Items {
			s := &l.Items[i]
			out = append(out, summarizeWorkload(s, "StatefulSet", s.Namespace, s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, s.Status.Replicas), &s.Spec.Template.Spec))
		}
	}
	if l, err := c.Kube.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{}); err != nil {
		errs = append(errs, fmt.Errorf("listing daemonsets: %w", err))
	} else {
		for i := range l.Items {
			d := &l.Items[i]
			out = append(out, summarizeWorkload(d, "DaemonSet", d.Namespace, d.Name, fmt.Sprintf("%d/%d", d.Status.NumberReady, d.Status.DesiredNumberScheduled), &d.Spec.Template.Spec))
		}
	}
	if l, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		errs = append(errs, fmt.Errorf("listing pods: %w", err))
	} else {
		for i := range l.Items {
			p := &l.Items[i]
			ready := 0
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Ready {
					ready++
				}
			}
			ws := summarizeWorkload(p, "Pod", p.Namespace, p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), &p.Spec)
			var states []string
			for _, t := range troublesOf(p) {
				states = append(states, strings.TrimSpace(t.Container+" "+t.State))
			}
			if len(states) > 0 {
				ws.Message = strings.Join(states, "; ")
			}
			out = append(out, ws)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	errs = append(errs, writeYAML(filepath.Join(root, "workloads.yaml"), out))
	return errors.Join(errs...)
}

// collectSecretNames lists Secrets through the metadata API, so Secret data
// never even reaches this process.
func (c *clients) collectSecretNames(ctx context.Context, root string) error {
	gvr := corev1.SchemeGroupVersion.WithResource("secrets")
	list, err := c.Metadata.Resource(gvr).Namespace("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing secret names: %w", err)
	}
	var names []string
	for _, s := range list.Items {
		names = append(names, s.Namespace+"/"+s.Name)
	}
	sort.Strings(names)
	return privatefile.Write(filepath.Join(root, "secrets.txt"), []byte(strings.Join(names, "\n")+"\n"))
}
