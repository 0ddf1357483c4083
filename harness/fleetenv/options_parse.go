package fleetenv

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fluxcd/flux2/v2/pkg/manifestgen/install"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

const (
	defaultReadyTimeout    = 10 * time.Minute
	defaultPodFailureGrace = 45 * time.Second
	defaultEnvs            = "staging,production"
	// revisionLookupTimeout bounds the git lookup of -revision or -base: a
	// local repository answers at once, and a hung git must not hold the
	// run before it has started.
	revisionLookupTimeout = 30 * time.Second
)

// setting is one option as it was given: by its flag, by its variable, or
// not at all.
type setting struct {
	name     string // "-envs" when the flag was given, else the variable
	raw      string // as given; "" when not given
	def      string // the default as the docs show it
	fromFlag bool
}

// value is the setting without surrounding whitespace; "" means unset.
func (s setting) value() string { return strings.TrimSpace(s.raw) }

func (s setting) set() bool { return s.value() != "" }

// or is the value, or def when unset.
func (s setting) or(def string) string {
	if s.set() {
		return s.value()
	}
	return def
}

// String names the flag or variable and its value as errors show it.
func (s setting) String() string {
	if s.raw == "" {
		return fmt.Sprintf("%s (unset, default %q)", s.name, s.def)
	}
	return fmt.Sprintf("%s=%q", s.name, s.raw)
}

// resolver fills Options from the settings and collects every problem.
type resolver struct {
	root     string
	settings map[string]setting // by flag name, all read before any is checked
	opts     Options
	fleetOK  bool // FleetDir has the fleet layout, so its environments can be looked up
	errs     []error
	// loadedKit is the profile -kit names, read once (loadKit).
	loadedKit *loadedKit
	// kubeContexts are the contexts of the kubeconfig files, sorted.
	kubeContexts []string
	// lookupEnv reads variables that are no option's own ($KUBECONFIG).
	lookupEnv func(string) (string, bool)
}

// newResolver reads every option's setting: the flag when fs holds it and
// it was given, else the variable.
func newResolver(root string, fs *flag.FlagSet, lookupEnv func(string) (string, bool)) *resolver {
	given := map[string]string{}
	if fs != nil {
		fs.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })
	}
	r := &resolver{root: root, settings: map[string]setting{}, opts: Options{Root: root}, lookupEnv: lookupEnv}
	for _, opt := range optionTable() {
		s := setting{name: opt.env, def: opt.defaultText()}
		if v, ok := given[opt.flag]; ok {
			s.name, s.raw, s.fromFlag = "-"+opt.flag, v, true
		} else if v, ok := lookupEnv(opt.env); ok {
			s.raw = v
		}
		r.settings[opt.flag] = s
	}
	return r
}

func (r *resolver) add(err error) {
	if err != nil {
		r.errs = append(r.errs, err)
	}
}

func (r *resolver) failf(s setting, format string, args ...any) {
	r.add(fmt.Errorf("%s: %s", s, fmt.Sprintf(format, args...)))
}

// checkWhitespace reports surrounding whitespace, which the value is then
// checked without, so that every other problem shows too.
func (r *resolver) checkWhitespace(s setting) {
	switch {
	case s.raw == strings.TrimSpace(s.raw):
	case s.fromFlag:
		r.failf(s, "leading or trailing whitespace: remove it")
	default:
		r.failf(s, "leading or trailing whitespace (env files often carry it unseen): remove it")
	}
}

func (r *resolver) bool(s setting, def bool) bool {
	b, err := strconv.ParseBool(s.or(strconv.FormatBool(def)))
	if err != nil {
		r.failf(s, "not a boolean: want true or false")
		return def
	}
	return b
}

// durationSyntax is what time.ParseDuration reads. It says "invalid
// duration" for bad syntax and overflow alike: a value of this form it
// refuses is out of range.
var durationSyntax = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// maxDuration is the longest duration, in whole seconds.
var maxDuration = time.Duration(math.MaxInt64).Truncate(time.Second)

func (r *resolver) duration(s setting, def time.Duration) time.Duration {
	v := s.or(def.String())
	d, err := time.ParseDuration(v)
	switch {
	case err != nil && durationSyntax.MatchString(v):
		r.failf(s, "out of range: want at most %s, such as 10m", maxDuration)
		return def
	case err != nil:
		r.failf(s, "not a duration: want a number with a unit, such as 10m or 90s")
		return def
	case d <= 0:
		r.failf(s, "not positive: want a duration above zero, such as 10m")
		return def
	}
	return d
}

