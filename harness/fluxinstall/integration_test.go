package fluxinstall

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/cluster"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/internal/kindtest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestInstallKind(t *testing.T) {
	kit := kindtest.Require(t, kindtest.FluxManifestsVar, kindtest.PreloadImagesVar)
	c := kit.FluxCluster(t, "hx-flux")
	manifests := kit.FluxManifests
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	opts := Options{
		Components:   kit.FluxComponents,
		ManifestsDir: manifests,
		ExtraCRDsDir: filepath.Join(manifests, "extra-crds"),
		// As the harness installs Flux.
		ReadinessProbePeriod: time.Second,
		ClusterName:          c.Name,
		Out:                  cluster.LogfWriter(t.Logf),
	}
	fc, err := fluxobj.NewClients(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	installCtx, cancelInstall := context.WithTimeout(ctx, 3*time.Minute)
	first, err := Install(installCtx, fc, opts)
	cancelInstall()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := FluxVersion(); first.Version != want {
		t.Errorf("installed version %q, want %q", first.Version, want)
	}
	if first.Changed != first.Objects {
		t.Errorf("first install changed %d of %d objects", first.Changed, first.Objects)
	}

	kc, err := client.New(c.RESTConfig, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range opts.Components {
		var d appsv1.Deployment
		if err := kc.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		if !deploymentAvailable(&d) {
			t.Errorf("Deployment %s not Available: %+v", name, d.Status.Conditions)
		}
		if p := d.Spec.Template.Spec.Containers[0].ReadinessProbe; p == nil || p.PeriodSeconds != 1 {
			t.Errorf("Deployment %s: readiness probe %+v, want periodSeconds 1 (Options.ReadinessProbePeriod)", name, p)
		}
		if got, want := first.Images[name], []string{d.Spec.Template.Spec.Containers[0].Image}; !slices.Equal(got, want) {
			t.Errorf("Result.Images[%s] = %v, want the Deployment's %v", name, got, want)
		}
	}
	running, err := RunningImages(ctx, kc, "flux-system", opts.Components)
	if err != nil {
		t.Fatal(err)
	}
	if m := ImageMismatches(first.Images, running); len(m) > 0 {
		t.Errorf("after the install, the controllers' pods do not run the manifests' images: %v", m)
	}
	for _, crd := range []string{
		"kustomizations.kustomize.toolkit.fluxcd.io",
		"gitrepositories.source.toolkit.fluxcd.io",
		"helmreleases.helm.toolkit.fluxcd.io",   // from helm-controller's manifests
		"alerts.notification.toolkit.fluxcd.io", // from the extra CRDs
	} {
		if !crdEstablished(ctx, t, kc, crd) {
			t.Errorf("CRD %s is not Established", crd)
		}
	}

	// A second install changes nothing and only re-checks readiness.
	second, err := Install(ctx, fc, opts)
	if err != nil {
		t.Fatalf("second install: %v", err)
	}
	if second.Objects != first.Objects || second.Changed != 0 {
		t.Errorf("second install: %d objects, %d changed; want %d objects, 0 changed", second.Objects, second.Changed, first.Objects)
	}
	t.Logf("idempotent re-install in %s", second.Total.Round(100*time.Millisecond))

	t.Run("missing image fails fast with the pull reason", func(t *testing.T) {
		testMissingImage(ctx, t, fc)
	})
}

// testMissingImage installs a controller whose image is not on the node, in
// its own namespace, and expects the error to name the Deployment and the
// image pull failure well before the context ends.
func testMissingImage(ctx context.Context, t *testing.T, fc *fluxobj.Clients) {
	base := t.TempDir()
	if err := copyDir("testdata/base", base); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(base, "source-controller.yaml")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Keep only the ServiceAccount and Deployment: re-applying the stand-in
	// CRD would overwrite the real one.
	docs := strings.Split(string(data), "\n---\n")
	kept := strings.Join(docs[1:], "\n---\n")
	kept = strings.ReplaceAll(kept, "fluxcd/source-controller:v1.9.5", "fluxcd/source-controller:v0.0.0-not-loaded")
	if err := os.WriteFile(p, []byte(kept), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	_, err = Install(ctx, fc, Options{
		Components:   []string{"source-controller"},
		ManifestsDir: base,
		Namespace:    "hx-broken",
		ClusterName:  "hx-flux",
	})
	took := time.Since(start)
	if err == nil {
		t.Fatal("install with a missing image succeeded")
	}
	t.Logf("failed after %s: %v", took.Round(100*time.Millisecond), err)
	msg := err.Error()
	for _, want := range []string{"hx-broken/source-controller", "v0.0.0-not-loaded"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if !strings.Contains(msg, "ErrImagePull") && !strings.Contains(msg, "ImagePullBackOff") {
		t.Error("error lacks the image pull reason")
	}
	if ctx.Err() != nil {
		t.Error("did not fail before the context ended")
	}
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func crdEstablished(ctx context.Context, t *testing.T, kc client.Client, name string) bool {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiextensions.k8s.io/v1")
	u.SetKind("CustomResourceDefinition")
	if err := kc.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
		t.Errorf("getting CRD %s: %v", name, err)
		return false
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
