package fleetenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fluxcd/flux2/v2/pkg/manifestgen/install"

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
	// the default of OptionsFromEnv: report only.
	MaxFailedRequests int
	// Deadline is when the test binary is stopped (go test -timeout); zero
	// without one. Not read from the environment: the caller sets it.
	Deadline time.Time
}

// Offline reports whether the run uses the offline kit's Flux manifests.
func (o Options) Offline() bool { return o.Kit.Offline() }

// ClusterName is the kind cluster name of an environment.
func (o Options) ClusterName(env string) string { return o.ClusterPrefix + env }

// OptionsFromEnv reads the run configuration from environment variables.
// Relative paths are taken from root (the repository root). Every value is
// checked before anything is created, and every bad one is reported at
// once (errors.Join): each error names the variable, its value quoted and
// the reason. A value with leading or trailing whitespace is an error of
// its own: env files carry it unseen.
func OptionsFromEnv(root string) (Options, error) {
	e := &envReader{}
	kit, err := kitprofile.FromEnv()
	e.add(err)
	o := Options{Root: root, Kit: kit}
	var fleetOK bool
	o.FleetDir, fleetOK = e.fleetDir(root)
	o.ClusterPrefix = e.clusterPrefix()
	// With E2E_REVISION the working tree is not served: the revision's
	// tree is checked for clusters/<env> before any cluster (treesToServe).
	servesWorkingTree := strings.TrimSpace(os.Getenv("E2E_REVISION")) == ""
	o.Envs = e.envs(o.FleetDir, fleetOK && servesWorkingTree, o.ClusterPrefix)
	o.WorkDir = e.dir("E2E_WORKDIR", root, filepath.Join(root, ".work"))
	o.ArtifactsDir = e.dir("E2E_ARTIFACTS", root, filepath.Join(o.WorkDir, "artifacts"))
	o.Keep = e.keep()
	o.Reuse = e.bool("E2E_REUSE", false)
	o.OfflineChecks = e.bool("E2E_OFFLINE_CHECKS", true)
	o.Preflight = e.bool("E2E_PREFLIGHT", true)
	o.RawValues = e.bool("E2E_ARTIFACTS_RAW_VALUES", false)
	o.Timeout = e.duration("E2E_TIMEOUT", 10*time.Minute)
	o.PodFailureGrace = e.duration("E2E_POD_FAILURE_GRACE", 45*time.Second)
	o.FluxComponents = e.fluxComponents(kit.FluxComponents)
	o.ChartDirs = append(e.chartDirs(root), kit.ExtraCharts...)
	// upgradeOptionsFromEnv parses these three; only the whitespace is
	// checked here.
	for _, name := range []string{"E2E_REVISION", "E2E_BASE", "E2E_MAX_FAILED_REQUESTS"} {
		e.get(name, "")
	}
	o.Revision, o.Base, o.MaxFailedRequests, err = upgradeOptionsFromEnv(o.FleetDir)
	e.add(err)
	if err := errors.Join(e.errs...); err != nil {
		return Options{}, err
	}
	return o, nil
}

// setting is one variable as the environment has it.
type setting struct {
	name string
	raw  string // as set; "" when unset
	def  string // shown when unset
}

// value is the setting with surrounding whitespace removed, or def when
// that leaves nothing.
func (s setting) value() string {
	if v := strings.TrimSpace(s.raw); v != "" {
		return v
	}
	return s.def
}

func (s setting) set() bool { return strings.TrimSpace(s.raw) != "" }

// String names the variable and its value as errors show it.
func (s setting) String() string {
	if s.raw == "" {
		return fmt.Sprintf("%s (unset, default %q)", s.name, s.def)
	}
	return fmt.Sprintf("%s=%q", s.name, s.raw)
}

// envReader reads the run's variables and collects every problem.
type envReader struct {
	errs []error
}

func (e *envReader) add(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

func (e *envReader) failf(s setting, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", s, fmt.Sprintf(format, args...)))
}

// get reads name; surrounding whitespace is an error but the value is
// still checked without it, so that every other problem shows too.
func (e *envReader) get(name, def string) setting {
	s := setting{name: name, raw: os.Getenv(name), def: def}
	if s.raw != strings.TrimSpace(s.raw) {
		e.failf(s, "leading or trailing whitespace (env files often carry it unseen): remove it")
	}
	return s
}

func (e *envReader) bool(name string, def bool) bool {
	s := e.get(name, strconv.FormatBool(def))
	b, err := strconv.ParseBool(s.value())
	if err != nil {
		e.failf(s, "not a boolean: want true or false")
		return def
	}
	return b
}

func (e *envReader) duration(name string, def time.Duration) time.Duration {
	s := e.get(name, def.String())
	d, err := time.ParseDuration(s.value())
	switch {
	case err != nil:
		e.failf(s, "not a duration: want a number with a unit, such as 10m or 90s")
		return def
	case d <= 0:
		e.failf(s, "not positive: want a duration above zero, such as 10m")
		return def
	}
	return d
}

func (e *envReader) keep() cluster.KeepPolicy {
	s := e.get("E2E_KEEP", "on-failure")
	k, err := cluster.ParseKeepPolicy(s.value())
	if err != nil {
		e.failf(s, "unknown keep policy: want never, on-failure or always")
		return cluster.KeepOnFailure
	}
	return k
}

// dir reads a directory the run creates when missing; something else in
// its place is an error.
func (e *envReader) dir(name, root, def string) string {
	s := e.get(name, def)
	dir := absFrom(root, s.value())
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		e.failf(s, "%s exists and is not a directory", dir)
	}
	return dir
}

