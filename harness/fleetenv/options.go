package fleetenv

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// Options says which environments to bring up and how. ResolveOptions fills
// it from the flags and E2E_* variables that optionTable declares, one row
// per option (docs/configuration.md is generated from it).
type Options struct {
	// Root is the repository root (the kit's versions, the project's charts).
	Root string
	// Envs are the environments to bring up; each is a kind cluster of the
	// same name (plus ClusterPrefix) synced to clusters/<env>.
	Envs []string
	// FleetDir is the fleet served to the clusters: a directory with the
	// apps/, infrastructure/ and clusters/ layout.
	FleetDir string
	// WorkDir holds kubeconfigs (<cluster>.kubeconfig) and, by default, artifacts.
	WorkDir string
	// ArtifactsDir receives diagnostics of failed environments.
	ArtifactsDir string
	// ClusterPrefix is put before each env name to make the cluster name.
	ClusterPrefix string
	Keep          cluster.KeepPolicy
	Reuse         bool
	// Clusters is where the environments' clusters come from: created by
	// the run (ProviderKind) or given by a kubeconfig (ProviderKubeconfig).
	Clusters ClusterProvider
	// Kubeconfig is the kubeconfig file list (as $KUBECONFIG) and Contexts
	// each environment's context in it, for ProviderKubeconfig.
	Kubeconfig string
	Contexts   map[string]string
	// Servers is where the git and chart servers run: on this machine
	// (ServersHost) or in each cluster (ServersCluster).
	Servers ServerMode
	// ServerImage is the in-cluster fleet server's image; "" = the kit's
	// (Options.FleetServerImage).
	ServerImage string
	// Timeout bounds the wait for one environment to become Ready.
	Timeout time.Duration
	// PodFailureGrace is how long a pod may sit in ImagePullBackOff,
	// CrashLoopBackOff and the like before the wait fails.
	PodFailureGrace time.Duration

	// Kit is the offline profile, loaded from the file -kit (E2E_KIT) names
	// (go run ./hack/kit -print); zero on a machine with a registry.
	Kit kitprofile.Profile
	// FluxComponents are the controllers to install; default the kit's, or
	// flux2's default four.
	FluxComponents []string
	// OfflineChecks runs the offline tier (harness/validate) on the fleet
	// before anything is created (E2E_OFFLINE_CHECKS, default true).
	OfflineChecks bool
	// Preflight resolves and renders every HelmRelease before any cluster
	// is created (E2E_PREFLIGHT, default true).
	Preflight bool
	// RawValues (E2E_ARTIFACTS_RAW_VALUES) writes HelmRelease values and
	// post-build substitutions into artifacts and records as they are;
	// by default each value is a digest, since values hold passwords.
	RawValues bool
	// ChartDirs are served by the chart server (each a chart or a directory
	// of charts): the project's fixtures/charts and the kit's extra charts.
	ChartDirs []string

	// Revision is a git revision of the repository that holds FleetDir to
	// serve instead of the working tree (E2E_REVISION): exactly what that
	// commit held. With Base it is the head of the upgrade.
	Revision string
	// Base, when set (E2E_BASE), is a git revision served first: the run
	// converges and checks it, then rolls to the head (Revision, or the
	// working tree) in an extra step, "upgrade".
	Base string
	// MaxFailedRequests fails the upgrade when more requests to the app
	// failed while the head rolled out (E2E_MAX_FAILED_REQUESTS); negative,
	// the default: report only.
	MaxFailedRequests int
	// FluxBase, when set (E2E_FLUX_BASE), is the flux2 release (vX.Y.Z) the
	// clusters get first: the fleet converges under it, then an extra step,
	// "flux upgrade", upgrades Flux in place to go.mod's version. With a kit,
	// the kit must have built that base (its FluxBase).
	FluxBase string
	// Deadline is when the test binary is stopped (go test -timeout); zero
	// without one. No option: the caller sets it.
	Deadline time.Time
}

// Offline reports whether the run uses the offline kit's Flux manifests.
func (o Options) Offline() bool { return o.Kit.Offline() }

// NeedsDocker reports whether the run needs a Docker engine: kind
// clusters do, and so do host servers, which listen on the kind network;
// a given cluster with in-cluster servers needs none.
func (o Options) NeedsDocker() bool {
	return o.Clusters == ProviderKind || o.Servers == ServersHost
}

// ClusterName is the kind cluster name of an environment.
func (o Options) ClusterName(env string) string { return o.ClusterPrefix + env }

// OptionsFromEnv reads the run configuration from the E2E_* variables
// alone: ResolveOptions without flags, for programs with flags of their own
// (hack/bench) and tests that set variables.
func OptionsFromEnv(root string) (Options, error) {
	return ResolveOptions(context.Background(), root, nil, os.LookupEnv)
}

// ResolveOptions is the one place the run configuration is read: each
// option of optionTable from its flag in fs when that was given, else from
// its variable (lookupEnv, as os.LookupEnv), else its default. fs may be
// nil; when not, it must be parsed, after RegisterFlags. Relative paths are
// taken from root (the repository root). Every value is checked before
// anything is created, and every bad one is reported at once (errors.Join):
// each error names the flag or variable, its value quoted and the reason.
func ResolveOptions(ctx context.Context, root string, fs *flag.FlagSet, lookupEnv func(string) (string, bool)) (Options, error) {
	if fs != nil && !fs.Parsed() {
		return Options{}, fmt.Errorf("resolving the run options: flag set %q is not parsed yet: call its Parse (flag.Parse) after RegisterFlags, before ResolveOptions", fs.Name())
	}
	r := newResolver(root, fs, lookupEnv)
	for _, opt := range optionTable() {
		s := r.settings[opt.flag]
		r.checkWhitespace(s)
		opt.resolve(ctx, r, s)
	}
	if err := errors.Join(r.errs...); err != nil {
		return Options{}, err
	}
	return r.opts, nil
}
