package dcs

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
)

func TestLeaderRace(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	a, b := open(t, srv, "a", 5*time.Second), open(t, srv, "b", 5*time.Second)
	refresh(t, a)
	refresh(t, b)
	ctx := testCtx(t)

	var wg sync.WaitGroup
	won := map[*Client]bool{}
	var mu sync.Mutex
	for _, c := range []*Client{a, b} {
		wg.Go(func() {
			ok, err := c.AcquireLeader(ctx)
			if err != nil {
				t.Errorf("acquire %s: %v", c.Name(), err)
			}
			mu.Lock()
			won[c] = ok
			mu.Unlock()
		})
	}
	wg.Wait()
	if won[a] == won[b] {
		t.Fatalf("a won %v, b won %v: want exactly one winner", won[a], won[b])
	}
	winner, loser := a, b
	if won[b] {
		winner, loser = b, a
	}
	if ok, err := winner.UpdateLeader(ctx); err != nil || !ok {
		t.Errorf("winner UpdateLeader = %v, %v; want true", ok, err)
	}
	if ok, err := loser.UpdateLeader(ctx); err != nil || ok {
		t.Errorf("loser UpdateLeader = %v, %v; want false", ok, err)
	}
	if err := loser.ReleaseLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if cl, err := winner.Load(ctx); err != nil || cl.LeaderName() != winner.Name() {
		t.Fatalf("after loser release leader = %q, %v; want %s", cl.LeaderName(), err, winner.Name())
	}
	if err := winner.ReleaseLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if cl, err := winner.Load(ctx); err != nil || cl.Leader != nil {
		t.Fatalf("after winner release leader = %+v, %v; want none", cl.Leader, err)
	}
	if ok, err := winner.UpdateLeader(ctx); err != nil || ok {
		t.Errorf("UpdateLeader without a key = %v, %v; want false (no recreation)", ok, err)
	}
}

func TestLeaseExpiryDeletesKeysAndWakesWatch(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 2*time.Second)
	ctx := testCtx(t)
	if st := refresh(t, c); st.TTL != 2*time.Second || !st.Regranted {
		t.Fatalf("lease = %+v, want TTL 2s regranted", st)
	}
	if err := c.TouchMember(ctx, &cluster.Member{State: cluster.StateRunning, Role: cluster.RolePrimary}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.AcquireLeader(ctx); err != nil || !ok {
		t.Fatalf("AcquireLeader = %v, %v", ok, err)
	}
	if _, err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// The watch starts at the Load's revision, so nothing after it is missed.
	wctx, cancel := context.WithCancel(ctx)
	events := c.Watch(wctx)
	defer func() {
		cancel()
		for range events { // wait for the watcher to end
		}
	}()

	// Stop refreshing: etcd expires the lease after its TTL.
	waitFor(t, 10*time.Second, "leader and member keys to expire", func() bool {
		cl, err := c.Load(ctx)
		return err == nil && cl.Leader == nil && len(cl.Members) == 0
	})
	select {
	case <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not signal the deletion")
	}
}

func TestConfirmedSentAtPrecedesRequest(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	for i, wantRegrant := range []bool{true, false} {
		before := time.Now()
		st := refresh(t, c)
		after := time.Now()
		if st.ConfirmedSentAt.Before(before) || st.ConfirmedSentAt.After(after) {
			t.Errorf("call %d: ConfirmedSentAt %v outside [%v, %v]", i, st.ConfirmedSentAt, before, after)
		}
		if st.Regranted != wantRegrant || st.ID == 0 || st.TTL != 5*time.Second {
			t.Errorf("call %d: state %+v, want regranted=%v TTL 5s", i, st, wantRegrant)
		}
		if c.Lease() != st {
			t.Errorf("call %d: Lease() = %+v, want %+v", i, c.Lease(), st)
		}
	}
}

func TestRegrantAfterRevokeReattachesLeader(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	old := refresh(t, c)
	if ok, err := c.AcquireLeader(ctx); err != nil || !ok {
		t.Fatalf("AcquireLeader = %v, %v", ok, err)
	}
	r := raw(t, srv)
	if _, err := r.Revoke(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	st := refresh(t, c)
	if !st.Regranted || st.ID == old.ID {
		t.Fatalf("after revoke: %+v, want a new lease (old %x)", st, old.ID)
	}
	// Revoking deleted the key; UpdateLeader must not recreate it.
	if ok, err := c.UpdateLeader(ctx); err != nil || ok {
		t.Fatalf("UpdateLeader with key gone = %v, %v; want false", ok, err)
	}
	// A key that still names us on another lease is re-attached.
	other, err := r.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Put(ctx, testPrefix+KeyLeader, "n1", clientv3.WithLease(other.ID)); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.UpdateLeader(ctx); err != nil || !ok {
		t.Fatalf("UpdateLeader re-attach = %v, %v; want true", ok, err)
	}
	cl, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl.LeaderName() != "n1" || cl.Leader.Lease != int64(st.ID) {
		t.Fatalf("leader = %+v, want n1 on lease %x", cl.Leader, st.ID)
	}
	if ok, err := c.UpdateLeader(ctx); err != nil || !ok {
		t.Fatalf("UpdateLeader on current lease = %v, %v", ok, err)
	}
}

func TestTouchMemberOnRevokedLeaseNeedsRefresh(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	old := refresh(t, c)
	if _, err := raw(t, srv).Revoke(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	m := &cluster.Member{State: cluster.StateRunning}
	if err := c.TouchMember(ctx, m); err == nil {
		t.Fatal("TouchMember on a revoked lease succeeded")
	}
	// The failure marked the lease gone: the next refresh grants directly.
	if st := refresh(t, c); !st.Regranted {
		t.Fatalf("refresh after lease-not-found = %+v, want regranted", st)
	}
	if err := c.TouchMember(ctx, m); err != nil {
		t.Fatal(err)
	}
	if cl, err := c.Load(ctx); err != nil || cl.Member("n1") == nil {
		t.Fatalf("member after re-touch = %v, %v", cl, err)
	}
}
