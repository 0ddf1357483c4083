package envfuncs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
)

// Options says which environments to bring up and how. OptionsFromEnv fills
// it from the documented E2E_* and FLEET_* variables.
type Options struct {
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

	// The offline profile (hack/kit/build.sh); empty on a machine with a registry.
	NodeImage        string
	KindConfig       []byte
	PreloadImages    []string
	FluxManifestsDir string
	FluxComponents   []string
}

// Offline reports whether the run uses the offline kit's Flux manifests.
func (o Options) Offline() bool { return o.FluxManifestsDir != "" }

// ClusterName is the kind cluster name of an environment.
func (o Options) ClusterName(env string) string { return o.ClusterPrefix + env }

// OptionsFromEnv reads the run configuration from environment variables.
// Relative paths are taken from root (the repository root).
func OptionsFromEnv(root string) (Options, error) {
	o := Options{
		Envs:            splitList(getenv("E2E_ENVS", "staging,production")),
		FleetDir:        absFrom(root, getenv("E2E_FLEET", ".")),
		WorkDir:         absFrom(root, getenv("E2E_WORKDIR", ".work")),
		ClusterPrefix:   os.Getenv("E2E_CLUSTER_PREFIX"),
		NodeImage:       os.Getenv("FLEET_NODE_IMAGE"),
		PreloadImages:   splitList(os.Getenv("FLEET_PRELOAD_IMAGES")),
		FluxComponents:  splitList(os.Getenv("E2E_FLUX_COMPONENTS")),
		Timeout:         10 * time.Minute,
		PodFailureGrace: 45 * time.Second,
	}
	o.ArtifactsDir = absFrom(root, getenv("E2E_ARTIFACTS", filepath.Join(o.WorkDir, "artifacts")))
	var err error
	if o.Keep, err = cluster.ParseKeepPolicy(getenv("E2E_KEEP", "on-failure")); err != nil {
		return o, fmt.Errorf("E2E_KEEP: %w", err)
	}
	if o.Reuse, err = parseBool("E2E_REUSE", getenv("E2E_REUSE", "false")); err != nil {
		return o, err
	}
	if o.Timeout, err = parseDuration("E2E_TIMEOUT", o.Timeout); err != nil {
		return o, err
	}
	if o.PodFailureGrace, err = parseDuration("E2E_POD_FAILURE_GRACE", o.PodFailureGrace); err != nil {
		return o, err
	}
	if path := os.Getenv("FLEET_KIND_CONFIG"); path != "" {
		if o.KindConfig, err = os.ReadFile(path); err != nil {
			return o, fmt.Errorf("FLEET_KIND_CONFIG: %w", err)
		}
	}
	if dir := os.Getenv("FLEET_FLUX_MANIFESTS"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "source-controller.yaml")); err != nil {
			return o, fmt.Errorf("FLEET_FLUX_MANIFESTS=%s is not an offline manifests directory (run make offline-images): %w", dir, err)
		}
		o.FluxManifestsDir = dir
		if len(o.FluxComponents) == 0 {
			// Only these two controllers can be built without a registry.
			o.FluxComponents = []string{"source-controller", "kustomize-controller"}
		}
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

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
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
