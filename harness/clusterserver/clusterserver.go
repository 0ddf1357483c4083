// Package clusterserver runs the fleet's git repository and charts inside
// the cluster, for clusters with no route to the machine that runs the
// harness: one Deployment of the project's own server (hack/fleetserver),
// which the harness hands the snapshot (a git bundle) and the packaged
// charts through the API server, by port-forward to its admin port. The
// cluster reaches it at the same Service names as the host servers' (the
// chart server's chartserver.InClusterHost, and git-server for git), with
// the chart credential Secrets made as host mode makes them.
//
// The server side and the admin protocol both ends share are in
// clusterserver/backend, which the server binary links without this
// package's Kubernetes client.
package clusterserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fluxcd/pkg/ssa"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-fleet/flux-fleet/harness/chartserver"
	"github.com/flux-fleet/flux-fleet/harness/clusterserver/backend"
	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/internal/basicauth"
	"github.com/flux-fleet/flux-fleet/harness/internal/httplog"
	"github.com/flux-fleet/flux-fleet/harness/probe"
)

// Options configures Deploy.
type Options struct {
	Image     string // the fleet server image; required
	Namespace string // default fluxobj.Namespace; created when missing
	// Credentials of git and the charts; random when empty.
	GitUser, GitPass, ChartUser, ChartPass string
	Log                                    io.Writer // what Deploy and the pushes do; nil discards
}

// Names of the objects Deploy makes.
const (
	// Name is the Deployment and its Secret (credentials and admin token).
	Name = "fleet-server"
	// GitServiceName is the Service in front of the git repository.
	GitServiceName = "git-server"
	// ManagedByLabel marks every object Deploy makes, for teardown.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "flux-fleet-harness"
	nameLabel      = "app.kubernetes.io/name"
)

// deployTimeout bounds the wait for the Deployment to be Available: an
// image pull on a real cluster included.
const deployTimeout = 3 * time.Minute

// removeTimeout bounds Remove's wait for the objects to be gone: a pod gets
// its termination grace period (the server stops within seconds).
const removeTimeout = 2 * time.Minute

// Server is a deployed fleet server.
type Server struct {
	c          *fluxobj.Clients
	opts       Options
	adminToken string
	log        *httplog.Log
	createdNS  bool

	mu       sync.Mutex
	forwards map[*probe.Forward]struct{} // port-forwards open during a push
	closed   bool
}

// Deploy applies the fleet server's Secret, Deployment and Services and the
// chart credential Secrets, every object labeled ManagedByLabel=ManagedBy,
// and waits until the Deployment is Available. A pod that cannot pull the
// image, or crashes, fails the wait at once, naming the pod and why.
func Deploy(ctx context.Context, c *fluxobj.Clients, o Options) (*Server, error) {
	if o.Image == "" {
		return nil, errors.New("fleet server: no image: set E2E_SERVER_IMAGE or build the kit (FLEET_SERVER_IMAGE)")
	}
	if o.Namespace == "" {
		o.Namespace = fluxobj.Namespace
	}
	if o.Namespace != chartserver.Namespace {
		// InClusterHost and the chart Secrets the fleet's sources name are
		// in chartserver.Namespace, which a Service elsewhere cannot serve.
		return nil, fmt.Errorf("fleet server namespace %s: the chart server's Service and Secrets must be in %s", o.Namespace, chartserver.Namespace)
	}
	if o.GitUser == "" || o.GitPass == "" {
		o.GitUser, o.GitPass = basicauth.Random("fleet-")
	}
	if o.ChartUser == "" || o.ChartPass == "" {
		o.ChartUser, o.ChartPass = basicauth.Random("charts-")
	}
	s := &Server{c: c, opts: o, adminToken: randomToken(), log: httplog.New(o.Log, "fleet-server: "), forwards: map[*probe.Forward]struct{}{}}
	created, err := ensureNamespace(ctx, c, o.Namespace)
	if err != nil {
		return nil, err
	}
	s.createdNS = created
	start := time.Now()
	objs, err := s.objects()
	if err != nil {
		return nil, err
	}
	_, err = c.Resources.ApplyAll(ctx, objs, ssa.DefaultApplyOptions())
	if err != nil {
		err = fmt.Errorf("applying the fleet server's objects in namespace %s: %w", o.Namespace, err)
	} else {
		err = s.waitAvailable(ctx)
	}
	if err != nil {
		// No Server is returned to remove them later: remove them now,
		// even when ctx has ended (an interrupt).
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
		defer cancel()
		if rerr := s.Remove(cleanup); rerr != nil {
			err = errors.Join(err, fmt.Errorf("removing the fleet server after the failure: %w", rerr))
		}
		return nil, err
	}
	s.log.Printf("%s/%s available with image %s (%.1fs)", o.Namespace, Name, o.Image, time.Since(start).Seconds())
	return s, nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// ensureNamespace creates ns when missing and says whether it did.
func ensureNamespace(ctx context.Context, c *fluxobj.Clients, ns string) (bool, error) {
	_, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err == nil {
		return false, nil
	}
	if !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{ManagedByLabel: ManagedBy}}}
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{FieldManager: fluxobj.FieldManager}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return false, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	return true, nil
}

// GitURL is the in-cluster URL of the repository.
func (s *Server) GitURL() string {
	return fmt.Sprintf("http://%s.%s.svc.cluster.local%s", GitServiceName, s.opts.Namespace, backend.RepoPath)
}

// GitCredentials are the basic-auth user and password git clients need.
func (s *Server) GitCredentials() (user, pass string) { return s.opts.GitUser, s.opts.GitPass }

// Close stops the port-forwards of pushes still running; it is idempotent
// and leaves the cluster's objects (Remove deletes them).
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for f := range s.forwards {
		f.Close()
		delete(s.forwards, f)
	}
	return nil
}
