package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/flux-fleet/flux-fleet/harness/internal/typedstatus"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// serviceNetworkPoll is the pause between two tries of the Service
// network, in sleep(1)'s syntax; serviceAPIPoll is the same pause between
// two questions to the API while waiting for a Service.
const (
	serviceNetworkPoll = "0.25"
	serviceAPIPoll     = 250 * time.Millisecond
)

// clusterCA is where kubeadm leaves the cluster CA on every node.
const clusterCA = "/etc/kubernetes/pki/ca.crt"

// serviceNetwork waits for the Service network and the cluster DNS of
// kind cluster name, through its API (cs) and, for what only a node can
// tell, by trying Services from its nodes (provider); log gets progress.
type serviceNetwork struct {
	name     string
	cs       kubernetes.Interface
	provider *kindcluster.Provider
	log      *lineWriter
}

// newServiceNetwork is the serviceNetwork of kind cluster name reached
// through cfg, with a client whose every request is bounded.
func newServiceNetwork(cfg *rest.Config, name string, provider *kindcluster.Provider, log *lineWriter) (serviceNetwork, error) {
	cs, err := boundedClientset(cfg)
	if err != nil {
		return serviceNetwork{}, err
	}
	return serviceNetwork{name: name, cs: cs, provider: provider, log: log}, nil
}

// WaitServiceNetwork waits, at most limit (0 = DefaultWaitForReady), until
// Services work inside the cluster: the API server answers on the
// kubernetes Service's cluster IP from every node, and the cluster DNS
// Service has a ready endpoint. Nodes turn Ready before kube-proxy has
// programmed Service IPs: a controller started in that window cannot reach
// the API server through the Service and exits, and kubelet starts it
// again only after its 10 s back-off; a controller that fetches from
// another through its Service name (Flux's kustomize-controller from
// source-controller) needs DNS too. The answer
// must pass TLS verification with the cluster CA, so that whatever else the
// host routes that address to does not count; any HTTP status does.
// ServiceNetworkTook records how long it took. A cluster the harness did not
// create is in use already: it returns at once.
func (c *Cluster) WaitServiceNetwork(ctx context.Context, limit time.Duration) error {
	if limit <= 0 {
		limit = DefaultWaitForReady
	}
	if c.existing {
		// A cluster in use has its Service network; its nodes cannot be asked.
		return nil
	}
	start := time.Now()
	services, err := newServiceNetwork(c.RESTConfig, c.Name, c.provider, c.log)
	if err != nil {
		return serviceNetworkErr(ctx, c.Name, limit, err)
	}
	if err := services.waitNetwork(ctx, limit); err != nil {
		if errors.Is(err, errNoCurl) {
			c.log.printf("cluster %s: node image has no curl: not waiting for the Service network", c.Name)
			return nil
		}
		return err
	}
	c.ServiceNetworkTook = time.Since(start)
	c.log.printf("cluster %s: Service network and DNS ready after %.1fs", c.Name, c.ServiceNetworkTook.Seconds())
	return nil
}

// waitNetwork is WaitServiceNetwork's wait, limit given; it returns
// errNoCurl itself, for the caller to decide.
func (s serviceNetwork) waitNetwork(ctx context.Context, limit time.Duration) error {
	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	addr, err := untilServiceAddr(waitCtx, s.cs, metav1.NamespaceDefault, "kubernetes")
	if err != nil {
		return serviceNetworkErr(ctx, s.name, limit, err)
	}
	if err := s.untilAnswersFromNodes(waitCtx, "https://"+addr+"/healthz", limit-time.Since(start)); err != nil {
		if errors.Is(err, errNoCurl) {
			return err
		}
		return serviceNetworkErr(ctx, s.name, limit, err)
	}
	if err := s.waitClusterDNS(waitCtx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for the cluster DNS of cluster %s: %w", s.name, context.Cause(ctx))
		}
		return fmt.Errorf("cluster %s: the Service network works but the cluster DNS is not ready after %s: %w", s.name, limit, err)
	}
	return nil
}

// serviceNetworkErr is the error of a Service network wait of cluster name
// that failed with err: the end of ctx when that came first.
func serviceNetworkErr(ctx context.Context, name string, limit time.Duration, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("waiting for the Service network of cluster %s: %w", name, context.Cause(ctx))
	}
	return fmt.Errorf("cluster %s: the API server does not answer on the kubernetes Service after %s (kube-proxy not running?): %w", name, limit, err)
}

