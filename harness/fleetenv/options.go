package fleetenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// Options says which environments to bring up and how. OptionsFromEnv fills
// it from the documented E2E_* and FLEET_* variables.
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
	// Timeout bounds the wait for one environment to become Ready.
	Timeout time.Duration
	// PodFailureGrace is how long a pod may sit in ImagePullBackOff,
	// CrashLoopBackOff and the like before the wait fails.
	PodFailureGrace time.Duration

	// Kit is the offline profile (go run ./hack/kit); zero on a machine
	// with a registry.
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
	// the default of OptionsFromEnv: report only.
	MaxFailedRequests int
}

// Offline reports whether the run uses the offline kit's Flux manifests.
func (o Options) Offline() bool { return o.Kit.Offline() }

// ClusterName is the kind cluster name of an environment.
func (o Options) ClusterName(env string) string { return o.ClusterPrefix + env }

// OptionsFromEnv reads the run configuration from environment variables.
// Relative paths are taken from root (the repository root).
func OptionsFromEnv(root string) (Options, error) {
	kit, err := kitprofile.FromEnv()
	if err != nil {
		return Options{}, err
	}
	o := Options{
		Root:            root,
		Envs:            kitprofile.List(getenv("E2E_ENVS", "staging,production")),
		FleetDir:        absFrom(root, getenv("E2E_FLEET", ".")),
		WorkDir:         absFrom(root, getenv("E2E_WORKDIR", ".work")),
		ClusterPrefix:   os.Getenv("E2E_CLUSTER_PREFIX"),
		Kit:             kit,
		FluxComponents:  kitprofile.List(os.Getenv("E2E_FLUX_COMPONENTS")),
		Timeout:         10 * time.Minute,
		PodFailureGrace: 45 * time.Second,
	}
	if len(o.FluxComponents) == 0 {
		o.FluxComponents = kit.FluxComponents
	}
	for _, dir := range kitprofile.List(getenv("E2E_CHARTS", filepath.Join(root, "fixtures", "charts"))) {
		o.ChartDirs = append(o.ChartDirs, absFrom(root, dir))
	}
	o.ChartDirs = append(o.ChartDirs, kit.ExtraCharts...)
	o.ArtifactsDir = absFrom(root, getenv("E2E_ARTIFACTS", filepath.Join(o.WorkDir, "artifacts")))
	if o.Keep, err = cluster.ParseKeepPolicy(getenv("E2E_KEEP", "on-failure")); err != nil {
		return o, fmt.Errorf("E2E_KEEP: %w", err)
	}
	if o.Reuse, err = parseBool("E2E_REUSE", getenv("E2E_REUSE", "false")); err != nil {
		return o, err
	}
	if o.OfflineChecks, err = parseBool("E2E_OFFLINE_CHECKS", getenv("E2E_OFFLINE_CHECKS", "true")); err != nil {
		return o, err
	}
	if o.Preflight, err = parseBool("E2E_PREFLIGHT", getenv("E2E_PREFLIGHT", "true")); err != nil {
		return o, err
	}
	if o.Timeout, err = parseDuration("E2E_TIMEOUT", o.Timeout); err != nil {
		return o, err
	}
	if o.PodFailureGrace, err = parseDuration("E2E_POD_FAILURE_GRACE", o.PodFailureGrace); err != nil {
		return o, err
	}
	if o.Revision, o.Base, o.MaxFailedRequests, err = upgradeOptionsFromEnv(o.FleetDir); err != nil {
		return o, err
	}
	if len(o.Envs) == 0 {
		return o, fmt.Errorf("E2E_ENVS is empty: name at least one environment (staging, production)")
	}
	for _, env := range o.Envs {
		if _, err := os.Stat(filepath.Join(o.FleetDir, "clusters", env)); err != nil {
			return o, fmt.Errorf("environment %q: fleet %s has no clusters/%s directory", env, o.FleetDir, env)
		}
	}
	return o, nil
}

func getenv(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}

func absFrom(root, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(root, p)
}

func parseBool(key, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", key, v)
	}
	return b, nil
}

func parseDuration(key string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 10m", key, v)
	}
	return d, nil
}
