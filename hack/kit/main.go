// Command kit builds the offline kit: every image and manifest the
// kind-based tests need, from the Go module proxy and Debian packages only,
// and the profile (profile.env in the kit directory) that tells the harness
// which ones to use.
//
//	go run ./hack/kit                    build what is missing, print each stage's time
//	go run ./hack/kit -flux-base v2.8.0  also build that flux2 release's controllers and manifests
//	go run ./hack/kit -print             print the profile's path only (nothing is built)
//	go run ./hack/kit -hash              print the kit's content hash only (nothing is built)
//
// A base Flux, once built, stays in the profile of later runs without
// -flux-base as long as it is still current (its hashes found in the kit).
//
// This command owns the orchestration — the stage table, its two lanes,
// hashes, freshness, the lock, the profile — and hack/kit/recipes.sh the
// shell that builds one artifact (debootstrap, go build, docker). Every
// artifact is keyed by a hash of its inputs (see stages.go): a run with
// everything present only computes hashes and inspects images. Runs
// sharing a kit directory take turns on the lock file .lock in it, saying
// whom they wait for.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command; it returns the exit status: 0 built, 1 failed,
// 2 usage, 128+signal when stopped by SIGINT, SIGTERM or SIGHUP.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	printPath := fs.Bool("print", false, "print the profile's path and exit, building nothing")
	hashOnly := fs.Bool("hash", false, "print the kit's content hash (the cache key of the kit directory and images) and exit, building nothing")
	fluxBase := fs.String("flux-base", "", "also build the controllers and manifests of this flux2 release (e.g. v2.8.0), for upgrade tests")
	recipeTimeout := fs.Duration("recipe-timeout", 90*time.Minute, "bound of one recipe (a cold Kubernetes build on 2 cores takes about 20 min)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kit: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := checkFluxVersion(*fluxBase); err != nil {
		fmt.Fprintln(stderr, "kit: -flux-base:", err)
		return 2
	}
	if *printPath {
		path, err := kitprofile.ProfilePath()
		if err != nil {
			fmt.Fprintln(stderr, "kit:", err)
			return 1
		}
		fmt.Fprintln(stdout, path)
		return 0
	}

	ctx, stop := stopOnSignals(context.Background())
	defer stop()
	log := newLogger(stderr)
	opts := options{recipeTimeout: *recipeTimeout, fluxBase: *fluxBase, hashOnly: *hashOnly}
	b, err := newBuilder(ctx, log, opts)
	if err == nil && *hashOnly {
		var h string
		if h, err = b.contentHash(ctx); err == nil {
			fmt.Fprintln(stdout, h)
		}
	} else if err == nil {
		err = b.build(ctx)
	}
	return exitStatus(ctx, err, log)
}

// options are what the command line asks of a build.
type options struct {
	recipeTimeout time.Duration
	// fluxBase is the flux2 release to build as the base Flux, "" for none.
	fluxBase string
	// hashOnly computes the hashes without building, taking the lock or
	// asking Docker: every artifact counts as present.
	hashOnly bool
}

// stopSignals are the signals that stop a build: SIGHUP too, since a
// closed terminal must not leave the recipes running on their own.
func stopSignals() []os.Signal {
	return []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}
}

