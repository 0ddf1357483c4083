package fluxinstall

import (
	"slices"
	"time"
)

// defaultComponents are the controllers installed when Options.Components is
// empty: those of a standard `flux install`.
var defaultComponents = []string{"source-controller", "kustomize-controller", "helm-controller", "notification-controller"}

// DefaultComponents returns the controllers installed when
// Options.Components is empty, for callers that check what was installed.
func DefaultComponents() []string { return slices.Clone(defaultComponents) }

// DependencyRequeue is how often kustomize- and helm-controller re-check a
// dependency that is not Ready under HarnessControllerArgs: short, so that a
// fresh sync does not wait a whole default interval for a dependency that is
// already Ready.
const DependencyRequeue = 500 * time.Millisecond

// HarnessControllerArgs are the controller flags a test harness wants, for
// Options.ControllerArgs, among components (nil: DefaultComponents): the
// dependency requeue above, and kustomize-controller cancelling a health
// check when a new revision arrives, so that a fix published during a
// failing check applies at once.
func HarnessControllerArgs(components []string) map[string][]string {
	installed := func(c string) bool { return len(components) == 0 || slices.Contains(components, c) }
	requeue := "--requeue-dependency=" + DependencyRequeue.String()
	args := map[string][]string{}
	if installed("kustomize-controller") {
		args["kustomize-controller"] = []string{"--feature-gates=CancelHealthCheckOnNewRevision=true", requeue}
	}
	if installed("helm-controller") {
		args["helm-controller"] = []string{requeue}
	}
	return args
}
