package fluxinstall

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// releaseVersion is the form of a flux2 release tag: pre-releases and
// build suffixes are left out, since manifestgen downloads releases only.
var releaseVersion = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)$`)

// CheckVersion accepts a flux2 release version as manifestgen downloads it:
// vX.Y.Z.
func CheckVersion(v string) error {
	if !releaseVersion.MatchString(v) {
		return fmt.Errorf("Flux version %q is not a flux2 release: want vX.Y.Z, such as v2.8.0", v)
	}
	return nil
}

// CompareVersions orders two versions CheckVersion accepts: negative when a
// is older than b, zero when equal, positive when newer.
func CompareVersions(a, b string) (int, error) {
	pa, err := versionParts(a)
	if err != nil {
		return 0, err
	}
	pb, err := versionParts(b)
	if err != nil {
		return 0, err
	}
	return slices.Compare(pa, pb), nil
}

func versionParts(v string) ([]int, error) {
	m := releaseVersion.FindStringSubmatch(v)
	if m == nil {
		return nil, CheckVersion(v)
	}
	parts := make([]int, 3)
	for i := range parts {
		n, err := strconv.Atoi(m[i+1])
		if err != nil {
			return nil, fmt.Errorf("Flux version %q: %w", v, err)
		}
		parts[i] = n
	}
	return parts, nil
}

// ControllerImages returns the container images of each controller
// Deployment among objs, by Deployment name: what a finished install runs.
func ControllerImages(objs []*unstructured.Unstructured) (map[string][]string, error) {
	images := map[string][]string{}
	err := eachContainer(objs, func(deployment string, c map[string]any) error {
		image, _, _ := unstructured.NestedString(c, "image")
		if image == "" {
			return fmt.Errorf("container without an image")
		}
		images[deployment] = append(images[deployment], image)
		return nil
	})
	return images, err
}

// RunningImages reads, for each controller Deployment in namespace, the
// images its live pods run (terminating pods left out), by Deployment name
// and sorted. A pod still running another image than the Deployment's
// template shows up as an extra image.
func RunningImages(ctx context.Context, c client.Client, namespace string, deployments []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, name := range deployments {
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &d); err != nil {
			return nil, fmt.Errorf("reading Deployment %s/%s: %w", namespace, name, err)
		}
		if d.Spec.Selector == nil {
			return nil, fmt.Errorf("Deployment %s/%s has no selector", namespace, name)
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("Deployment %s/%s selector: %w", namespace, name, err)
		}
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return nil, fmt.Errorf("listing the pods of Deployment %s/%s: %w", namespace, name, err)
		}
		var images []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			for _, ctr := range p.Spec.Containers {
				if !slices.Contains(images, ctr.Image) {
					images = append(images, ctr.Image)
				}
			}
		}
		slices.Sort(images)
		out[name] = images
	}
	return out, nil
}

// ImageMismatches compares the images running (RunningImages) with the
// images wanted (ControllerImages) and describes each controller that
// differs; none means every controller runs exactly the wanted images.
func ImageMismatches(want, running map[string][]string) []string {
	var names []string
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []string
	for _, name := range names {
		w := slices.Sorted(slices.Values(want[name]))
		w = slices.Compact(w)
		if got := running[name]; !slices.Equal(got, w) {
			out = append(out, fmt.Sprintf("%s runs %s, want %s", name, listOrNone(got), strings.Join(w, ", ")))
		}
	}
	return out
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "no pod"
	}
	return strings.Join(s, ", ")
}
