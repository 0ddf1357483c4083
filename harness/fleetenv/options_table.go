package fleetenv

import (
	"context"
	"path/filepath"
	"slices"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// option is one setting of a run, declared once: ResolveOptions reads it,
// RegisterFlags makes its flag, and -help, the README's table and
// docs/configuration.md are written from the same row.
type option struct {
	flag string // the flag's name, without the dash
	env  string // the variable used when the flag is not given
	// def is the default as a literal ("10m"); defNote says more or, with
	// def empty, all there is ("unset: the working tree").
	def, defNote string
	meaning      string // one short line: -help and the README's table
	details      string // docs/configuration.md adds it to the meaning
	isBool       bool   // a bare -flag means true
	// field names the Options field resolve sets, so that a test can prove
	// every field has its row.
	field   string
	resolve func(ctx context.Context, r *resolver, s setting)
}

// optionGroup is a heading of -help and docs/configuration.md.
type optionGroup struct {
	title   string
	options []option
}

// optionTable is every option in the order ResolveOptions reads them, which
// is also the order errors and documentation list them in: an option comes
// after those its reading depends on (the fleet before its environments,
// the kit before the charts it adds).
func optionTable() []option {
	var all []option
	for _, g := range optionGroups() {
		all = append(all, g.options...)
	}
	return all
}

func optionGroups() []optionGroup {
	return []optionGroup{
		{"The fleet and its environments", fleetOptions()},
		{"Clusters", clusterOptions()},
		{"Offline kit, Flux and charts", kitOptions()},
		{"Checks before any cluster", checkOptions()},
		{"Files", fileOptions()},
	}
}

func fleetOptions() []option {
	return []option{
		{flag: "fleet", env: "E2E_FLEET", def: ".", defNote: "the repository root", field: "FleetDir",
			meaning: "fleet directory to serve and sync, with the layout `clusters/<env>`, `apps/`, `infrastructure/`",
			details: "Relative paths are taken from the repository root. `make e2e FLEET=fixtures/fleets/basic` sets it; the fixture fleets run on the offline kit.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.FleetDir, r.fleetOK = r.fleetDir(s) }},
		{flag: "envs", env: "E2E_ENVS", def: "staging,production", field: "Envs",
			meaning: "environments to bring up, comma-separated: each on its own kind cluster, synced to `clusters/<env>`",
			details: "Only these clusters are created. Each name must be a valid part of a kind cluster name (lowercase letters, digits, `.` and `-`) and, unless `-revision` is set, a directory `clusters/<env>` of the fleet. `make e2e ENV=staging` sets it.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Envs = r.envs(s) }},
		{flag: "revision", env: "E2E_REVISION", defNote: "unset (the working tree)", field: "Revision",
			meaning: "git revision of the fleet's repository to serve instead of the working tree",
			details: "The run serves exactly what that commit held, to reproduce a run of an earlier commit. The revision must exist and hold the fleet directory; both are checked before any cluster is created. With `-base` it is the head of the upgrade.",
			resolve: func(ctx context.Context, r *resolver, s setting) { r.opts.Revision = r.revision(ctx, s) }},
		{flag: "base", env: "E2E_BASE", defNote: "unset (no upgrade)", field: "Base",
			meaning: "git revision to converge and check first; the run then rolls to the head in an extra step, upgrade",
			details: "The head is `-revision`, or the working tree. `make e2e-upgrade BASE=<revision>` sets it.",
			resolve: func(ctx context.Context, r *resolver, s setting) { r.opts.Base = r.revision(ctx, s) }},
		{flag: "max-failed-requests", env: "E2E_MAX_FAILED_REQUESTS", defNote: "unset (report only)", field: "MaxFailedRequests",
			meaning: "requests through the ingress allowed to fail while an upgrade rolls out",
			details: "0 or more. Unset, the upgrade reports failed requests and does not fail on them.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.MaxFailedRequests = r.maxFailedRequests(s) }},
	}
}

func clusterOptions() []option {
	return []option{
		{flag: "cluster-prefix", env: "E2E_CLUSTER_PREFIX", defNote: "empty", field: "ClusterPrefix",
			meaning: "prefix of the cluster names: the cluster of an environment is `<prefix><env>`",
			details: "Lets runs on one machine use clusters of their own. Lowercase letters, digits, `.` and `-`, starting with a letter or digit; the whole cluster name must fit kind's node host names.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.ClusterPrefix = r.clusterPrefix(s) }},
		{flag: "keep", env: "E2E_KEEP", def: "on-failure", field: "Keep",
			meaning: "keep the clusters this run created: never, on-failure or always",
			details: "A kept cluster stays up after the run, its kubeconfig in the work directory, to look at what failed. A cluster the run did not create (`-clusters=kubeconfig`) is never deleted: the policy keeps or removes what the run installed on it.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Keep = r.keep(s) }},
		{flag: "reuse", env: "E2E_REUSE", def: "false", isBool: true, field: "Reuse",
			meaning: "reuse same-named clusters (and their Flux) an earlier run made from the same node image and kind config",
			details: "Without it such clusters are deleted and created again. A same-named cluster the harness did not create is never reused or deleted: the run stops and asks to delete it or to set `-cluster-prefix`. With `-clusters=kubeconfig` it re-syncs what an earlier run left installed; without it that is removed first.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Reuse = r.bool(s, false) }},
		{flag: "clusters", env: "E2E_CLUSTERS", def: "kind", field: "Clusters",
			meaning: "where the clusters come from: kind (created by the run) or kubeconfig (given, one context per environment)",
			details: "With `kubeconfig` the run creates no cluster and never deletes one: it connects to each environment's context, refuses a cluster without the opt-in label `" + cluster.AllowLabel + "=" + cluster.AllowValue + "` on its kube-system Namespace or with a Flux it did not install, and its teardown removes what it installed. See [clusters.md](clusters.md).",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Clusters = r.clusterProvider(s) }},
		{flag: "cluster-kubeconfig", env: "E2E_KUBECONFIG", defNote: "$KUBECONFIG", field: "Kubeconfig",
			meaning: "kubeconfig of `-clusters=kubeconfig`: a file, or a list of files as `$KUBECONFIG` takes",
			details: "Read only: it is never copied into artifacts, logs or a cluster. Each environment's context must be in it. The flag is not named `-kubeconfig`: e2e-framework has that one.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Kubeconfig = r.kubeconfig(s) }},
		{flag: "contexts", env: "E2E_CONTEXTS", defNote: "each environment's context is named like it", field: "Contexts",
			meaning: "kubeconfig context of each environment for `-clusters=kubeconfig`: `staging=ctx-a,production=ctx-b`",
			details: "Environments not listed use the context of their own name. Two environments may not share a context: each would remove the other's fleet.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Contexts = r.contexts(s) }},
		{flag: "servers", env: "E2E_SERVERS", defNote: "host for kind, cluster for kubeconfig", field: "Servers",
			meaning: "where the git and chart servers run: host (this machine, on the kind network) or cluster (in each cluster)",
			details: "`cluster` deploys the project's fleet server into each cluster's flux-system namespace and hands it the fleet and the charts through the API server, so a cluster with no route to this machine can sync. `host` needs the clusters to reach this machine's kind network gateway: kind clusters only.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Servers = r.serverMode(s) }},
		{flag: "server-image", env: "E2E_SERVER_IMAGE", defNote: "the kit's `FLEET_SERVER_IMAGE`", field: "ServerImage",
			meaning: "image of the in-cluster fleet server, for `-servers=cluster`",
			details: "Required for `-servers=cluster` unless the kit has one (kits built before the fleet server have none). The clusters pull it (IfNotPresent): from a registry they reach, or loaded into their nodes beforehand.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.ServerImage = r.serverImage(s) }},
		{flag: "ready-timeout", env: "E2E_TIMEOUT", def: "10m", field: "Timeout",
			meaning: "how long one environment may take to become Ready, and a re-sync to converge",
			details: "A positive duration such as 90s or 10m. The flag is not named `-timeout` so that it is not mistaken for go test's, which bounds the whole run.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Timeout = r.duration(s, defaultReadyTimeout) }},
		{flag: "pod-failure-grace", env: "E2E_POD_FAILURE_GRACE", def: "45s", field: "PodFailureGrace",
			meaning: "how long a pod may sit in ImagePullBackOff, CrashLoopBackOff and the like before the wait fails",
			details: "A positive duration. Shorter fails a broken rollout sooner; longer gives a slow image pull or a restarting pod time to recover.",
			resolve: func(_ context.Context, r *resolver, s setting) {
				r.opts.PodFailureGrace = r.duration(s, defaultPodFailureGrace)
			}},
	}
}

func kitOptions() []option {
	return []option{
		{flag: "kit", env: kitprofile.PathVar, defNote: "unset (no kit)", field: "Kit",
			meaning: "the offline kit's profile file, which `go run ./hack/kit -print` names; make sets it",
			details: "The profile carries the node image, kind config, Flux manifests, preloaded images and extra charts of a run without a registry. It is the kit's `profile.env`: `NAME=value` lines (`FLEET_NODE_IMAGE`, `FLEET_KIND_CONFIG`, …) that `go run ./hack/kit` writes; a bad line is an error naming the file and line, and so is a profile without the node image, kind config or Flux manifests (empty or truncated). Relative paths are taken from the repository root.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Kit = r.kit(s) }},
		{flag: "flux-components", env: "E2E_FLUX_COMPONENTS", defNote: "the kit's, else flux2's default four", field: "FluxComponents",
			meaning: "Flux controllers to install, comma-separated",
			details: "Names flux2 can install: source-controller, kustomize-controller, helm-controller, notification-controller and the image automation controllers. The offline kit builds only some of them.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.FluxComponents = r.fluxComponents(s) }},
		{flag: "flux-base", env: "E2E_FLUX_BASE", defNote: "unset (no Flux upgrade)", field: "FluxBase",
			meaning: "flux2 release (vX.Y.Z) to install first; the run then upgrades Flux in place to go.mod's version in an extra step, flux upgrade",
			details: "The fleet converges and passes the wait under the base Flux; then the controllers are upgraded the way `flux install` does (manifestgen, server-side apply, CRDs first) and the step proves every Kustomization and HelmRelease Ready again at the same revision, no new Helm release unless explained, no workload pod replaced, and traffic through the ingress during the roll. It must be older than go.mod's Flux. With a kit, the kit must have built that base: `go run ./hack/kit -flux-base vX.Y.Z`. `make e2e-flux-upgrade FROM=vX.Y.Z` sets it.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.FluxBase = r.fluxBase(s) }},
		{flag: "charts", env: "E2E_CHARTS", def: "fixtures/charts", defNote: "when it exists", field: "ChartDirs",
			meaning: "directories the chart server serves, each a chart or a directory of charts; the kit's extra charts are added",
			details: "Comma-separated; relative paths are taken from the repository root; each must exist.",
			resolve: func(_ context.Context, r *resolver, s setting) {
				r.opts.ChartDirs = append(r.chartDirs(s), r.opts.Kit.ExtraCharts...)
			}},
	}
}

func checkOptions() []option {
	return []option{
		{flag: "offline-checks", env: "E2E_OFFLINE_CHECKS", def: "true", isBool: true, field: "OfflineChecks",
			meaning: "run the offline tier (`harness/validate`) on the fleet before creating anything",
			details: "It builds each environment's Kustomizations as kustomize-controller would and checks the result.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.OfflineChecks = r.bool(s, true) }},
		{flag: "preflight", env: "E2E_PREFLIGHT", def: "true", isBool: true, field: "Preflight",
			meaning: "resolve and render every HelmRelease before creating clusters",
			details: "A chart that cannot be fetched or rendered, or an image it names that is missing, fails the run before any cluster exists.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.Preflight = r.bool(s, true) }},
	}
}

// trustedDirNote says why a directory on the way may be refused.
const trustedDirNote = "Refused when a directory on the way to it is another user's, or writable by every user without the sticky bit, " +
	"or by a group other than root's and your own (named after you): that user could swap what the run writes (kubeconfigs with admin credentials) for links elsewhere. " +
	"Running as root through sudo, the user who ran sudo counts as yours (so `sudo make test` works in your own checkout)."

func fileOptions() []option {
	return []option{
		{flag: "workdir", env: "E2E_WORKDIR", def: ".work", field: "WorkDir",
			meaning: "directory for kubeconfigs (`<cluster>.kubeconfig`, mode 0600) and, by default, artifacts",
			details: "Created when missing; relative paths are taken from the repository root. " + trustedDirNote,
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.WorkDir = r.dir(s, ".work") }},
		{flag: "artifacts", env: "E2E_ARTIFACTS", def: "<workdir>/artifacts", field: "ArtifactsDir",
			meaning: "directory for the diagnostics of failed environments",
			details: "Created when missing; relative paths are taken from the repository root. " + trustedDirNote,
			resolve: func(_ context.Context, r *resolver, s setting) {
				r.opts.ArtifactsDir = r.dir(s, filepath.Join(r.opts.WorkDir, "artifacts"))
			}},
		{flag: "artifacts-raw-values", env: "E2E_ARTIFACTS_RAW_VALUES", def: "false", isBool: true, field: "RawValues",
			meaning: "write HelmRelease values and post-build substitutions into artifacts and records as they are, not as digests",
			details: "Values often hold passwords, so by default each value is written as a digest.",
			resolve: func(_ context.Context, r *resolver, s setting) { r.opts.RawValues = r.bool(s, false) }},
	}
}

// defaultText is the default as -help and the docs show it.
func (o option) defaultText() string {
	switch {
	case o.def == "":
		return o.defNote
	case o.defNote == "":
		return o.def
	}
	return o.def + " (" + o.defNote + ")"
}

// lookupOption finds an option by flag name.
func lookupOption(flagName string) (option, bool) {
	all := optionTable()
	i := slices.IndexFunc(all, func(o option) bool { return o.flag == flagName })
	if i < 0 {
		return option{}, false
	}
	return all[i], true
}
