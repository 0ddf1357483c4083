// Command kit builds the offline kit: every image and manifest the
// kind-based tests need, from the Go module proxy and Debian packages only,
// and the profile (profile.env in the kit directory) that tells the harness
// which ones to use.
//
//	go run ./hack/kit            build what is missing, print each stage's time
//	go run ./hack/kit -print     print the profile's path only (nothing is built)
//
// This command owns the orchestration — the stage table, hashes, freshness,
// the lock, the profile — and hack/kit/recipes.sh the shell that builds one
// artifact (debootstrap, go build, docker). Every artifact is keyed by a
// hash of its inputs (see stages.go): a run with everything present only
// computes hashes and inspects images. Runs sharing a kit directory take
// turns on the lock file .lock in it, saying whom they wait for.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	recipeTimeout := fs.Duration("recipe-timeout", 90*time.Minute, "bound of one recipe (a cold Kubernetes build on 2 cores takes about 20 min)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kit: unexpected arguments %q\n", fs.Args())
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
	b, err := newBuilder(ctx, log, *recipeTimeout)
	if err == nil {
		err = b.build(ctx)
	}
	return exitStatus(ctx, err, log)
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
func newBuilder(ctx context.Context, log *logger, recipeTimeout time.Duration) (*builder, error) {
	repo, err := findRepo()
	if err != nil {
		return nil, err
	}
	kitDir, err := kitprofile.DefaultDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(kitDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the kit directory: %w", err)
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
		k8sVersion:  k8s,
	}
	b.env = kitEnv(os.Environ(), kitDir, b.debianImage, versions)
	b.run = &runner{repo: repo, script: recipesPath, env: b.env, log: log, timeout: recipeTimeout, grace: stopGrace}
	goVersion, err := goCmd(ctx, repo, b.env, "env", "GOVERSION")
	if err != nil {
		return nil, fmt.Errorf("reading the Go version: %w", err)
	}
	b.src = &source{recipes: recipes, versions: versions, goVersion: strings.TrimSpace(goVersion)}
	for _, s := range stages() {
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
// config and the profile, and then removes what this build superseded.
func (b *builder) build(ctx context.Context) error {
	return b.holdingLock(ctx, func() error { return b.runStages(ctx) })
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
	var timings []timing
	for _, s := range stages() {
		t0 := time.Now()
		if err := s.run(b, ctx); err != nil {
			return fmt.Errorf("stage %s: %w", s.name, err)
		}
		timings = append(timings, timing{s.name, time.Since(t0)})
	}

	profile, err := b.writeProfile()
	if err != nil {
		return fmt.Errorf("stage profile: %w", err)
	}
	for _, remove := range b.afterProfile {
		remove(ctx)
	}
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
