package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// nodesPoll is how often waitNodesReady lists the nodes.
const nodesPoll = time.Second

// waitNodesReady waits until every node of cluster name reports Ready, at
// most limit, and logs how long that took.
func waitNodesReady(ctx context.Context, cs kubernetes.Interface, name string, log *lineWriter, limit time.Duration) error {
	start := time.Now()
	if err := untilNodesReady(ctx, cs, limit); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	log.printf("cluster %s: nodes Ready after %.1fs", name, time.Since(start).Seconds())
	return nil
}

// untilNodesReady lists the nodes until nodesReady says they are, at most
// limit; the error says what the last list showed.
func untilNodesReady(ctx context.Context, cs kubernetes.Interface, limit time.Duration) error {
	return poll.Until(ctx, poll.Every(nodesPoll).Within(limit).For("its nodes to be Ready"), func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		if ready, state := nodesReady(list.Items); !ready {
			return false, errors.New(state)
		}
		return true, nil
	})
}

// nodesReady reports whether there are nodes and all are Ready, and else
// what the first one that is not says.
func nodesReady(list []corev1.Node) (bool, string) {
	if len(list) == 0 {
		return false, "no node has registered"
	}
	for _, n := range list {
		var cond *corev1.NodeCondition
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady {
				cond = &n.Status.Conditions[i]
			}
		}
		switch {
		case cond == nil:
			return false, fmt.Sprintf("node %s has no Ready condition yet", n.Name)
		case cond.Status != corev1.ConditionTrue:
			return false, fmt.Sprintf("node %s: Ready=%s %s: %s", n.Name, cond.Status, cond.Reason, cond.Message)
		}
	}
	return true, ""
}
