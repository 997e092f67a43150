package dcs

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
)

// keyLease returns the lease a key is attached to (0: none or no key).
func keyLease(t *testing.T, cli *clientv3.Client, key string) int64 {
	t.Helper()
	resp, err := cli.Get(testCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].Lease
}

// grantedTTL is the TTL etcd holds for a lease; -1 when it does not exist.
func grantedTTL(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID) int64 {
	t.Helper()
	resp, err := cli.TimeToLive(testCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if resp.TTL == -1 {
		return -1
	}
	return resp.GrantedTTL
}

// A ttl change moves the leader and member keys onto a lease with the new
// TTL, in both directions, and the old lease is gone.
func TestMoveLeaseFollowsTTLChanges(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := raw(t, srv)
	leader, other := open(t, srv, "a", 5*time.Second), open(t, srv, "b", 5*time.Second)
	ctx := testCtx(t)
	for _, c := range []*Client{leader, other} {
		refresh(t, c)
		if err := c.TouchMember(ctx, &cluster.Member{State: cluster.StateRunning}); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := leader.AcquireLeader(ctx); err != nil || !ok {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	if leader.LeaseTTLOutdated() {
		t.Fatal("lease outdated before any ttl change")
	}

	for _, ttl := range []time.Duration{30 * time.Second, 3 * time.Second, 5 * time.Second} {
		old := leader.Lease()
		leader.SetTTL(ttl)
		if !leader.LeaseTTLOutdated() {
			t.Fatalf("ttl %v: lease not reported outdated", ttl)
		}
		res, err := leader.MoveLease(ctx)
		if err != nil {
			t.Fatalf("ttl %v: move: %v", ttl, err)
		}
		if !res.LeaderMoved {
			t.Fatalf("ttl %v: leader key not moved", ttl)
		}
		if res.Lease.ID == old.ID || res.Lease.TTL != ttl || leader.Lease() != res.Lease {
			t.Fatalf("ttl %v: lease after move %+v (before %+v)", ttl, res.Lease, old)
		}
		if got := keyLease(t, cli, testPrefix+KeyLeader); got != int64(res.Lease.ID) {
			t.Fatalf("ttl %v: leader key on lease %x, want %x", ttl, got, int64(res.Lease.ID))
		}
		if got := keyLease(t, cli, testPrefix+KeyMembers+"a"); got != int64(res.Lease.ID) {
			t.Fatalf("ttl %v: member key on lease %x, want %x", ttl, got, int64(res.Lease.ID))
		}
		if got := grantedTTL(t, cli, res.Lease.ID); got != int64(ttl/time.Second) {
			t.Fatalf("ttl %v: etcd granted %d s", ttl, got)
		}
		if got := grantedTTL(t, cli, old.ID); got != -1 {
			t.Fatalf("ttl %v: old lease still exists with TTL %d", ttl, got)
		}
		if leader.LeaseTTLOutdated() {
			t.Fatalf("ttl %v: still outdated after the move", ttl)
		}
		if st := refresh(t, leader); st.ID != res.Lease.ID || st.TTL != ttl {
			t.Fatalf("ttl %v: keep-alive after move: %+v", ttl, st)
		}
		if ok, err := leader.UpdateLeader(ctx); err != nil || !ok {
			t.Fatalf("ttl %v: UpdateLeader after move = %v, %v", ttl, ok, err)
		}
	}

	// A member that does not hold the leader key moves only its own key.
	other.SetTTL(30 * time.Second)
	res, err := other.MoveLease(ctx)
	if err != nil || res.LeaderMoved {
		t.Fatalf("other: move = %+v, %v; want moved without the leader key", res, err)
	}
	if got := keyLease(t, cli, testPrefix+KeyMembers+"b"); got != int64(res.Lease.ID) {
		t.Fatalf("other's member key on lease %x, want %x", got, int64(res.Lease.ID))
	}
	if got, want := keyLease(t, cli, testPrefix+KeyLeader), int64(leader.Lease().ID); got != want {
		t.Fatalf("leader key moved by a non-leader: lease %x, want %x", got, want)
	}
}

// While a move is unresolved the keys may be on either lease: the state
// reports the smaller TTL and the earlier confirmation of the two.
func TestUnresolvedMoveReportsTheEarlierDeadline(t *testing.T) {
	t0 := time.Now()
	c := &Client{}
	c.lease = LeaseState{ID: 1, TTL: 30 * time.Second, Requested: 30 * time.Second, ConfirmedSentAt: t0.Add(time.Second)}
	c.moving = &LeaseState{ID: 2, TTL: 5 * time.Second, Requested: 5 * time.Second, ConfirmedSentAt: t0}
	got := c.Lease()
	if got.ID != 1 || got.TTL != 5*time.Second || !got.ConfirmedSentAt.Equal(t0) {
		t.Fatalf("lowering: Lease() = %+v; want lease 1, TTL 5s, confirmed at the new lease's grant", got)
	}
	c.lease = LeaseState{ID: 1, TTL: 5 * time.Second, Requested: 5 * time.Second, ConfirmedSentAt: t0}
	c.moving = &LeaseState{ID: 2, TTL: 30 * time.Second, Requested: 30 * time.Second, ConfirmedSentAt: t0.Add(time.Second)}
	got = c.Lease()
	if got.TTL != 5*time.Second || !got.ConfirmedSentAt.Equal(t0) {
		t.Fatalf("raising: Lease() = %+v; want TTL 5s confirmed at the old lease's renewal", got)
	}
	c.ttl = 30 * time.Second
	if !c.LeaseTTLOutdated() {
		t.Fatal("an unresolved move must keep the lease outdated")
	}
}

// While a move is unresolved both leases are kept alive, so that a leader
// whose move transaction keeps timing out is not fenced for it while its
// renewals succeed.
func TestUnresolvedMoveKeepsTheNewLeaseAlive(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "a", 5*time.Second)
	refresh(t, c)
	resp, err := raw(t, srv).Grant(testCtx(t), 5)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	c.mu.Lock()
	c.moving = &LeaseState{ID: resp.ID, TTL: 5 * time.Second, Requested: 5 * time.Second, ConfirmedSentAt: old}
	c.mu.Unlock()
	if got := c.Lease().ConfirmedSentAt; !got.Equal(old) {
		t.Fatalf("confirmation %v before the keep-alive, want the moving lease's %v", got, old)
	}
	before := time.Now()
	c.keepAliveMoving(testCtx(t))
	c.mu.Lock()
	moved, current := c.moving.ConfirmedSentAt, c.lease.ConfirmedSentAt
	c.mu.Unlock()
	if moved.Before(before) {
		t.Fatalf("moving lease confirmed at %v, want after %v", moved, before)
	}
	if got := c.Lease().ConfirmedSentAt; !got.Equal(current) {
		t.Fatalf("confirmation %v, want the earlier of the two fresh ones (%v)", got, current)
	}
}