// stopOnSignals returns a context that any of stopSignals() cancels with
// interrupted, and the function that stops listening.
func stopOnSignals(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopSignals()...)
	go func() {
		select {
		case sig := <-sigs:
			cancel(interrupted{sig.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel(nil)
	}
}

// exitStatus logs how the build ended and returns the command's status.
func exitStatus(ctx context.Context, err error, log *logger) int {
	in := interrupted{}
	stopped := errors.As(context.Cause(ctx), &in)
	switch {
	case err != nil:
		log.printf("ERROR: %v", err)
	case stopped:
		log.printf("ERROR: %v", in)
	}
	switch {
	case stopped:
		return 128 + int(in.sig)
	case err != nil:
		return 1
	}
	return 0
}

// newBuilder reads what every hash needs (recipes.sh, versions.env, the Go
// version) and prepares the kit directory.
func newBuilder(ctx context.Context, log *logger, opts options) (*builder, error) {
	repo, err := findRepo()
	if err != nil {
		return nil, err
	}
	kitDir, err := kitprofile.DefaultDir()
	if err != nil {
		return nil, err
	}
	versions, err := kitprofile.ReadVersions(repo)
	if err != nil {
		return nil, err
	}
	recipesPath := filepath.Join(repo, "hack", "kit", "recipes.sh")
	raw, err := os.ReadFile(recipesPath)
	if err != nil {
		return nil, fmt.Errorf("reading the kit's recipes: %w", err)
	}
	recipes, err := parseRecipes(recipesPath, raw)
	if err != nil {
		return nil, err
	}
	suite, err := lookup(versions, "DEBIAN_SUITE")
	if err != nil {
		return nil, err
	}
	k8s, err := lookup(versions, "KUBERNETES_VERSION")
	if err != nil {
		return nil, err
	}
	b := &builder{
		repo:        repo,
		kitDir:      kitDir,
		pid:         os.Getpid(),
		log:         log,
		artifacts:   map[string]artifact{},
		hashes:      map[string]string{},
		debianImage: "fleet-kit/debian:" + suite,
		gitImage:    "fleet-kit/debian-git:" + suite,
		k8sVersion:  k8s,
		hashOnly:    opts.hashOnly,
		fresh:       fresh,
	}
	b.base.version = opts.fluxBase
	b.env = kitEnv(os.Environ(), kitDir, b.debianImage, versions)
	b.run = &runner{repo: repo, script: recipesPath, env: b.env, log: log, timeout: opts.recipeTimeout, grace: stopGrace}
	goVersion, err := goCmd(ctx, repo, b.env, "env", "GOVERSION")
	if err != nil {
		return nil, fmt.Errorf("reading the Go version: %w", err)
	}
	b.src = &source{recipes: recipes, versions: versions, goVersion: strings.TrimSpace(goVersion)}
	for _, s := range append(stages(), fluxBaseStages()...) {
		for _, a := range s.artifacts {
			b.artifacts[a.name] = a
		}
	}
	return b, nil
}

// findRepo returns the repository root: the nearest directory, from the
// working directory up, holding hack/kit/recipes.sh.
func findRepo() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "hack", "kit", "recipes.sh")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("run the kit inside the flux-fleet repository: no hack/kit/recipes.sh in %s or above", wd)
		}
	}
}

// build takes the lock and, holding it, runs the stages, writes the kind
// config and the profile, and then removes what this build superseded. A
// base Flux asked for is resolved first, so that a version the module proxy
// lacks fails in seconds, before anything is built; without one, the base
// the current profile names is resolved to be kept.
func (b *builder) build(ctx context.Context) error {
	if b.base.version != "" {
		if err := b.resolveBase(ctx); err != nil {
			return err
		}
	} else {
		b.keepBase(ctx)
	}
	if err := os.MkdirAll(b.kitDir, 0o755); err != nil {
		return fmt.Errorf("creating the kit directory %s: %w", b.kitDir, err)
	}
	return b.holdingLock(ctx, func() error { return b.runStages(ctx) })
}

// plan is the stages this run goes through: the kit's, with the base
// Flux's after the current Flux's when there is a base to build or keep.
func (b *builder) plan() []stage {
	var out []stage
	for _, s := range stages() {
		out = append(out, s)
		if s.name == "flux-manifests" && b.base.release != nil {
			out = append(out, fluxBaseStages()...)
		}
	}
	return out
}

// holdingLock runs fn holding the kit directory's lock, which every recipe
// inherits so that it stays held until the last process of this build
// exits. Holding it proves every earlier build gone, so what they left
// unfinished is removed first; what this build left unfinished is removed
// before the lock goes, since the next build may then write the same paths.
func (b *builder) holdingLock(ctx context.Context, fn func() error) error {
	lock, err := acquireLock(ctx, filepath.Join(b.kitDir, ".lock"), holderLine(b.pid, time.Now(), b.repo), b.log)
	if err != nil {
		return err
	}
	defer lock.release()
	b.run.lock = lock.f
	defer func() { b.run.lock = nil }()
	if err := removeDeadPartials(b.kitDir); err != nil {
		b.log.printf("removing the unfinished outputs of builds that died: %v", err)
	}
	defer func() {
		if err := removePartials(b.kitDir, b.pid); err != nil {
			b.log.printf("removing this run's unfinished outputs: %v", err)
		}
	}()
	return fn()
}

