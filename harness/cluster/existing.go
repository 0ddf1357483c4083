package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// The opt-in marker and the ownership label of clusters the harness did not
// create (Connect): the user marks a cluster once as one the harness may
// change and wipe, and everything the harness installs there carries
// ManagedByLabel so that its teardown deletes exactly that.
const (
	// AllowLabel on the kube-system Namespace, set to AllowValue, opts a
	// cluster in.
	AllowLabel = "flux-fleet.io/allow-e2e"
	AllowValue = "true"
	// ManagedByLabel=ManagedByValue marks what the harness installed.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "flux-fleet-harness"
)

// optInCheckTimeout bounds the checks of a cluster the harness did not
// create: a handful of reads, so that a refusal comes in seconds.
const optInCheckTimeout = 20 * time.Second

// crdResource is the CustomResourceDefinitions' API resource.
var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// fluxGroupSuffix is the API group suffix of every Flux CRD.
const fluxGroupSuffix = ".toolkit.fluxcd.io"

// Connect returns the cluster that context contextName of the kubeconfig
// files in kubeconfig (a path list, as $KUBECONFIG) reaches: a cluster the
// harness did not create. It is only read here; CheckOptIn says whether the
// harness may change it. The kubeconfig stays where it is: Connect neither
// copies nor logs it, and KubeconfigPath names it for the user's own kubectl.
// Such a cluster is never deleted (Delete refuses) nor tracked by a Guard,
// and has no kind nodes: LoadImages and ExportLogs refuse, the Service
// network waits ask the API instead of the nodes.
func Connect(kubeconfig, contextName string, log io.Writer) (*Cluster, error) {
	cfg, err := RESTConfigFromKubeconfig(kubeconfig, contextName)
	if err != nil {
		return nil, err
	}
	lw := newLineWriter(io.Discard)
	if log != nil {
		lw = newLineWriter(log)
	}
	return &Cluster{
		Name: contextName, KubeconfigPath: kubeconfig, Context: contextName,
		RESTConfig: cfg, Reused: true, existing: true, log: lw,
	}, nil
}

// RESTConfigFromKubeconfig is the REST config of context contextName in the
// kubeconfig files kubeconfig (a path list, as $KUBECONFIG). Its errors name
// the files and the context, never what the files hold.
func RESTConfigFromKubeconfig(kubeconfig, contextName string) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(kubeconfig)}
	raw, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", kubeconfig, err)
	}
	if _, ok := raw.Contexts[contextName]; !ok {
		var names []string
		for name := range raw.Contexts {
			names = append(names, name)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("kubeconfig %s has no context %q (it has: %s)", kubeconfig, contextName, strings.Join(names, ", "))
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, contextName, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s, context %q: %w", kubeconfig, contextName, err)
	}
	return cfg, nil
}

// Existing reports whether the harness did not create the cluster: it was
// reached by Connect.
func (c *Cluster) Existing() bool { return c.existing }

// errExisting is what the kind-only operations answer for a cluster the
// harness did not create.
func (c *Cluster) errExisting(what string) error {
	return fmt.Errorf("%s: cluster %s (kubeconfig context %q) was not created by the harness and has no kind nodes", what, c.Name, c.Context)
}

// RefusedError says why the harness will not touch a cluster it did not
// create, and how to opt the cluster in.
type RefusedError struct {
	Cluster string // the kubeconfig context
	Server  string // its API server
	Reason  string
	Fix     string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing cluster %q (%s), nothing was changed: %s; %s", e.Cluster, e.Server, e.Reason, e.Fix)
}

