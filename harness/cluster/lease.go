package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// A cluster the harness did not create is held for one run by a Lease, as
// a kind cluster's name is by a hold file: two runs on one context (two CI
// jobs, two people on one vcluster) would otherwise remove each other's
// install. kube-system exists on every cluster and carries the opt-in.
const (
	RunLeaseNamespace = metav1.NamespaceSystem
	RunLeaseName      = "flux-fleet-run"
	// runLeaseDuration is how long a run that died keeps the cluster; a
	// live one renews every runLeaseRenew.
	runLeaseDuration = 60 * time.Second
	runLeaseRenew    = 15 * time.Second
	// holderAnnotation carries the holder's HolderInfo, for the refusal.
	holderAnnotation = "flux-fleet.io/holder"
	leaseRequestTime = 15 * time.Second
	// leaseObserveWindow is how long a Lease that looks expired is watched
	// before it is taken over: its holder, if it still runs, renews it
	// within that whatever its clock says, so a clock that runs ahead of
	// the holder's never takes a live run's cluster.
	leaseObserveWindow = runLeaseRenew + 5*time.Second
)

// runLease is a Lease this process holds, renewed until release.
type runLease struct {
	cs       kubernetes.Interface
	identity string
	stop     context.CancelFunc
	done     chan struct{}
}

// HoldExisting takes the run Lease of a cluster the harness did not
// create for the run runID, or returns a *RefusedError naming the live run
// that holds it; nothing else is changed. A Lease its holder stopped
// renewing (a killed run) is taken over once it expired. ReleaseExisting
// gives it back. workDir is the run's, for the refusal of another run.
func (c *Cluster) HoldExisting(ctx context.Context, runID, workDir string) error {
	if !c.existing {
		return fmt.Errorf("holding cluster %s by a Lease: the harness created it (its name is held instead)", c.Name)
	}
	cs, err := boundedClientset(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("holding cluster %s: %w", c.Name, err)
	}
	info := holderInfo(Spec{Name: c.Name, WorkDir: workDir}, runID, time.Now())
	lost := func(why string) {
		c.log.printf("cluster %s (context %s): %s; this run no longer holds it, and another run may now change it", c.Name, c.Context, why)
	}
	l, err := acquireLease(ctx, cs, info, leaseObserveWindow, lost)
	if err != nil {
		var held *leaseHeldError
		if errors.As(err, &held) {
			return &RefusedError{Cluster: c.Context, Server: c.RESTConfig.Host,
				Reason: "another flux-fleet run holds it (" + held.describe() + ")",
				Fix:    fmt.Sprintf("wait for that run to end (one that died frees it within %s), or use another context", runLeaseDuration)}
		}
		return fmt.Errorf("holding cluster %s (context %s) by Lease %s/%s: %w", c.Name, c.Context, RunLeaseNamespace, RunLeaseName, err)
	}
	c.mu.Lock()
	c.lease = l
	c.mu.Unlock()
	return nil
}

// ReleaseExisting stops renewing the run Lease and deletes it, when this
// run still holds it; without a Lease it does nothing.
func (c *Cluster) ReleaseExisting(ctx context.Context) error {
	c.mu.Lock()
	l := c.lease
	c.lease = nil
	c.mu.Unlock()
	if l == nil {
		return nil
	}
	l.stop()
	<-l.done
	ctx, cancel := context.WithTimeout(ctx, leaseRequestTime)
	defer cancel()
	cur, err := l.cs.CoordinationV1().Leases(RunLeaseNamespace).Get(ctx, RunLeaseName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("releasing Lease %s/%s of context %s: %w", RunLeaseNamespace, RunLeaseName, c.Context, err)
	case holderOf(cur) != l.identity:
		return nil // taken over after it expired: no longer ours to delete
	}
	pre := metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}
	err = l.cs.CoordinationV1().Leases(RunLeaseNamespace).Delete(ctx, RunLeaseName, metav1.DeleteOptions{Preconditions: &pre})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("releasing Lease %s/%s of context %s: %w", RunLeaseNamespace, RunLeaseName, c.Context, err)
	}
	return nil
}

// leaseHeldError: a live holder has the Lease.
type leaseHeldError struct {
	lease *coordinationv1.Lease
	now   time.Time
}

func (e *leaseHeldError) Error() string { return "held: " + e.describe() }

func (e *leaseHeldError) describe() string {
	who := holderOf(e.lease)
	var info HolderInfo
	if err := json.Unmarshal([]byte(e.lease.Annotations[holderAnnotation]), &info); err == nil && info.PID != 0 {
		who = info.String()
	}
	renewed := "never renewed"
	if r := e.lease.Spec.RenewTime; r != nil {
		renewed = "renewed " + e.now.Sub(r.Time).Round(time.Second).String() + " ago"
	}
	return fmt.Sprintf("Lease %s/%s, %s: %s", RunLeaseNamespace, RunLeaseName, renewed, who)
}