// runStages is the build proper, run holding the lock.
func (b *builder) runStages(ctx context.Context) error {
	start := time.Now()
	// Read before the stages, while the lock keeps the profile this kit's
	// own: its images are the only ones a build may remove.
	prev := b.previousImages()
	timings, err := runPlan(ctx, b, b.plan())
	if err != nil {
		return err
	}

	profile, err := b.writeProfile()
	if err != nil {
		return fmt.Errorf("stage profile: %w", err)
	}
	for _, remove := range b.afterProfile {
		remove(ctx)
	}
	b.removeSupersededImages(ctx, prev)
	// Rebuilt images leave their predecessors untagged: drop those of the kit.
	pruneUntagged(ctx, b.log)

	b.log.printf("stage timings:")
	b.log.raw(timingTable(timings))
	b.log.printf("kit ready in %s; profile: %s", time.Since(start).Round(time.Second), profile)
	return nil
}

// writeProfile writes the kind config and profile.env, and reads the
// profile back as the harness will.
func (b *builder) writeProfile() (string, error) {
	kindConfigPath := filepath.Join(b.kitDir, "kind-config.yaml")
	if err := kitprofile.WriteFileAtomic(kindConfigPath, kindConfig(b.out.nodeImage)); err != nil {
		return "", err
	}
	p := kitprofile.Profile{
		NodeImage:      b.out.nodeImage,
		NodeImageBare:  b.out.nodeBare,
		KindConfigPath: kindConfigPath,
		FluxManifests:  b.out.fluxManifests,
		FluxComponents: fluxControllers(),
		PreloadImages:  b.bakedImages(),
		ExtraCharts:    []string{b.out.podinfoChart},
		// The server image is not among PreloadImages: clusters the harness
		// did not create lack it anyway, so the harness loads or pulls it.
		FleetServerImage: b.out.serverImage,
		BaseFlux:         b.out.base,
	}
	path := filepath.Join(b.kitDir, kitprofile.ProfileFile)
	if err := p.Write(path); err != nil {
		return "", err
	}
	if _, err := kitprofile.Load(path); err != nil {
		return "", fmt.Errorf("the profile just written does not load: %w", err)
	}
	return path, nil
}

// kitImages are the images of a profile that a later build replaces and
// then removes: the node images and the fleet server image.
type kitImages struct{ node, nodeBare, server string }

// previousImages reads the images this kit directory's profile names
// before this build replaces it. No profile yet names none; neither does
// an unreadable one (said in the log), so that nothing goes that this kit
// cannot show it recorded.
func (b *builder) previousImages() kitImages {
	path := filepath.Join(b.kitDir, kitprofile.ProfileFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return kitImages{}
	}
	p, err := kitprofile.Load(path)
	if err != nil {
		b.log.printf("no superseded image will be removed: reading this kit's previous profile: %v", err)
		return kitImages{}
	}
	return kitImages{node: p.NodeImage, nodeBare: p.NodeImageBare, server: p.FleetServerImage}
}

// removeSupersededImages removes the images of prev, the previous profile,
// that the profile just written replaced; never one it still names. The
// preloaded node image goes before the bare one it is built from.
func (b *builder) removeSupersededImages(ctx context.Context, prev kitImages) {
	removeSuperseded(ctx, b.log, prev.node, b.out.nodeImage)
	removeSuperseded(ctx, b.log, prev.nodeBare, b.out.nodeBare)
	removeSuperseded(ctx, b.log, prev.server, b.out.serverImage)
}

// contentHash hashes every artifact of the run's stages without building
// anything, taking the lock or asking Docker, and returns the kit's content
// hash (kitHash). The base Flux counts only when asked for with -flux-base.
func (b *builder) contentHash(ctx context.Context) (string, error) {
	if b.base.version != "" {
		if err := b.resolveBase(ctx); err != nil {
			return "", err
		}
	}
	for _, s := range b.plan() {
		if s.name == "docker-engine" {
			continue
		}
		if err := s.run(b, ctx); err != nil {
			return "", fmt.Errorf("stage %s: %w", s.name, err)
		}
	}
	return kitHash(b.hashes), nil
}