func (r *resolver) keep(s setting) cluster.KeepPolicy {
	k, err := cluster.ParseKeepPolicy(s.or("on-failure"))
	if err != nil {
		r.failf(s, "unknown keep policy: want never, on-failure or always")
		return cluster.KeepOnFailure
	}
	return k
}

// dir reads a directory the run creates when missing; something else in
// its place is an error. def is relative to the root, or absolute.
func (r *resolver) dir(s setting, def string) string {
	dir := absFrom(r.root, s.or(def))
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		r.failf(s, "%s exists and is not a directory", dir)
	}
	// Kubeconfigs and artifacts are written by path: nobody the run does
	// not trust may control a directory on the way.
	if err := privatefile.CurrentTrust().CheckTrusted(dir); err != nil {
		r.failf(s, "%v", err)
	}
	return dir
}

// fleetDir reads the fleet, which must hold the fleet layout; ok reports
// whether it does, so that its environments can be looked up.
func (r *resolver) fleetDir(s setting) (dir string, ok bool) {
	dir = absFrom(r.root, s.or("."))
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		r.failf(s, "fleet directory %s does not exist", dir)
	case err != nil:
		r.failf(s, "reading fleet directory %s: %v", dir, err)
	case !fi.IsDir():
		r.failf(s, "fleet %s is not a directory", dir)
	default:
		if fi, err := os.Stat(filepath.Join(dir, "clusters")); err != nil || !fi.IsDir() {
			r.failf(s, "fleet directory %s has no clusters/ directory (want the layout clusters/<env>, apps/, infrastructure/)", dir)
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

func (r *resolver) clusterPrefix(s setting) string {
	p := s.value()
	// A prefix may end in '-' or '.' ("plain-"): the environment follows.
	if p != "" && !clusterPart.MatchString(p+"x") {
		r.failf(s, "not a valid cluster name prefix: want lowercase letters, digits, '.' and '-', starting with a letter or digit")
	}
	return p
}

// envs reads the environments: names that make valid cluster names, each
// with a clusters/<env> directory in the fleet when the working tree is
// served (with a revision, treesToServe checks the revision's tree).
func (r *resolver) envs(s setting) []string {
	prefix := r.settings["cluster-prefix"]
	checkDirs := r.fleetOK && !r.settings["revision"].set()
	envs := kitprofile.List(s.or(defaultEnvs))
	if len(envs) == 0 {
		r.failf(s, "names no environment: want a comma-separated list such as staging,production")
	}
	for i, env := range envs {
		name := prefix.value() + env
		switch {
		case slices.Contains(envs[:i], env):
			r.failf(s, "environment %q is listed twice", env)
		case !clusterPart.MatchString(env):
			r.failf(s, "environment %q is not a valid cluster name part: want lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", env)
		case len(name) > maxClusterName:
			r.failf(s, "cluster name %q (%s and environment %q) is longer than %d characters, too long for kind's node host names", name, prefix.name, env, maxClusterName)
		case checkDirs:
			if fi, err := os.Stat(filepath.Join(r.opts.FleetDir, "clusters", env)); err != nil || !fi.IsDir() {
				r.failf(s, "environment %q: fleet %s has no clusters/%s directory", env, r.opts.FleetDir, env)
			}
		}
	}
	return envs
}

// revision reads a git revision of the repository that holds the fleet; one
// the repository does not have (or where the fleet is not) is an error now,
// not after the clusters were created.
func (r *resolver) revision(ctx context.Context, s setting) string {
	rev := s.value()
	if rev == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, revisionLookupTimeout)
	defer cancel()
	if _, err := gitserver.ResolveRevision(ctx, r.opts.FleetDir, rev); err != nil {
		r.failf(s, "%v", err)
	}
	return rev
}

// maxFailedRequests reads the upgrade's budget of failed requests; unset,
// -1: report only.
func (r *resolver) maxFailedRequests(s setting) int {
	if !s.set() {
		return -1
	}
	n, err := strconv.Atoi(s.value())
	if err != nil || n < 0 {
		r.failf(s, "want a number of failed requests allowed, 0 or more (unset: report only)")
		return -1
	}
	return n
}

// kit loads the offline kit's profile file; unset, no kit.
func (r *resolver) kit(s setting) kitprofile.Profile {
	if !s.set() {
		return kitprofile.Profile{}
	}
	p, err := r.loadKit()
	if err != nil {
		r.failf(s, "%v", err)
		return kitprofile.Profile{}
	}
	return p
}

// loadedKit is the outcome of loading the kit profile.
type loadedKit struct {
	profile kitprofile.Profile
	err     error
}

// loadKit loads the profile -kit names, once: -server-image, read before
// -kit, needs it too. A profile missing essentials is an error, not "no
// kit", so that a broken kit never sends the run to registries.
func (r *resolver) loadKit() (kitprofile.Profile, error) {
	if r.loadedKit == nil {
		path := absFrom(r.root, r.settings["kit"].value())
		p, err := kitprofile.Load(path)
		if err == nil {
			err = p.CheckWhole(path)
		}
		r.loadedKit = &loadedKit{p, err}
	}
	return r.loadedKit.profile, r.loadedKit.err
}

// fluxComponents reads names flux2 can install; unset, the kit's, and with
// no kit nil: flux2's default four.
func (r *resolver) fluxComponents(s setting) []string {
	if !s.set() {
		return r.opts.Kit.FluxComponents
	}
	comps := kitprofile.List(s.value())
	if len(comps) == 0 {
		r.failf(s, "names no component: want a comma-separated list such as source-controller,kustomize-controller")
	}
	defaults := install.MakeDefaultOptions()
	known := slices.Concat(defaults.Components, defaults.ComponentsExtra)
	for _, c := range comps {
		if !slices.Contains(known, c) {
			r.failf(s, "unknown Flux component %q: want some of %s", c, strings.Join(known, ", "))
		}
	}
	return comps
}

// chartDirs reads directories (each a chart or a directory of charts) that
// must exist. Unset, the project's fixtures/charts, when it exists: nobody
// asked for it, so its absence is no error.
func (r *resolver) chartDirs(s setting) []string {
	if !s.set() {
		def := filepath.Join(r.root, "fixtures", "charts")
		if fi, err := os.Stat(def); err == nil && fi.IsDir() {
			return []string{def}
		}
		return nil
	}
	list := kitprofile.List(s.value())
	if len(list) == 0 {
		r.failf(s, "names no chart directory: want a comma-separated list of directories")
	}
	var dirs []string
	for _, d := range list {
		dir := absFrom(r.root, d)
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			r.failf(s, "chart directory %s does not exist", dir)
		case err != nil:
			r.failf(s, "reading chart directory %s: %v", dir, err)
		case !fi.IsDir():
			r.failf(s, "chart directory %s is not a directory", dir)
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

// clusterProvider reads where the clusters come from.
func (r *resolver) clusterProvider(s setting) ClusterProvider {
	p := ClusterProvider(s.or(string(ProviderKind)))
	if !slices.Contains([]ClusterProvider{ProviderKind, ProviderKubeconfig}, p) {
		r.failf(s, "unknown cluster provider: want kind or kubeconfig")
		// None: the options that depend on it add no errors of their own.
		return ""
	}
	return p
}

// usesKubeconfig: the clusters come from a kubeconfig. An option that
// means nothing otherwise is an error when given, so that a forgotten
// -clusters=kubeconfig does not run on kind unnoticed.
func (r *resolver) usesKubeconfig(s setting) bool {
	if r.opts.Clusters == ProviderKubeconfig {
		return true
	}
	if s.set() && r.opts.Clusters != "" {
		r.failf(s, "applies only to -clusters=kubeconfig (E2E_CLUSTERS=kubeconfig)")
	}
	return false
}

// kubeconfig reads the kubeconfig files of -clusters=kubeconfig, by
// default $KUBECONFIG; each must be a kubeconfig, whose contexts are kept
// for contexts to check.
func (r *resolver) kubeconfig(s setting) string {
	if !r.usesKubeconfig(s) {
		return ""
	}
	value, from := s.value(), ""
	if value == "" {
		env, _ := r.lookupEnv("KUBECONFIG")
		value, from = strings.TrimSpace(env), fmt.Sprintf("$KUBECONFIG=%q ", env)
	}
	if value == "" {
		r.failf(s, "-clusters=kubeconfig needs a kubeconfig: set it here or in $KUBECONFIG")
		return ""
	}
	var files []string
	ok := true
	for _, f := range filepath.SplitList(value) {
		if f == "" {
			continue
		}
		f = absFrom(r.root, f)
		files = append(files, f)
		ok = r.kubeconfigFile(s, f) && ok
	}
	if len(files) == 0 {
		r.failf(s, "%snames no kubeconfig file: want a file, or a list of files as $KUBECONFIG takes", from)
		return ""
	}
	if !ok {
		// Its contexts cannot be checked: contexts adds no errors.
		return ""
	}
	slices.Sort(r.kubeContexts)
	r.kubeContexts = slices.Compact(r.kubeContexts)
	return strings.Join(files, string(filepath.ListSeparator))
}

// kubeconfigFile reads one kubeconfig file's contexts into r.kubeContexts,
// so that a file that is none is blamed on this option, not on -contexts.
// An error names the file, never its content.
func (r *resolver) kubeconfigFile(s setting, file string) bool {
	if fi, err := os.Stat(file); err != nil || fi.IsDir() {
		r.failf(s, "kubeconfig %s is not a readable file", file)
		return false
	}
	config, err := clientcmd.LoadFromFile(file)
	if err != nil {
		r.failf(s, "reading kubeconfig %s: %v", file, err)
		return false
	}
	for name := range config.Contexts {
		r.kubeContexts = append(r.kubeContexts, name)
	}
	return true
}

// contexts reads env=context pairs: every environment gets a context (by
// default its own name), which the kubeconfig must have.
func (r *resolver) contexts(s setting) map[string]string {
	if !r.usesKubeconfig(s) || r.opts.Kubeconfig == "" {
		return nil
	}
	contexts := map[string]string{}
	for _, pair := range kitprofile.List(s.value()) {
		env, ctx, ok := strings.Cut(pair, "=")
		switch {
		case !ok || env == "" || ctx == "":
			r.failf(s, "%q is not env=context: want a list such as staging=ctx-a,production=ctx-b", pair)
		case !slices.Contains(r.opts.Envs, env):
			r.failf(s, "environment %q is not one of the run's (%s)", env, strings.Join(r.opts.Envs, ","))
		default:
			contexts[env] = ctx
		}
	}
	known := r.kubeContexts
	byContext := map[string]string{}
	for _, env := range r.opts.Envs {
		ctx := cmp.Or(contexts[env], env)
		contexts[env] = ctx
		if other, dup := byContext[ctx]; dup {
			r.failf(s, "environments %q and %q both use context %q: each would remove the other's fleet", other, env, ctx)
		}
		byContext[ctx] = env
		if !slices.Contains(known, ctx) {
			r.failf(s, "environment %q: kubeconfig %s has no context %q (it has: %s)", env, r.opts.Kubeconfig, ctx, strings.Join(known, ", "))
		}
	}
	return contexts
}

// serverMode reads where the servers run; by default on this machine for
// kind clusters, in the cluster for the others.
func (r *resolver) serverMode(s setting) ServerMode {
	def := ServersHost
	if r.opts.Clusters == ProviderKubeconfig {
		def = ServersCluster
	}
	m := ServerMode(s.or(string(def)))
	if !slices.Contains([]ServerMode{ServersHost, ServersCluster}, m) {
		r.failf(s, "unknown server mode: want host or cluster")
		return def
	}
	return m
}

// serverImage reads the in-cluster server's image. Without it the kit's
// is used (Options.FleetServerImage); without a kit either, servers in the
// clusters have no image.
func (r *resolver) serverImage(s setting) string {
	switch {
	case s.set() && !imageRef.MatchString(s.value()):
		r.failf(s, "not an image reference: want [registry/]repository[:tag][@digest], such as fleet-kit/fleet-server:v1")
	case s.set() || r.opts.Servers != ServersCluster:
	case !r.settings["kit"].set():
		r.failf(s, "-servers=cluster needs the fleet server's image: set it, or use the offline kit (E2E_KIT), which builds one")
	default:
		r.checkKitServerImage(s)
	}
	return s.value()
}

// checkKitServerImage: with the image unset the kit's is used, and a kit
// built before it had one has none. A kit that does not load says so itself.
func (r *resolver) checkKitServerImage(s setting) {
	kit := r.settings["kit"]
	if p, err := r.loadKit(); err == nil && p.ServerImage() == "" {
		r.failf(s, "-servers=cluster needs the fleet server's image, and the kit profile %s has no %s: set it, or rebuild the kit (go run ./hack/kit), which builds one", kit, kitprofile.ServerImageVar)
	}
}

// imageRef is the characters of an image reference; the registry checks
// the rest when it is pulled.
var imageRef = regexp.MustCompile(`^[a-z0-9][a-zA-Z0-9._/:@-]*$`)