// WaitServiceAnswers waits, at most limit (0 = DefaultWaitForReady), until
// the Service namespace/name answers plain HTTP on its cluster IP and first
// port from every node, any status counting. A Service whose pods have just
// turned Ready is reachable only once kube-proxy has programmed its
// endpoints, a moment later: a client that uses it in that window (Flux's
// kustomize-controller fetching its first artifact from source-controller)
// gets a refused connection and backs off for seconds. On a cluster the
// harness did not create, whose nodes it cannot ask, it waits until the
// Service has a ready endpoint instead.
func (c *Cluster) WaitServiceAnswers(ctx context.Context, namespace, name string, limit time.Duration) error {
	if limit <= 0 {
		limit = DefaultWaitForReady
	}
	services, err := newServiceNetwork(c.RESTConfig, c.Name, c.provider, c.log)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	if c.existing {
		return services.waitReadyEndpoint(ctx, namespace, name, limit)
	}
	return services.waitAnswers(ctx, namespace, name, limit)
}

// waitAnswers is WaitServiceAnswers' wait, limit given.
func (s serviceNetwork) waitAnswers(ctx context.Context, namespace, name string, limit time.Duration) error {
	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	addr, err := untilServiceAddr(waitCtx, s.cs, namespace, name)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", s.name, err)
	}
	url := "http://" + addr + "/"
	if err := s.untilAnswersFromNodes(waitCtx, url, limit-time.Since(start)); err != nil {
		if errors.Is(err, errNoCurl) {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for Service %s/%s of cluster %s: %w", namespace, name, s.name, context.Cause(ctx))
		}
		return fmt.Errorf("cluster %s: Service %s/%s does not answer at %s after %s (its pods Ready, kube-proxy not programming it?): %w", s.name, namespace, name, url, limit, err)
	}
	return nil
}

// clusterDNS is the Service kubeadm names the cluster DNS (CoreDNS) by.
var clusterDNS = types.NamespacedName{Namespace: metav1.NamespaceSystem, Name: "kube-dns"}

// dnsReadinessPeriod is the period, in seconds, of the cluster DNS's
// readiness probe on a new cluster.
const dnsReadinessPeriod = 1

// quickenClusterDNS makes the cluster DNS (CoreDNS, as kubeadm installs it)
// ready sooner on a new cluster, since every bring-up waits for it.
// CoreDNS starts before kube-proxy has programmed the kubernetes Service,
// so its first lists of the API fail and its client backs off;
// pointed at the API server's own address (APIServerEndpoint) it syncs as
// soon as it runs. And its readiness probe runs every second instead of
// kubeadm's 10 s, the time the DNS Service could otherwise stay without an
// endpoint after CoreDNS is ready. Done right after create, mostly before
// the controller manager has made CoreDNS's pods; when not, the pods roll
// and waitClusterDNS waits the roll out. A cluster without that Deployment
// is left alone.
func (s serviceNetwork) quickenClusterDNS(ctx context.Context) error {
	apiServer, err := s.apiServerEndpoint(ctx)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(apiServer)
	if err != nil {
		return fmt.Errorf("cluster %s: API server endpoint %q: %w", s.name, apiServer, err)
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{
			"name":           "coredns",
			"readinessProbe": map[string]any{"periodSeconds": dnsReadinessPeriod},
			"env": []any{
				map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": host},
				map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": port},
			},
		}},
	}}}})
	if err != nil {
		return err
	}
	_, err = s.cs.AppsV1().Deployments(clusterDNSDeployment.Namespace).Patch(ctx, clusterDNSDeployment.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "flux-fleet"})
	switch {
	case apierrors.IsNotFound(err):
		s.log.printf("cluster %s: no Deployment %s: cluster DNS left as it is", s.name, clusterDNSDeployment)
	case err != nil:
		return fmt.Errorf("cluster %s: patching Deployment %s (readiness period, API server address): %w", s.name, clusterDNSDeployment, err)
	}
	return nil
}

// clusterDNSDeployment is the Deployment kubeadm runs CoreDNS as.
var clusterDNSDeployment = types.NamespacedName{Namespace: metav1.NamespaceSystem, Name: "coredns"}

