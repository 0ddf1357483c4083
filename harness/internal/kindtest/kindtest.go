// Package kindtest gives the harness's own integration tests real kind
// clusters built from the offline kit profile (the FLEET_* environment
// variables written by the kit build), through harness/cluster. It decides
// when such a test must be skipped, creates and deletes its cluster, and
// installs the Flux CRDs for tests that drive Flux objects without running
// the controllers.
package kindtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest/kindenv"
	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
	"github.com/flux-fleet/flux-fleet/harness/poll"
	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// The offline kit profile variables a test may require.
const (
	NodeImageVar     = kitprofile.NodeImageVar
	KindConfigVar    = kitprofile.KindConfigVar
	FluxManifestsVar = kitprofile.FluxManifestsVar
	PreloadImagesVar = kitprofile.PreloadImagesVar
)

// createTimeout bounds cluster creation plus image loading: two cores may be
// shared with other engineers' clusters.
const createTimeout = 6 * time.Minute

// Profile is the offline kit profile (harness/kitprofile) plus what the
// harness's own tests do with it.
type Profile struct{ kitprofile.Profile }

// Require is kindenv.Require: it skips the test, saying why, with -short,
// without a Docker engine, when the profile lacks FLEET_NODE_IMAGE,
// FLEET_KIND_CONFIG or any of vars, or when the engine lacks the node
// image; under CI=true all but -short fail the test instead.
func Require(t testing.TB, vars ...string) Profile {
	t.Helper()
	return Profile{kindenv.Require(t, vars...)}
}

// Cluster creates the kind cluster name from the profile (deleting a leftover
// of an interrupted run first), loads images into it and deletes it when the
// test ends.
func (p Profile) Cluster(t testing.TB, name string, images ...string) *cluster.Cluster {
	t.Helper()
	return p.create(t, name, false, images)
}

// FluxCluster is Cluster for tests that run Flux's controllers: it loads
// the kit's Flux images and waits for the Service network the controllers
// reach the API server through.
func (p Profile) FluxCluster(t testing.TB, name string) *cluster.Cluster {
	t.Helper()
	return p.create(t, name, true, p.FluxImages())
}

func (p Profile) create(t testing.TB, name string, serviceNetwork bool, images []string) *cluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), createTimeout)
	defer cancel()
	start := time.Now()
	c, err := cluster.Create(ctx, cluster.Spec{
		Name:           name,
		NodeImage:      p.NodeImage,
		KindConfig:     p.KindConfig,
		WorkDir:        t.TempDir(),
		PreloadImages:  images,
		ServiceNetwork: serviceNetwork,
		Log:            cluster.LogfWriter(t.Logf),
	})
	if err != nil {
		t.Fatalf("creating kind cluster %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ReportDelete(t, name, c.Delete(context.Background()))
	})
	t.Logf("kind cluster %s ready with %d images in %s", name, len(images), time.Since(start).Round(100*time.Millisecond))
	return c
}

// ReportDelete fails t for an error deleting cluster name, except when the
// Docker engine refused to remove a node container: that is the engine's
// defect, not the harness's, and is logged loudly instead.
func ReportDelete(t testing.TB, name string, err error) {
	t.Helper()
	var refused *cluster.EngineRefusedError
	switch {
	case err == nil:
	case errors.As(err, &refused):
		t.Logf("DOCKER ENGINE DEFECT (not a test failure): deleting kind cluster %s: %v", name, err)
	default:
		t.Errorf("deleting kind cluster %s: %v", name, err)
	}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// ApplyFluxCRDs creates the source- and kustomize-controller CRDs of the
// profile's Flux manifests, for tests that write Flux objects and their
// status themselves, and waits until the CRDs are Established.
func (p Profile) ApplyFluxCRDs(ctx context.Context, t testing.TB, cfg *rest.Config) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("making a client for the Flux CRDs: %v", err)
	}
	var names []string
	for _, f := range []string{"source-controller.yaml", "kustomize-controller.yaml"} {
		data, err := os.ReadFile(filepath.Join(p.FluxManifests, f))
		if err != nil {
			t.Fatalf("reading Flux manifests: %v", err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("decoding %s: %v", f, err)
			}
			if u.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if _, err := dyn.Resource(crdGVR).Create(ctx, &u, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating CRD %s: %v", u.GetName(), err)
			}
			names = append(names, u.GetName())
		}
	}
	for _, n := range names {
		spec := poll.Every(200 * time.Millisecond).Within(time.Minute).For("CRD " + n + " to be established")
		err := poll.Until(ctx, spec, func(ctx context.Context) (bool, error) {
			u, err := dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, err // not visible yet
			}
			return established(u), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Established" {
			return m["status"] == "True"
		}
	}
	return false
}

// Main is TestMain for packages whose tests use controller-runtime's client:
// without a logger, controller-runtime prints a warning with a stack trace
// to stderr once a test runs past 30s, and the tests have nothing to say
// through it.
func Main(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