// fleetDir reads E2E_FLEET, which must hold the fleet layout; ok reports
// whether it does, so that its environments can be looked up.
func (e *envReader) fleetDir(root string) (dir string, ok bool) {
	s := e.get("E2E_FLEET", ".")
	dir = absFrom(root, s.value())
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		e.failf(s, "fleet directory %s does not exist", dir)
	case err != nil:
		e.failf(s, "reading fleet directory %s: %v", dir, err)
	case !fi.IsDir():
		e.failf(s, "fleet %s is not a directory", dir)
	default:
		if fi, err := os.Stat(filepath.Join(dir, "clusters")); err != nil || !fi.IsDir() {
			e.failf(s, "fleet directory %s has no clusters/ directory (want the layout clusters/<env>, apps/, infrastructure/)", dir)
			return dir, false
		}
		return dir, true
	}
	return dir, false
}

// clusterPart is what an environment name (and with the prefix, the whole
// cluster name) may be: kind's cluster name characters, starting and ending
// with a letter or digit since the name starts and ends node host names.
var clusterPart = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)

// maxClusterName keeps kind's node host name "<cluster>-control-plane"
// within the 63 characters a host name may have.
const maxClusterName = 63 - len("-control-plane")

func (e *envReader) clusterPrefix() string {
	s := e.get("E2E_CLUSTER_PREFIX", "")
	p := s.value()
	// A prefix may end in '-' or '.' ("plain-"): the environment follows.
	if p != "" && !clusterPart.MatchString(p+"x") {
		e.failf(s, "not a valid cluster name prefix: want lowercase letters, digits, '.' and '-', starting with a letter or digit")
	}
	return p
}

// envs reads E2E_ENVS: names that make valid cluster names, each with a
// clusters/<env> directory in the fleet (when the fleet could be read).
func (e *envReader) envs(fleetDir string, fleetOK bool, prefix string) []string {
	s := e.get("E2E_ENVS", "staging,production")
	envs := kitprofile.List(s.value())
	if len(envs) == 0 {
		e.failf(s, "names no environment: want a comma-separated list such as staging,production")
	}
	for i, env := range envs {
		switch {
		case slices.Contains(envs[:i], env):
			e.failf(s, "environment %q is listed twice", env)
		case !clusterPart.MatchString(env):
			e.failf(s, "environment %q is not a valid cluster name part: want lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", env)
		case len(prefix+env) > maxClusterName:
			e.failf(s, "cluster name %q (E2E_CLUSTER_PREFIX and environment %q) is longer than %d characters, too long for kind's node host names", prefix+env, env, maxClusterName)
		case fleetOK:
			if fi, err := os.Stat(filepath.Join(fleetDir, "clusters", env)); err != nil || !fi.IsDir() {
				e.failf(s, "environment %q: fleet %s has no clusters/%s directory", env, fleetDir, env)
			}
		}
	}
	return envs
}

// fluxComponents reads E2E_FLUX_COMPONENTS: names flux2 can install;
// unset, the kit's (def), and with no kit flux2's default four.
func (e *envReader) fluxComponents(def []string) []string {
	s := e.get("E2E_FLUX_COMPONENTS", strings.Join(def, ","))
	if !s.set() {
		return def
	}
	comps := kitprofile.List(s.value())
	if len(comps) == 0 {
		e.failf(s, "names no component: want a comma-separated list such as source-controller,kustomize-controller")
	}
	defaults := install.MakeDefaultOptions()
	known := slices.Concat(defaults.Components, defaults.ComponentsExtra)
	for _, c := range comps {
		if !slices.Contains(known, c) {
			e.failf(s, "unknown Flux component %q: want some of %s", c, strings.Join(known, ", "))
		}
	}
	return comps
}

// chartDirs reads E2E_CHARTS: directories (each a chart or a directory of
// charts) that must exist. Unset, the project's fixtures/charts, when it
// exists.
func (e *envReader) chartDirs(root string) []string {
	def := filepath.Join(root, "fixtures", "charts")
	s := e.get("E2E_CHARTS", def)
	if !s.set() {
		if fi, err := os.Stat(def); err == nil && fi.IsDir() {
			return []string{def}
		}
		return nil
	}
	list := kitprofile.List(s.value())
	if len(list) == 0 {
		e.failf(s, "names no chart directory: want a comma-separated list of directories")
	}
	var dirs []string
	for _, d := range list {
		dir := absFrom(root, d)
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			e.failf(s, "chart directory %s does not exist", dir)
		case err != nil:
			e.failf(s, "reading chart directory %s: %v", dir, err)
		case !fi.IsDir():
			e.failf(s, "chart directory %s is not a directory", dir)
		default:
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

func absFrom(root, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(root, p)
}
