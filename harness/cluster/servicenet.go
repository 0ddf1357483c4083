package cluster

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// serviceNetworkPoll is the pause between two tries of the Service
// network, in sleep(1)'s syntax.
const serviceNetworkPoll = "0.25"

// clusterCA is where kubeadm leaves the cluster CA on every node.
const clusterCA = "/etc/kubernetes/pki/ca.crt"

// waitServiceNetwork waits, at most limit, until the API server answers on
// the kubernetes Service's cluster IP from every node. Nodes turn Ready
// before kube-proxy has programmed Service IPs (10-25 s later on two busy
// cores): a controller started in that window, as Flux's are right after
// Create, cannot reach the API server, exits, and kubelet starts it again
// only after a 10 s back-off. The answer must pass TLS verification with
// the cluster CA, so that whatever else the host routes that address to
// does not count; any HTTP status does.
func (c *Cluster) waitServiceNetwork(ctx context.Context, limit time.Duration) error {
	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	addr, err := c.kubernetesServiceAddr(waitCtx)
	if err != nil {
		return c.serviceNetworkErr(ctx, limit, err)
	}
	nodeList, err := kindCall(waitCtx, "listing nodes of cluster "+c.Name, func() ([]nodes.Node, error) { return c.provider.ListInternalNodes(c.Name) })
	if err != nil {
		return fmt.Errorf("listing nodes of cluster %s: %w", c.Name, err)
	}
	if len(nodeList) > 0 && !hasCurl(waitCtx, nodeList[0]) {
		c.log.printf("cluster %s: node image has no curl: not waiting for the Service network", c.Name)
		return nil
	}
	if err := untilServiceAnswers(waitCtx, nodeList, "https://"+addr+"/healthz", limit-time.Since(start)); err != nil {
		return c.serviceNetworkErr(ctx, limit, err)
	}
	c.ServiceNetworkTook = time.Since(start)
	c.log.printf("cluster %s: Service network ready after %.1fs", c.Name, c.ServiceNetworkTook.Seconds())
	return nil
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

func (c *Cluster) serviceNetworkErr(ctx context.Context, limit time.Duration, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("waiting for the Service network of cluster %s: %w", c.Name, context.Cause(ctx))
	}
	return fmt.Errorf("cluster %s: the API server does not answer on the kubernetes Service after %s (kube-proxy not running?): %w", c.Name, limit, err)
}

// kubernetesServiceAddr is the host:port of the kubernetes Service's
// cluster IP, read from the API (the Service CIDR is the kind config's).
func (c *Cluster) kubernetesServiceAddr(ctx context.Context) (string, error) {
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.Timeout = 15 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	var addr string
	var lastErr error
	err = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		svc, err := cs.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			lastErr = err
			return false, nil
		}
		if svc.Spec.ClusterIP == "" || len(svc.Spec.Ports) == 0 {
			lastErr = fmt.Errorf("Service default/kubernetes has no cluster IP or port yet")
			return false, nil
		}
		addr = net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
		return true, nil
	})
	if err != nil && lastErr != nil {
		err = fmt.Errorf("reading Service default/kubernetes: %w", lastErr)
	}
	return addr, err
}

func hasCurl(ctx context.Context, n nodes.Node) bool {
	return n.CommandContext(ctx, "sh", "-c", "command -v curl").Run() == nil
}
