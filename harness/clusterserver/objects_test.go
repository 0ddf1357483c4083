package clusterserver

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/chartserver/chartservertest"
	"github.com/flux-fleet/flux-fleet/harness/clusterserver/backend"
)

func testServer() *Server {
	return &Server{adminToken: "planted-admin-token", opts: Options{
		Image: "fleet-kit/fleet-server:test", Namespace: chartserver.Namespace,
		GitUser: "planted-git-user", GitPass: "planted-git-pass", ChartUser: "planted-chart-user", ChartPass: "planted-chart-pass",
	}}
}

func TestObjects(t *testing.T) {
	// The machine's proxy settings are the run's, not the cluster's: none
	// may reach the objects, Secrets included.
	const proxySecret = "proxy-password-7f3a"
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY"} {
		t.Setenv(v, "http://fleet:"+proxySecret+"@proxy.invalid:3128")
	}
	s := testServer()
	objs, err := s.objects()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, u := range objs {
		kinds = append(kinds, u.GetKind()+"/"+u.GetName())
		if u.GetLabels()[ManagedByLabel] != ManagedBy || u.GetNamespace() != chartserver.Namespace {
			t.Errorf("%s/%s: labels %v in namespace %q, want %s=%s in %s", u.GetKind(), u.GetName(), u.GetLabels(), u.GetNamespace(), ManagedByLabel, ManagedBy, chartserver.Namespace)
		}
		if _, ok := resources[u.GetKind()]; !ok {
			t.Errorf("Remove knows no resource for %s", u.GetKind())
		}
		b, _ := json.Marshal(u.Object)
		// Credentials only in Secrets: never in a spec that is printed.
		if u.GetKind() != "Secret" && strings.Contains(string(b), "planted-") {
			t.Errorf("%s/%s holds a credential: %s", u.GetKind(), u.GetName(), b)
		}
		if strings.Contains(string(b), proxySecret) {
			t.Errorf("%s/%s holds the machine's proxy credential: %s", u.GetKind(), u.GetName(), b)
		}
	}
	want := "Secret/fleet-server Deployment/fleet-server Service/git-server Service/chart-server Secret/chart-server-auth Secret/chart-server-pull"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("objects = %s, want %s", got, want)
	}

	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs[1].Object, &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case *d.Spec.Replicas != 1:
		t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
	case sc == nil || !*sc.ReadOnlyRootFilesystem || !*sc.RunAsNonRoot || *sc.RunAsUser != serverUID:
		t.Errorf("security context %+v, want non-root uid %d on a read-only root", sc, serverUID)
	case c.ImagePullPolicy != corev1.PullIfNotPresent:
		t.Errorf("pull policy %s, want IfNotPresent", c.ImagePullPolicy)
	case c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != backend.HealthzPath || c.ReadinessProbe.HTTPGet.Port.IntVal != backend.AdminPort:
		t.Errorf("readiness probe %+v, want %s on %d", c.ReadinessProbe, backend.HealthzPath, backend.AdminPort)
	case c.Resources.Requests.Memory().IsZero():
		t.Error("no memory request")
	}
	for _, e := range c.Env {
		if strings.HasSuffix(e.Name, "PASSWORD") || e.Name == backend.EnvAdminToken {
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != Name {
				t.Errorf("env %s is not read from Secret %s: %+v", e.Name, Name, e)
			}
		}
	}
	hash := d.Spec.Template.Annotations[secretHashAnnotation]
	other := testServer()
	other.adminToken = "another-token"
	if hash == "" || hash == other.secretHash() {
		t.Errorf("pod template annotation %s = %q: want a digest that changes with the token", secretHashAnnotation, hash)
	}
	if got := s.GitURL(); got != "http://git-server.flux-system.svc.cluster.local/fleet.git" {
		t.Errorf("GitURL = %s", got)
	}
}

func TestFatalProblem(t *testing.T) {
	waiting := func(reason string, restarts int32) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "fleet-server-abc"},
			Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "server", Image: "fleet-kit/fleet-server:test", RestartCount: restarts,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "pull access denied"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
			}}},
		}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string // "" = not fatal
	}{
		{"first pull failure may be transient", waiting("ErrImagePull", 0), ""},
		{"back-off after a failed pull", waiting("ImagePullBackOff", 0), "pod flux-system/fleet-server-abc: image fleet-kit/fleet-server:test could not be pulled (ImagePullBackOff: pull access denied): set E2E_SERVER_IMAGE"},
		{"never pull", waiting("ErrImageNeverPull", 0), "could not be pulled (ErrImageNeverPull"},
		{"crash loop", waiting("CrashLoopBackOff", 3), "pod flux-system/fleet-server-abc: container server: CrashLoopBackOff"},
		{"container creating", waiting("ContainerCreating", 0), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := fatalProblem(tc.pod)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("fatalProblem = %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("fatalProblem = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPushChartsRefusesBeforeConnecting(t *testing.T) {
	s := testServer()
	set := chartservertest.Set(t, [2]string{"app", "1.0.0"})
	tampered := set
	tampered.Entries = []chartrepo.Entry{set.Entries[0]}
	tampered.Entries[0].Archive = []byte("not the chart")
	for name, tc := range map[string]struct {
		set  chartrepo.Set
		want string
	}{
		"no index":         {chartrepo.Set{Entries: set.Entries}, "no index.yaml"},
		"archive tampered": {tampered, "is not the archive's"},
	} {
		// A nil clients bundle: any attempt to reach a cluster would panic.
		if err := s.PushCharts(t.Context(), tc.set); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PushCharts(%s) = %v, want a refusal with %q", name, err, tc.want)
		}
	}
}