// waitClusterDNS waits until the cluster DNS Service has a ready endpoint
// and CoreDNS has rolled out (untilClusterDNSReady).
// A cluster without that Service (a CNI or DNS of its own) is not waited
// for: its DNS is not ours to judge.
func (s serviceNetwork) waitClusterDNS(ctx context.Context) error {
	absent, err := untilClusterDNSReady(ctx, s.cs)
	if err != nil {
		return err
	}
	if absent {
		s.log.printf("cluster %s: no Service %s: not waiting for the cluster DNS", s.name, clusterDNS)
	}
	return nil
}

// untilClusterDNSReady waits until the cluster DNS Service has a ready
// endpoint and kubeadm's CoreDNS Deployment has rolled out, or reports that
// there is no such Service.
func untilClusterDNSReady(ctx context.Context, cs kubernetes.Interface) (absent bool, err error) {
	spec := poll.Every(serviceAPIPoll).For("a ready endpoint of Service " + clusterDNS.String())
	err = poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Services(clusterDNS.Namespace).Get(ctx, clusterDNS.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			absent = true
			return true, nil
		}
		if err != nil {
			return false, err
		}
		slices, err := cs.DiscoveryV1().EndpointSlices(clusterDNS.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + clusterDNS.Name})
		if err != nil {
			return false, err
		}
		if !hasReadyEndpoint(slices.Items) {
			return false, fmt.Errorf("Service %s has no ready endpoint (CoreDNS pods not Ready)", clusterDNS)
		}
		return clusterDNSRolledOut(ctx, cs)
	})
	return absent, err
}

// clusterDNSRolledOut reports whether kubeadm's CoreDNS Deployment, if
// there is one, is Current in kstatus's terms. On a loaded machine the
// controller manager can make CoreDNS's pods before quickenClusterDNS's
// patch, which then rolls them: until the old pods are gone, the cluster
// is not settled (a snapshot of it would see them vanish).
func clusterDNSRolledOut(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	d, err := cs.AppsV1().Deployments(clusterDNSDeployment.Namespace).Get(ctx, clusterDNSDeployment.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	st, err := typedstatus.Compute(d)
	if err != nil {
		return false, fmt.Errorf("computing the status of Deployment %s: %w", clusterDNSDeployment, err)
	}
	if st.Status != status.CurrentStatus {
		return false, fmt.Errorf("Deployment %s is %s: %s", clusterDNSDeployment, st.Status, st.Message)
	}
	// A Deployment's status does not count pods that are terminating: an
	// old CoreDNS pod can outlive a Current roll out by its grace period.
	if d.Spec.Selector == nil {
		return true, nil
	}
	pods, err := cs.CoreV1().Pods(clusterDNSDeployment.Namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
	if err != nil {
		return false, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			return false, fmt.Errorf("Deployment %s rolled out, its old pod %s still terminating", clusterDNSDeployment, p.Name)
		}
	}
	return true, nil
}

// hasReadyEndpoint reports whether any endpoint of the slices is ready
// (an endpoint without the condition counts as ready, as the API defines).
func hasReadyEndpoint(list []discoveryv1.EndpointSlice) bool {
	for _, s := range list {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				return true
			}
		}
	}
	return false
}

// APIServerEndpoint is the API server's own address (host:port) as it
// advertises it in the kubernetes Service's endpoints: on a kind cluster,
// the control-plane node's address on the kind network. Pods reach it
// without kube-proxy, which lets controllers start before the Service
// network is programmed; its serving certificate names that address. A
// cluster the harness did not create answers "": use the kubernetes Service.
func (c *Cluster) APIServerEndpoint(ctx context.Context) (string, error) {
	if c.existing {
		// The address kind advertises is known to work; another
		// cluster's (a vcluster's, a managed one's) may not be reachable
		// from pods or named by the serving certificate.
		return "", nil
	}
	services, err := newServiceNetwork(c.RESTConfig, c.Name, c.provider, c.log)
	if err != nil {
		return "", fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	return services.apiServerEndpoint(ctx)
}

// apiServerEndpoint is APIServerEndpoint, waiting at most
// DefaultWaitForReady for the endpoint to appear.
func (s serviceNetwork) apiServerEndpoint(ctx context.Context) (string, error) {
	addr, err := untilAPIServerEndpoint(ctx, s.cs, DefaultWaitForReady)
	if err != nil {
		return "", fmt.Errorf("cluster %s: %w", s.name, err)
	}
	return addr, nil
}

// untilAPIServerEndpoint reads the kubernetes Service's endpoint slices
// until apiServerAddr finds the API server's address in them, at most limit.
func untilAPIServerEndpoint(ctx context.Context, cs kubernetes.Interface, limit time.Duration) (string, error) {
	var addr string
	spec := poll.Every(serviceAPIPoll).Within(limit).For("the API server's endpoint in the kubernetes Service")
	err := poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		list, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
		if err != nil {
			return false, err
		}
		var why string
		if addr, why = apiServerAddr(list.Items); addr == "" {
			return false, errors.New(why)
		}
		return true, nil
	})
	return addr, err
}

