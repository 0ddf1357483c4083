package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// stage is one row of the timing table: the artifacts it builds and the
// step that checks and builds them. Consecutive stages with a lane run as
// lanes side by side, each lane's stages in table order (runPlan); a stage
// starts once the stages of other lanes it needs are done.
type stage struct {
	name      string
	lane      string
	needs     []string
	artifacts []artifact
	run       func(*builder, context.Context) error
}

// The kit's two lanes, each long Go compiles and Docker and Debian work,
// so that one lane's waits on debootstrap, apt, tar and docker overlap the
// other's compiles. The workloads lane needs only the Debian base image of
// the other; the preloaded node image, built after both, needs all.
const (
	// kubernetesLane: the Kubernetes binaries and the node image.
	kubernetesLane = "kubernetes"
	// workloadsLane: Flux and what the fleets run.
	workloadsLane = "workloads"
)

// artifact is one thing the kit builds and keeps under its hash. Its hash
// covers the text of recipes (and of every recipes.sh function they call),
// the versions.env and recipes.sh variables that text names, the Go version,
// and, in this order: the hashes of the artifacts it comes after, a digest of
// the project files it compiles, and the values of its named inputs, which
// its stage supplies when it runs.
type artifact struct {
	name    string
	recipes []string
	after   []string
	files   []string
	inputs  []string
}

// The Flux controllers the kit builds and writes manifests for; the other
// controllers' root modules are refused by the Go module proxy.
func fluxControllers() []string {
	return []string{"source-controller", "kustomize-controller", "helm-controller"}
}

// The modules go.mod decides whose versions the kit reads.
const (
	kindModule         = "sigs.k8s.io/kind"
	flux2Module        = "github.com/fluxcd/flux2/v2"
	notificationModule = "github.com/fluxcd/notification-controller/api"
	podinfoModule      = "github.com/stefanprodan/podinfo"
)

// The workload images' tags, as the fixture fleets name them.
const (
	nginxImage = "fleet-kit/nginx:bookworm"
	redisImage = "fleet-kit/redis:bookworm"
	appImage   = "fleet-kit/fleet-app:dev"
)

// stages is the kit, in build order.
func stages() []stage {
	fluxArtifacts := make([]artifact, 0, len(fluxControllers()))
	for _, c := range fluxControllers() {
		fluxArtifacts = append(fluxArtifacts, artifact{name: "flux-controller/" + c,
			recipes: []string{"build_flux_controller_image"}, inputs: []string{"version"}})
	}
	return []stage{
		{name: "docker-engine", run: (*builder).dockerEngine},
		{name: "debian-base", lane: kubernetesLane, run: (*builder).debianBase, artifacts: []artifact{
			{name: "debian-base", recipes: []string{"build_debian_image"}},
		}},
		{name: "controlplane-images", lane: kubernetesLane, run: (*builder).controlplaneImages, artifacts: []artifact{
			{name: "bin/kubernetes", recipes: []string{"build_k8s_binaries"}},
			{name: "bin/etcd", recipes: []string{"build_etcd_binary"}},
			{name: "bin/coredns", recipes: []string{"build_coredns_binary"}},
			{name: "bin/pause", recipes: []string{"build_pause_binary"}, files: []string{"hack/kit/pause"}},
			{name: "controlplane-images", recipes: []string{"build_controlplane_images", "controlplane_images"},
				after: []string{"debian-base", "bin/kubernetes", "bin/etcd", "bin/coredns", "bin/pause"}},
		}},
		{name: "node-image", lane: kubernetesLane, run: (*builder).nodeImage, artifacts: []artifact{
			{name: "bin/crictl", recipes: []string{"build_crictl_binary"}},
			{name: "node-image", recipes: []string{"build_node_image"},
				after:  []string{"debian-base", "controlplane-images", "bin/kubernetes", "bin/crictl"},
				inputs: []string{kindModule}},
		}},
		{name: "flux-controllers", lane: workloadsLane, run: (*builder).fluxControllers, artifacts: fluxArtifacts},
		{name: "flux-manifests", lane: workloadsLane, run: (*builder).fluxManifests, artifacts: []artifact{
			{name: "flux-manifests", recipes: []string{"build_flux_manifests"}, files: []string{"hack/kit/fluxmanifests"},
				inputs: []string{flux2Module, notificationModule, "controllers"}},
		}},
		{name: "workload-images", lane: workloadsLane, needs: []string{"debian-base"}, run: (*builder).workloadImages, artifacts: []artifact{
			{name: "nginx", recipes: []string{"build_nginx_image"}, after: []string{"debian-base"}},
			{name: "redis", recipes: []string{"build_redis_image"}, after: []string{"debian-base"}},
			{name: "fleet-app", recipes: []string{"build_app_image"}, files: []string{"fixtures/app", "go.mod", "go.sum"}},
		}},
		{name: "podinfo-image", lane: workloadsLane, run: (*builder).podinfoImage, artifacts: []artifact{
			{name: "podinfo", recipes: []string{"build_podinfo_image"}, inputs: []string{"image"}},
		}},
		// Not baked into the node image: the harness must not depend on that,
		// since clusters it did not create lack the image anyway.
		{name: "fleet-server-image", lane: workloadsLane, needs: []string{"debian-base"}, run: (*builder).fleetServerImage, artifacts: []artifact{
			{name: "debian-git", recipes: []string{"build_git_image"}, after: []string{"debian-base"}},
			{name: "fleet-server", recipes: []string{"build_fleet_server_image"}, after: []string{"debian-git"},
				inputs: []string{"go sources"}},
		}},
		// The images every run needs go into the node image; the fixture app
		// does not: it changes with every edit of fixtures/app, and the
		// harness loads it (only when the node lacks that version). The
		// inputs are image IDs, not only the images' hashes: the harness
		// compares IDs, and a baked image must be exactly the one the profile
		// names.
		{name: "node-image-preloaded", run: (*builder).preloadedNodeImage, artifacts: []artifact{
			{name: "node-image-preloaded", recipes: []string{"build_preloaded_node_image"}, inputs: []string{"image IDs"}},
		}},
	}
}