// CheckOptIn refuses, before anything is changed and within seconds, a
// cluster the harness did not create unless the user opted it in (AllowLabel
// on the kube-system Namespace) and it runs no Flux the harness did not
// install: a Flux namespace fluxNamespace, or a *.toolkit.fluxcd.io CRD,
// without ManagedByLabel. It returns a *RefusedError for a refusal. found
// reports whether a Flux the harness installed is there (an earlier run's).
func CheckOptIn(ctx context.Context, c *Cluster, fluxNamespace string) (found bool, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, optInCheckTimeout,
		fmt.Errorf("checking cluster %s took longer than %s", c.Name, optInCheckTimeout))
	defer cancel()
	cs, err := boundedClientset(c.RESTConfig)
	if err != nil {
		return false, fmt.Errorf("checking cluster %s: %w", c.Name, err)
	}
	refuse := func(reason, fix string) error {
		return &RefusedError{Cluster: c.Name, Server: c.RESTConfig.Host, Reason: reason, Fix: fix}
	}
	kubeSystem, err := cs.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("checking cluster %s: reading Namespace kube-system for the opt-in label %s: %w", c.Name, AllowLabel, err)
	}
	if kubeSystem.Labels[AllowLabel] != AllowValue {
		return false, refuse(fmt.Sprintf("Namespace kube-system lacks the label %s=%s that allows flux-fleet to install into and wipe what it installs on this cluster", AllowLabel, AllowValue),
			fmt.Sprintf("to opt in, run: kubectl --context %s label namespace kube-system %s=%s", c.Context, AllowLabel, AllowValue))
	}
	found, err = checkFluxOwnership(ctx, c, cs.CoreV1().Namespaces(), fluxNamespace)
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			refused.Server = c.RESTConfig.Host
		}
		return false, err
	}
	return found, nil
}

// namespaceGetter is the one call checkFluxOwnership makes on Namespaces.
type namespaceGetter interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Namespace, error)
}

// checkFluxOwnership refuses a Flux the harness did not install; found
// reports one it did install.
func checkFluxOwnership(ctx context.Context, c *Cluster, namespaces namespaceGetter, fluxNamespace string) (found bool, err error) {
	fix := "flux-fleet installs and removes Flux itself: use a cluster without Flux, or uninstall it (flux uninstall) first"
	refuse := func(reason string) error { return &RefusedError{Cluster: c.Name, Reason: reason, Fix: fix} }
	ns, err := namespaces.Get(ctx, fluxNamespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, fmt.Errorf("checking cluster %s: reading Namespace %s: %w", c.Name, fluxNamespace, err)
	case ns.Labels[ManagedByLabel] != ManagedByValue:
		return false, refuse(fmt.Sprintf("Namespace %s exists without the label %s=%s: a Flux flux-fleet did not install", fluxNamespace, ManagedByLabel, ManagedByValue))
	default:
		found = true
	}
	crds, err := fluxCRDs(ctx, c.RESTConfig)
	if err != nil {
		return false, fmt.Errorf("checking cluster %s for Flux CRDs: %w", c.Name, err)
	}
	for _, crd := range crds {
		if crd.Labels[ManagedByLabel] != ManagedByValue {
			return false, refuse(fmt.Sprintf("CustomResourceDefinition %s exists without the label %s=%s: a Flux flux-fleet did not install", crd.Name, ManagedByLabel, ManagedByValue))
		}
		found = true
	}
	return found, nil
}

// fluxCRDs lists the cluster's *.toolkit.fluxcd.io CustomResourceDefinitions.
func fluxCRDs(ctx context.Context, cfg *rest.Config) ([]metav1.ObjectMeta, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = requestTimeout
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	list, err := dyn.Resource(crdResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing CustomResourceDefinitions: %w", err)
	}
	var out []metav1.ObjectMeta
	for _, u := range list.Items {
		if strings.HasSuffix(u.GetName(), fluxGroupSuffix) {
			out = append(out, metav1.ObjectMeta{Name: u.GetName(), Labels: u.GetLabels()})
		}
	}
	return out, nil
}

// waitReadyEndpoint waits, at most limit, until Service namespace/name has
// a ready endpoint: what the API tells of a Service answering, where the
// nodes cannot be asked.
func (s serviceNetwork) waitReadyEndpoint(ctx context.Context, namespace, name string, limit time.Duration) error {
	spec := poll.Every(serviceAPIPoll).Within(limit).For(fmt.Sprintf("a ready endpoint of Service %s/%s in cluster %s", namespace, name, s.name))
	return poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		list, err := s.cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
		if err != nil {
			return false, err
		}
		if !hasReadyEndpoint(list.Items) {
			return false, errors.New("no ready endpoint yet")
		}
		return true, nil
	})
}
