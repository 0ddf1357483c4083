package clusterserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/clusterserver/backend"
)

// serverUID is the image's non-root user (the distroless "nonroot" uid).
const serverUID = 65532

// secretHashAnnotation on the pod template holds a digest of the Secret's
// values.
const secretHashAnnotation = "flux-fleet.io/secret-hash"

// objects are what Deploy applies, every one labeled as the harness's.
func (s *Server) objects() ([]*unstructured.Unstructured, error) {
	typed := []runtime.Object{s.secret(), s.deployment(), s.service(GitServiceName), s.service(chartserver.ServiceName)}
	var out []*unstructured.Unstructured
	for _, obj := range typed {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, fmt.Errorf("converting %T to unstructured: %w", obj, err)
		}
		u := &unstructured.Unstructured{Object: m}
		// Fields the converter fills in that an apply should not send.
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		out = append(out, u)
	}
	out = append(out, chartserver.CredentialSecrets(s.opts.ChartUser, s.opts.ChartPass)...)
	for _, u := range out {
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[ManagedByLabel] = ManagedBy
		u.SetLabels(labels)
	}
	return out, nil
}

func (s *Server) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: s.opts.Namespace, Labels: map[string]string{ManagedByLabel: ManagedBy}}
}

// secret holds every credential the server reads, so that none is in the
// Deployment's spec.
func (s *Server) secret() *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: s.meta(Name),
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{
			backend.EnvGitUser:    s.opts.GitUser,
			backend.EnvGitPass:    s.opts.GitPass,
			backend.EnvChartUser:  s.opts.ChartUser,
			backend.EnvChartPass:  s.opts.ChartPass,
			backend.EnvAdminToken: s.adminToken,
		},
	}
}

// secretHash is a SHA-256 over the Secret's values: it changes with any
// credential and reveals none.
func (s *Server) secretHash() string {
	sec := s.secret()
	keys := slices.Sorted(maps.Keys(sec.StringData))
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\x00", k, sec.StringData[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) podLabels() map[string]string {
	return map[string]string{nameLabel: Name, ManagedByLabel: ManagedBy}
}

func (s *Server) deployment() *appsv1.Deployment {
	env := []corev1.EnvVar{
		{Name: backend.EnvPodIP, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		// git and the server write only here: the root filesystem is read-only.
		{Name: "TMPDIR", Value: "/tmp"},
		{Name: "HOME", Value: "/tmp"},
	}
	for _, name := range []string{backend.EnvGitUser, backend.EnvGitPass, backend.EnvChartUser, backend.EnvChartPass, backend.EnvAdminToken} {
		env = append(env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: Name}, Key: name},
		}})
	}
	container := corev1.Container{
		Name:            "server",
		Image:           s.opts.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Env:             env,
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: backend.ServePort, Protocol: corev1.ProtocolTCP},
			{Name: "admin", ContainerPort: backend.AdminPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: backend.HealthzPath, Port: intstr.FromInt32(backend.AdminPort)}},
			PeriodSeconds: 1,
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			// The chart set is held in memory a few times over (MaxChartsBytes).
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("768Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To(int64(serverUID)),
			RunAsGroup:               ptr.To(int64(serverUID)),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: s.meta(Name),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{nameLabel: Name}},
			// The content lives in the pod: two pods would serve two contents.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: s.podLabels(), Annotations: map[string]string{
					// The server reads the Secret once, at start: new
					// credentials (a reused cluster) must start a new pod.
					secretHashAnnotation: s.secretHash(),
				}},
				Spec: corev1.PodSpec{
					Containers:                   []corev1.Container{container},
					AutomountServiceAccountToken: ptr.To(false), // it never calls the API server
					EnableServiceLinks:           ptr.To(false),
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{
						EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("2Gi"))},
					}}},
				},
			},
		},
	}
}

// service fronts ServePort at port 80, so the URLs carry no port.
func (s *Server) service(name string) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: s.meta(name),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{nameLabel: Name},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http"),
			}},
		},
	}
}