// hashArtifact computes a's hash from the hashes of the artifacts it comes
// after (done), the digest of its files and the values of its inputs.
func hashArtifact(src *source, a artifact, done map[string]string, digest func([]string) (string, error), values []string) (string, error) {
	if len(values) != len(a.inputs) {
		return "", fmt.Errorf("hashing %s: %d input values for the inputs %v", a.name, len(values), a.inputs)
	}
	var inputs []input
	for _, name := range a.after {
		h, ok := done[name]
		if !ok {
			return "", fmt.Errorf("hashing %s: %s is not hashed yet (stage order)", a.name, name)
		}
		inputs = append(inputs, input{name, h})
	}
	if len(a.files) > 0 {
		d, err := digest(a.files)
		if err != nil {
			return "", fmt.Errorf("hashing %s: %w", a.name, err)
		}
		inputs = append(inputs, input{"files " + strings.Join(a.files, " "), d})
	}
	for i, name := range a.inputs {
		inputs = append(inputs, input{name, values[i]})
	}
	return src.hash(a.name, a.recipes, inputs)
}

// outputs are what the stages made that the profile names.
type outputs struct {
	nodeImage, nodeBare, fluxManifests, podinfoImage, podinfoChart, serverImage string
	fluxImages                                                                  []string
	base                                                                        kitprofile.FluxSet
}

// builder runs the stages and collects what the profile names.
type builder struct {
	repo, kitDir string
	pid          int
	src          *source
	env          []string
	run          *runner
	log          *logger
	artifacts    map[string]artifact
	hashes       map[string]string

	debianImage, gitImage string
	k8sVersion            string
	// hashOnly computes hashes only: every artifact counts as present, so
	// nothing is built and Docker is never asked.
	hashOnly bool
	// fresh tells whether images exist with a hash (the function fresh;
	// tests replace it).
	fresh func(ctx context.Context, h string, images ...string) (bool, error)
	flux  *fluxRelease // the Flux go.mod selects
	base  baseFlux
	out   outputs

	// afterProfile are the removals of what this build superseded: they run
	// once the new profile is written, never while the old one still names
	// what they remove.
	afterProfile []func(context.Context)

	// mu guards hashes and afterProfile, which the lanes share.
	mu sync.Mutex
}

// hash computes and records the hash of the named artifact.
func (b *builder) hash(name string, values ...string) (string, error) {
	return b.hashAs(name, name, values...)
}

