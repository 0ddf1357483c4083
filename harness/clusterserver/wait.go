package clusterserver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// pollInterval is how often the waits look again.
const pollInterval = time.Second

// waitAvailable waits until the Deployment's one pod of the current
// template is Ready, failing at once when a pod cannot pull the image or
// keeps crashing.
func (s *Server) waitAvailable(ctx context.Context) error {
	spec := poll.Every(pollInterval).Within(deployTimeout).For(fmt.Sprintf("deployment %s/%s to be Available", s.opts.Namespace, Name))
	return poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		d, err := s.c.Kube.AppsV1().Deployments(s.opts.Namespace).Get(ctx, Name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("reading deployment %s/%s: %w", s.opts.Namespace, Name, err)
		}
		if available(d) {
			return true, nil
		}
		pods, err := s.pods(ctx)
		if err != nil {
			return false, err
		}
		for i := range pods {
			if err := fatalProblem(&pods[i]); err != nil {
				return true, err
			}
		}
		return false, fmt.Errorf("deployment %s/%s: %s", s.opts.Namespace, Name, podSummary(pods))
	})
}

// available: the controller has seen the current spec, and the one replica
// of it is updated and ready.
func available(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	ok := slices.ContainsFunc(d.Status.Conditions, func(c appsv1.DeploymentCondition) bool {
		return c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue
	})
	return ok && d.Status.UpdatedReplicas == 1 && d.Status.ReadyReplicas == 1 && d.Status.Replicas == 1
}

func (s *Server) pods(ctx context.Context) ([]corev1.Pod, error) {
	list, err := s.c.Kube.CoreV1().Pods(s.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{nameLabel: Name}}),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of deployment %s/%s: %w", s.opts.Namespace, Name, err)
	}
	return list.Items, nil
}

// fatalProblem is a problem of the pod that waiting does not mend: an image
// kubelet could not pull (ImagePullBackOff follows a failed pull and its
// retry), an image the node may not pull, or a crash loop.
func fatalProblem(pod *corev1.Pod) error {
	for _, p := range fluxobj.PodProblems(pod) {
		switch {
		case p.Reason == fluxobj.ImagePullReason && containerWaiting(pod, p.Container, "ImagePullBackOff"),
			p.Reason == "ErrImageNeverPull", p.Reason == "InvalidImageName":
			return fmt.Errorf("pod %s/%s: image %s could not be pulled (%s: %s): set E2E_SERVER_IMAGE to an image the cluster can pull, or load %s into its nodes",
				pod.Namespace, pod.Name, p.Image, p.Reason, p.Message, p.Image)
		case p.Certain:
			return fmt.Errorf("pod %s/%s: container %s: %s: %s (see its logs)", pod.Namespace, pod.Name, p.Container, p.Reason, p.Message)
		}
	}
	return nil
}

func containerWaiting(pod *corev1.Pod, container, reason string) bool {
	return slices.ContainsFunc(pod.Status.ContainerStatuses, func(cs corev1.ContainerStatus) bool {
		return cs.Name == container && cs.State.Waiting != nil && cs.State.Waiting.Reason == reason
	})
}

// podSummary says what the pods are doing, for the wait's last error.
func podSummary(pods []corev1.Pod) string {
	if len(pods) == 0 {
		return "no pod yet"
	}
	var parts []string
	for i := range pods {
		p := &pods[i]
		state := string(p.Status.Phase)
		if probs := fluxobj.PodProblems(p); len(probs) > 0 {
			state = probs[0].Reason
			if probs[0].Message != "" {
				state += ": " + probs[0].Message
			}
		}
		parts = append(parts, fmt.Sprintf("pod %s %s", p.Name, state))
	}
	return strings.Join(parts, "; ")
}
