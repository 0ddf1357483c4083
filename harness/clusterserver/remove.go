package clusterserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/poll"
)

// resources are the API resources of the kinds Deploy applies.
var resources = map[string]schema.GroupVersionResource{
	"Secret":     {Version: "v1", Resource: "secrets"},
	"Service":    {Version: "v1", Resource: "services"},
	"Deployment": {Group: "apps", Version: "v1", Resource: "deployments"},
}

// Remove deletes exactly the objects Deploy applied, waits until they and
// the server's pods are gone, then deletes the namespace when Deploy
// created it and nothing but what Kubernetes puts in every namespace is
// left in it (a Flux installed there since keeps it).
func (s *Server) Remove(ctx context.Context) error {
	_ = s.Close()
	ns := s.opts.Namespace
	objs, err := s.objects()
	if err != nil {
		return err
	}
	var errs []error
	background := metav1.DeletePropagationBackground
	for _, u := range objs {
		gvr, ok := resources[u.GetKind()]
		if !ok {
			return fmt.Errorf("removing the fleet server: no resource known for kind %s", u.GetKind())
		}
		err := s.c.Dynamic.Resource(gvr).Namespace(ns).Delete(ctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &background})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting %s %s/%s: %w", u.GetKind(), ns, u.GetName(), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	spec := poll.Every(pollInterval).Within(removeTimeout).For(fmt.Sprintf("the fleet server's objects in namespace %s to be gone", ns))
	err = poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		for _, u := range objs {
			_, err := s.c.Dynamic.Resource(resources[u.GetKind()]).Namespace(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
			if err == nil {
				return false, fmt.Errorf("%s %s/%s is still there", u.GetKind(), ns, u.GetName())
			}
			if !apierrors.IsNotFound(err) {
				return false, fmt.Errorf("reading %s %s/%s: %w", u.GetKind(), ns, u.GetName(), err)
			}
		}
		pods, err := s.pods(ctx)
		if err == nil && len(pods) > 0 {
			err = fmt.Errorf("pod %s/%s is still there", ns, pods[0].Name)
		}
		return err == nil, err
	})
	if err != nil || !s.createdNS {
		return err
	}
	return s.removeNamespace(ctx)
}

// removeNamespace deletes the namespace Deploy created if it holds nothing
// of anyone else's, and waits until it is gone.
func (s *Server) removeNamespace(ctx context.Context) error {
	ns := s.opts.Namespace
	others, err := s.namespaceContents(ctx)
	if err != nil {
		return fmt.Errorf("checking namespace %s before deleting it: %w", ns, err)
	}
	if len(others) > 0 {
		s.log.Printf("namespace %s kept: it holds %s", ns, strings.Join(others, ", "))
		return nil
	}
	if err := s.c.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting namespace %s: %w", ns, err)
	}
	spec := poll.Every(pollInterval).Within(removeTimeout).For(fmt.Sprintf("namespace %s to be gone", ns))
	return poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
		_, err := s.c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil {
			err = fmt.Errorf("namespace %s is still there (terminating)", ns)
		}
		return false, err
	})
}

// everyNamespaceHas are the objects Kubernetes creates in every namespace.
var everyNamespaceHas = []string{"ConfigMap/kube-root-ca.crt", "ServiceAccount/default"}

// namespaceContents names the objects in the namespace that Kubernetes did
// not put in every namespace, across every listable namespaced resource
// (events aside), so that a namespace someone else has used is kept.
func (s *Server) namespaceContents(ctx context.Context) ([]string, error) {
	lists, err := s.c.Kube.Discovery().ServerPreferredNamespacedResources()
	if err != nil {
		return nil, fmt.Errorf("discovering the namespaced resources: %w", err)
	}
	var found []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, fmt.Errorf("discovery group version %q: %w", l.GroupVersion, err)
		}
		for _, r := range l.APIResources {
			// Endpoints mirror EndpointSlices (and listing them draws a deprecation warning).
			if !slices.Contains(r.Verbs, "list") || r.Name == "events" || r.Name == "endpoints" || strings.Contains(r.Name, "/") {
				continue
			}
			items, err := s.c.Metadata.Resource(gv.WithResource(r.Name)).Namespace(s.opts.Namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("listing %s in namespace %s: %w", r.Name, s.opts.Namespace, err)
			}
			for _, it := range items.Items {
				name := r.Kind + "/" + it.Name
				if !slices.Contains(everyNamespaceHas, name) && !s.serviceLeftover(r.Kind, it.Name, it.Labels) {
					found = append(found, name)
				}
			}
		}
	}
	return found, nil
}

// serviceLeftover reports Endpoints and EndpointSlices of the Services
// Remove deleted, which their controllers remove a moment later and the
// namespace's deletion removes in any case.
func (s *Server) serviceLeftover(kind, name string, labels map[string]string) bool {
	services := []string{GitServiceName, chartserver.ServiceName}
	switch kind {
	case "Endpoints":
		return slices.Contains(services, name)
	case "EndpointSlice":
		return slices.Contains(services, labels[discoveryv1.LabelServiceName])
	}
	return false
}
