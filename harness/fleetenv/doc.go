// Package fleetenv brings a fleet's environments up on kind, or on clusters
// a kubeconfig names (existing.go), and tears them down. The flow, one named step each (BringUp; e2e/main_test.go spells it
// out), every step in a file of its own:
//
//	offline checks   step_offline.go    the fleet builds, before anything exists
//	chart server     step_charts.go     the fixture charts, on loopback
//	pre-flight       step_preflight.go  every HelmRelease resolved and rendered
//	clusters         step_clusters.go   kind clusters, or kubeconfig contexts checked (existing.go); starts the Service network wait and the image load
//	servers          step_servers.go    git server and charts on the kind network, or the fleet server in each cluster (fleetserver.go)
//	flux install     step_fluxinstall.go  Flux, alongside the cluster work above
//	sync             step_sync.go       the sync objects; the first revision fetched
//	wait             step_wait.go       every object Ready, or why not
//	upgrade          upgrade.go         with a base: its own named steps (upgrade_steps.go)
//
// flow.go runs the steps (Run.Step for e2e-framework, Run.Up for the rest),
// the Run records what they return (state.go), teardown.go undoes them by
// the keep policy; Publisher (publish.go) republishes or clears the fleet on
// kept clusters; diagnostics.go prints a failed environment's summary once.
package fleetenv