// apiServerAddr is host:port of the first ready address of the kubernetes
// Service's endpoint slices (the port named https), else "" and why not.
func apiServerAddr(list []discoveryv1.EndpointSlice) (string, string) {
	for _, s := range list {
		var port int32
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil || *p.Name == "https") {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) > 0 && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				return net.JoinHostPort(e.Addresses[0], strconv.Itoa(int(port))), ""
			}
		}
	}
	return "", "the kubernetes Service has no ready endpoint with an https port yet"
}

// errNoCurl: the node image has no curl to try a Service with; the waits
// that need it do not wait.
var errNoCurl = errors.New("the node image has no curl")

// untilAnswersFromNodes waits, at most limit, until url answers from every
// node of the cluster (untilServiceAnswers), or returns errNoCurl.
func (s serviceNetwork) untilAnswersFromNodes(ctx context.Context, url string, limit time.Duration) error {
	nodeList, err := kindCall(ctx, "listing nodes of cluster "+s.name, func() ([]nodes.Node, error) { return s.provider.ListInternalNodes(s.name) })
	if err != nil {
		return fmt.Errorf("listing nodes of cluster %s: %w", s.name, err)
	}
	if len(nodeList) > 0 && !hasCurl(ctx, nodeList[0]) {
		return errNoCurl
	}
	return untilServiceAnswers(ctx, nodeList, url, limit)
}

// untilServiceAnswers waits until url answers from every node, at most
// limit. Each node runs one shell loop of bounded curl tries: a docker exec
// per try, several a second on every node, would take CPU from the very
// cluster start it waits for.
func untilServiceAnswers(ctx context.Context, nodeList []nodes.Node, url string, limit time.Duration) error {
	secs := strconv.Itoa(int(math.Ceil(limit.Seconds())))
	g, ctx := errgroup.WithContext(ctx)
	for _, n := range nodeList {
		g.Go(func() error {
			var stderr bytes.Buffer
			err := n.CommandContext(ctx, "timeout", secs, "sh", "-c", serviceLoop, url).SetStderr(&stderr).Run()
			if err != nil {
				return fmt.Errorf("node %s: %s: no answer within %s (last try: %s)", n, url, limit, lastCurlError(stderr.String(), err))
			}
			return nil
		})
	}
	return g.Wait()
}

// serviceLoop tries the URL in $0 until curl gets an answer: without
// --fail any HTTP status counts, while a refused or timed-out connection or
// a certificate the cluster CA did not sign does not.
const serviceLoop = `until curl --silent --show-error --output /dev/null --max-time 2 --cacert ` + clusterCA +
	` "$0"; do sleep ` + serviceNetworkPoll + `; done`

// lastCurlError is curl's last error line in out ("curl: (60) SSL
// certificate problem: ..."; curl explains some errors in more lines, which
// say less), else out's last line, else err's text.
func lastCurlError(out string, err error) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "curl: ") {
			return strings.TrimSpace(lines[i])
		}
	}
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return err.Error()
}

// untilServiceAddr is the host:port of Service namespace/name's cluster IP
// and first port, read from the API, waiting while the Service is not there
// or has no cluster IP yet (the kubernetes Service, on a new cluster).
func untilServiceAddr(ctx context.Context, cs kubernetes.Interface, namespace, name string) (string, error) {
	var addr string
	spec := poll.Every(serviceAPIPoll).For("Service " + namespace + "/" + name + " to have a cluster IP")
	err := poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		svc, err := cs.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
			return false, fmt.Errorf("Service %s/%s has no cluster IP or port", namespace, name)
		}
		addr = net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
		return true, nil
	})
	return addr, err
}

func hasCurl(ctx context.Context, n nodes.Node) bool {
	return n.CommandContext(ctx, "sh", "-c", "command -v curl").Run() == nil
}