// acquireLease creates the run Lease, or takes over one that expired and
// stayed unrenewed for observe; a live one is a *leaseHeldError. Losing a
// race to another run is too. lost is told if the Lease is later taken.
func acquireLease(ctx context.Context, cs kubernetes.Interface, info HolderInfo, observe time.Duration, lost func(string)) (*runLease, error) {
	ctx, cancel := context.WithTimeout(ctx, leaseRequestTime+observe)
	defer cancel()
	identity := fmt.Sprintf("%s/%d/%s", info.Host, info.PID, info.RunID)
	record, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	leases := cs.CoordinationV1().Leases(RunLeaseNamespace)
	now := time.Now()
	cur, err := leases.Get(ctx, RunLeaseName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = leases.Create(ctx, newLease(identity, string(record), now), metav1.CreateOptions{})
	case err != nil:
		return nil, err
	case leaseLive(cur, now):
		return nil, &leaseHeldError{lease: cur, now: now}
	default:
		if cur, err = unrenewedFor(ctx, cs, cur, observe); err != nil {
			return nil, err
		}
		next := newLease(identity, string(record), time.Now())
		next.ObjectMeta = cur.ObjectMeta
		next.Annotations = map[string]string{holderAnnotation: string(record)}
		_, err = leases.Update(ctx, next, metav1.UpdateOptions{})
	}
	if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
		// Another run got there between the read and the write.
		if cur, gerr := leases.Get(ctx, RunLeaseName, metav1.GetOptions{}); gerr == nil {
			return nil, &leaseHeldError{lease: cur, now: time.Now()}
		}
	}
	if err != nil {
		return nil, err
	}
	return startRenewing(cs, identity, string(record), lost), nil
}

// unrenewedFor re-reads the Lease cur after observe and returns it if its
// holder did not renew it meanwhile; a renewal, or a new holder, is a
// *leaseHeldError. A Lease nobody holds is returned at once.
func unrenewedFor(ctx context.Context, cs kubernetes.Interface, cur *coordinationv1.Lease, observe time.Duration) (*coordinationv1.Lease, error) {
	if holderOf(cur) == "" {
		return cur, nil
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(observe):
	}
	again, err := cs.CoordinationV1().Leases(RunLeaseNamespace).Get(ctx, RunLeaseName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if holderOf(again) != holderOf(cur) || !renewTime(again).Equal(renewTime(cur)) {
		return nil, &leaseHeldError{lease: again, now: time.Now()}
	}
	return again, nil
}

func renewTime(l *coordinationv1.Lease) time.Time {
	if l.Spec.RenewTime == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Time
}

func newLease(identity, record string, now time.Time) *coordinationv1.Lease {
	seconds := int32(runLeaseDuration / time.Second)
	t := metav1.NewMicroTime(now)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: RunLeaseName, Namespace: RunLeaseNamespace,
			Labels:      map[string]string{ManagedByLabel: ManagedByValue},
			Annotations: map[string]string{holderAnnotation: record}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &identity, LeaseDurationSeconds: &seconds, AcquireTime: &t, RenewTime: &t},
	}
}

// leaseLive reports whether l has a holder whose last renewal has not
// expired by this host's clock; a clock ahead of the holder's may call a
// live Lease expired, which unrenewedFor then catches.
func leaseLive(l *coordinationv1.Lease, now time.Time) bool {
	if holderOf(l) == "" || l.Spec.RenewTime == nil {
		return false
	}
	d := runLeaseDuration
	if s := l.Spec.LeaseDurationSeconds; s != nil {
		d = time.Duration(*s) * time.Second
	}
	return now.Before(l.Spec.RenewTime.Add(d))
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// startRenewing renews the Lease every runLeaseRenew while it is still
// identity's, until stopped; a failed renewal is retried at the next tick,
// a deleted Lease is made again, and a Lease another run took is given up,
// with lost told once.
func startRenewing(cs kubernetes.Interface, identity, record string, lost func(string)) *runLease {
	ctx, stop := context.WithCancel(context.Background())
	l := &runLease{cs: cs, identity: identity, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(runLeaseRenew)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if why := renewLease(ctx, cs, identity, record); why != "" {
					lost(why)
					return
				}
			}
		}
	}()
	return l
}

// renewLease renews the Lease identity holds (record: its holder
// annotation); it returns why the Lease is lost, or "" (a failed request is
// only retried).
func renewLease(ctx context.Context, cs kubernetes.Interface, identity, record string) (lost string) {
	ctx, cancel := context.WithTimeout(ctx, leaseRequestTime)
	defer cancel()
	leases := cs.CoordinationV1().Leases(RunLeaseNamespace)
	cur, err := leases.Get(ctx, RunLeaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Deleted by hand: made again for this run, unless another run was quicker.
		_, err = leases.Create(ctx, newLease(identity, record, time.Now()), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Sprintf("Lease %s/%s was deleted and another run made it again", RunLeaseNamespace, RunLeaseName)
		}
		return ""
	}
	if err != nil {
		return ""
	}
	if holder := holderOf(cur); holder != identity {
		return fmt.Sprintf("Lease %s/%s was taken over by %q", RunLeaseNamespace, RunLeaseName, holder)
	}
	t := metav1.NewMicroTime(time.Now())
	cur.Spec.RenewTime = &t
	_, _ = leases.Update(ctx, cur, metav1.UpdateOptions{})
	return ""
}