// hashAs computes the hash of the named artifact and records it as key:
// the base Flux's controllers are hashed exactly as the current ones (the
// same image for the same version), and recorded apart from them.
func (b *builder) hashAs(key, name string, values ...string) (string, error) {
	a, ok := b.artifacts[name]
	if !ok {
		return "", fmt.Errorf("no artifact %s in the stage table", name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	h, err := hashArtifact(b.src, a, b.hashes, func(files []string) (string, error) { return hashFiles(b.repo, files) }, values)
	if err != nil {
		return "", err
	}
	b.hashes[key] = h
	return h, nil
}

// hashOf returns the recorded hash of an artifact.
func (b *builder) hashOf(key string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.hashes[key]
	return h, ok
}

// supersede queues a removal of what this build superseded, run once the
// new profile is written.
func (b *builder) supersede(remove func(context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.afterProfile = append(b.afterProfile, remove)
}

// have reports whether every image exists with the hash h; when only
// hashing, without asking Docker, they all do.
func (b *builder) have(ctx context.Context, h string, images ...string) (bool, error) {
	if b.hashOnly {
		return true, nil
	}
	return b.fresh(ctx, h, images...)
}

func (b *builder) recipe(ctx context.Context, stage, fn string, args ...string) error {
	return b.run.recipe(ctx, stage, fn, args...)
}

func (b *builder) dockerEngine(ctx context.Context) error {
	// dockerd may be started here and outlive this run: it inherits no
	// descriptor of the kit's (Go opens files close-on-exec), the lock's
	// included.
	return b.run.command(ctx, "docker-engine", nil, "hack/kit/docker-engine.sh", "bash", filepath.Join(b.repo, "hack", "kit", "docker-engine.sh"))
}

func (b *builder) debianBase(ctx context.Context) error {
	h, err := b.hash("debian-base")
	if err != nil {
		return err
	}
	if ok, err := b.have(ctx, h, b.debianImage); ok || err != nil {
		return err
	}
	b.log.printf("debootstrap into %s (cold: ~2 min)", b.debianImage)
	return b.recipe(ctx, "debian-base", "build_debian_image", h)
}

// binaries returns the directory of a binaries artifact (bin/<name>),
// building it first when it is missing.
func (b *builder) binaries(ctx context.Context, stage, name, fn string) (string, error) {
	h, ok := b.hashOf("bin/" + name)
	if !ok {
		return "", fmt.Errorf("bin/%s is not hashed yet", name)
	}
	out := filepath.Join(b.kitDir, "bin", name+"-"+h)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	b.log.printf("building %s binaries (cold: minutes)", name)
	// Built next to the final path and renamed, so that an interrupted
	// build is never mistaken for a finished one.
	partial := fmt.Sprintf("%s.partial.%d", out, b.pid)
	if err := os.RemoveAll(partial); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	if err := b.recipe(ctx, stage, fn, partial); err != nil {
		return "", fmt.Errorf("building %s binaries: %w", name, err)
	}
	if err := os.Rename(partial, out); err != nil {
		return "", fmt.Errorf("building %s binaries: %w", name, err)
	}
	// Older builds of the same binaries are superseded; never another
	// run's work in progress.
	old, _ := filepath.Glob(filepath.Join(b.kitDir, "bin", name+"-*"))
	for _, dir := range old {
		if dir != out && !strings.Contains(filepath.Base(dir), ".partial.") {
			os.RemoveAll(dir)
		}
	}
	return out, nil
}

func (b *builder) controlplaneImages(ctx context.Context) error {
	for _, bin := range []string{"bin/kubernetes", "bin/etcd", "bin/coredns", "bin/pause"} {
		if _, err := b.hash(bin); err != nil {
			return err
		}
	}
	h, err := b.hash("controlplane-images")
	if err != nil {
		return err
	}
	list, err := b.run.query(ctx, "controlplane-images", "controlplane_images")
	if err != nil {
		return err
	}
	if ok, err := b.have(ctx, h, strings.Fields(list)...); ok || err != nil {
		return err
	}
	var dirs []string
	for _, bin := range [][2]string{{"kubernetes", "build_k8s_binaries"}, {"etcd", "build_etcd_binary"}, {"coredns", "build_coredns_binary"}, {"pause", "build_pause_binary"}} {
		dir, err := b.binaries(ctx, "controlplane-images", bin[0], bin[1])
		if err != nil {
			return err
		}
		dirs = append(dirs, dir)
	}
	return b.recipe(ctx, "controlplane-images", "build_controlplane_images", append([]string{h}, dirs...)...)
}

func (b *builder) nodeImage(ctx context.Context) error {
	if _, err := b.hash("bin/crictl"); err != nil {
		return err
	}
	kind, err := moduleVersion(ctx, b.repo, b.env, kindModule)
	if err != nil {
		return err
	}
	h, err := b.hash("node-image", kind)
	if err != nil {
		return err
	}
	image := fmt.Sprintf("fleet-kit/node:%s-%s", b.k8sVersion, h)
	b.out.nodeBare = image
	if ok, err := b.have(ctx, h, image); ok || err != nil {
		return err
	}
	b.log.printf("building node image %s", image)
	k8s, err := b.binaries(ctx, "node-image", "kubernetes", "build_k8s_binaries")
	if err != nil {
		return err
	}
	crictl, err := b.binaries(ctx, "node-image", "crictl", "build_crictl_binary")
	if err != nil {
		return err
	}
	kindDir, err := moduleDir(ctx, b.repo, b.env, kindModule, kind)
	if err != nil {
		return err
	}
	if err := b.recipe(ctx, "node-image", "build_node_image", h, image, k8s, crictl, kindDir); err != nil {
		return fmt.Errorf("building %s: %w", image, err)
	}
	return nil
}

func (b *builder) fluxControllers(ctx context.Context) error {
	version, err := moduleVersion(ctx, b.repo, b.env, flux2Module)
	if err != nil {
		return err
	}
	if b.flux, err = b.readRelease(ctx, version); err != nil {
		return err
	}
	b.out.fluxImages, _, err = b.controllerImages(ctx, "flux-controllers", b.flux, "flux-controller/", true)
	return err
}

func (b *builder) fluxManifests(ctx context.Context) error {
	napi, err := moduleVersion(ctx, b.repo, b.env, notificationModule)
	if err != nil {
		return err
	}
	b.out.fluxManifests, _, err = b.manifests(ctx, "flux-manifests", b.flux, napi, true)
	return err
}

func (b *builder) workloadImages(ctx context.Context) error {
	for _, w := range []struct{ artifact, image, fn string }{
		{"nginx", nginxImage, "build_nginx_image"},
		{"redis", redisImage, "build_redis_image"},
		{"fleet-app", appImage, "build_app_image"},
	} {
		h, err := b.hash(w.artifact)
		if err != nil {
			return err
		}
		if ok, err := b.have(ctx, h, w.image); err != nil {
			return err
		} else if ok {
			continue
		}
		if err := b.recipe(ctx, "workload-images", w.fn, w.image, h); err != nil {
			return fmt.Errorf("building %s: %w", w.image, err)
		}
	}
	return nil
}

func (b *builder) podinfoImage(ctx context.Context) error {
	version, err := lookup(b.src.versions, "PODINFO_MODULE_VERSION")
	if err != nil {
		return err
	}
	dir, err := moduleDir(ctx, b.repo, b.env, podinfoModule, version)
	if err != nil {
		return err
	}
	b.out.podinfoChart = filepath.Join(dir, "charts", "podinfo")
	if b.out.podinfoImage, err = chartImage(b.out.podinfoChart); err != nil {
		return err
	}
	h, err := b.hash("podinfo", b.out.podinfoImage)
	if err != nil {
		return err
	}
	if ok, err := b.have(ctx, h, b.out.podinfoImage); ok || err != nil {
		return err
	}
	b.log.printf("building %s from %s@%s (cold: ~2 min)", b.out.podinfoImage, podinfoModule, version)
	start := time.Now()
	if err := b.recipe(ctx, "podinfo-image", "build_podinfo_image", b.out.podinfoImage, h, dir); err != nil {
		return fmt.Errorf("building %s: %w", b.out.podinfoImage, err)
	}
	b.log.printf("built %s in %s", b.out.podinfoImage, time.Since(start).Round(time.Second))
	return nil
}

// bakedImages are the images the preloaded node image carries: every image
// a run needs, the fixture app's too: loading it at every cluster start
// would sit on the Flux install's critical path, while baked in, an edit of
// the app rebuilds only the node image's top layer, once. An app image built
// some other way is still loaded, since the harness loads whatever differs
// from the local docker image.
func (b *builder) bakedImages() []string {
	return append(append([]string{}, b.out.fluxImages...), nginxImage, redisImage, appImage, b.out.podinfoImage)
}

func (b *builder) preloadedNodeImage(ctx context.Context) error {
	// Only hashing, there are no image IDs to read: the images' own hashes,
	// which the kit's content hash covers, stand for them.
	ids := []string{"image IDs are not read when only hashing"}
	if !b.hashOnly {
		ids = ids[:0]
		for _, img := range append([]string{b.out.nodeBare}, b.bakedImages()...) {
			id, err := imageID(ctx, img)
			if err != nil {
				return err
			}
			ids = append(ids, img+"="+id)
		}
	}
	h, err := b.hash("node-image-preloaded", strings.Join(ids, " "))
	if err != nil {
		return err
	}
	image := fmt.Sprintf("fleet-kit/node-preloaded:%s-%s", b.k8sVersion, h)
	b.out.nodeImage = image
	if ok, err := b.have(ctx, h, image); ok || err != nil {
		return err
	}
	b.log.printf("baking %s into %s", strings.Join(b.bakedImages(), " "), image)
	if err := b.recipe(ctx, "node-image-preloaded", "build_preloaded_node_image", append([]string{b.out.nodeBare, image, h}, b.bakedImages()...)...); err != nil {
		return fmt.Errorf("building %s: %w", image, err)
	}
	return nil
}
