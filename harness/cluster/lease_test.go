package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// staleLease is a run Lease held by holder whose renewals, by this host's
// clock, ended two minutes ago.
func staleLease(holder string) *coordinationv1.Lease {
	renewed := metav1.NewMicroTime(time.Now().Add(-2 * time.Minute))
	seconds := int32(60)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: RunLeaseName, Namespace: RunLeaseNamespace},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &renewed},
	}
}

func getLease(t *testing.T, cs kubernetes.Interface) *coordinationv1.Lease {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(RunLeaseNamespace).Get(t.Context(), RunLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the run Lease: %v", err)
	}
	return l
}

// TestAcquireLeaseWatchesAnExpiredOne: a Lease that looks expired is taken
// over only if its holder does not renew it while it is watched. A holder
// whose clock is behind this host's still renews, and keeps it. The renewal
// lands between the first read and the re-read, whatever the machine's load.
func TestAcquireLeaseWatchesAnExpiredOne(t *testing.T) {
	info := HolderInfo{PID: 7, Host: "this-host", RunID: "run-1"}
	for _, renewing := range []bool{true, false} {
		cs := fake.NewClientset(staleLease("slow-clock-host/1/live-run"))
		reads := 0
		cs.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if reads++; reads == 2 && renewing {
				// The holder's clock runs 90 s behind: its renewal still looks old.
				l := staleLease("slow-clock-host/1/live-run")
				renewed := metav1.NewMicroTime(time.Now().Add(-90 * time.Second))
				l.Spec.RenewTime = &renewed
				if err := cs.Tracker().Update(coordinationv1.SchemeGroupVersion.WithResource("leases"), l, RunLeaseNamespace); err != nil {
					t.Errorf("renewing the holder's Lease: %v", err)
				}
			}
			return false, nil, nil
		})
		l, err := acquireLease(t.Context(), cs, info, time.Millisecond, func(string) {})
		var held *leaseHeldError
		switch {
		case reads < 2:
			t.Errorf("renewing %v: the Lease was read %d times, want it read again after the watch", renewing, reads)
		case renewing && !errors.As(err, &held):
			t.Errorf("a Lease renewed while watched: err = %v, want a *leaseHeldError", err)
		case renewing && holderOf(getLease(t, cs)) != "slow-clock-host/1/live-run":
			t.Errorf("the renewing holder lost its Lease to %q", holderOf(getLease(t, cs)))
		case !renewing && err != nil:
			t.Errorf("a Lease nobody renewed: %v, want it taken over", err)
		case !renewing && holderOf(getLease(t, cs)) != "this-host/7/run-1":
			t.Errorf("holder after the takeover: %q, want this-host/7/run-1", holderOf(getLease(t, cs)))
		}
		if l != nil {
			l.stop()
			<-l.done
		}
	}
}

// TestRenewLease: a deleted Lease is made again for its run; one another
// run took is reported lost, and left to that run.
func TestRenewLease(t *testing.T) {
	const me = "this-host/7/run-1"
	cs := fake.NewClientset()
	if why := renewLease(t.Context(), cs, me, `{"pid":7}`); why != "" {
		t.Fatalf("renewing a deleted Lease: lost (%s), want it made again", why)
	}
	if l := getLease(t, cs); holderOf(l) != me || l.Annotations[holderAnnotation] != `{"pid":7}` {
		t.Errorf("Lease made again: holder %q, annotation %q; want %s with its holder record", holderOf(l), l.Annotations[holderAnnotation], me)
	}
	if err := cs.CoordinationV1().Leases(RunLeaseNamespace).Delete(t.Context(), RunLeaseName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoordinationV1().Leases(RunLeaseNamespace).Create(t.Context(), staleLease("other-host/9/run-2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	why := renewLease(t.Context(), cs, me, "")
	if !strings.Contains(why, `taken over by "other-host/9/run-2"`) {
		t.Errorf("renewing a Lease another run holds: %q, want it reported taken over", why)
	}
	if l := getLease(t, cs); holderOf(l) != "other-host/9/run-2" || !l.Spec.RenewTime.Time.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("the other run's Lease was changed: holder %q, renewed %s", holderOf(l), l.Spec.RenewTime)
	}
}
