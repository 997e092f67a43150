package dcs

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
)

func TestSetConfigCAS(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	a, b := open(t, srv, "a", 5*time.Second), open(t, srv, "b", 5*time.Second)
	ctx := testCtx(t)
	cfg := cluster.DefaultDynamicConfig()
	if ok, err := a.SetConfig(ctx, cfg, 0); err != nil || !ok {
		t.Fatalf("create = %v, %v", ok, err)
	}
	if ok, err := b.SetConfig(ctx, cfg, 0); err != nil || ok {
		t.Fatalf("second create = %v, %v; want false", ok, err)
	}
	cl, err := a.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rev := cl.ConfigRevision
	results := make([]bool, 2)
	var wg sync.WaitGroup
	for i, c := range []*Client{a, b} {
		wg.Go(func() {
			next := cfg
			next.LoopWait = 2 + i
			ok, err := c.SetConfig(ctx, next, rev)
			if err != nil {
				t.Error(err)
			}
			results[i] = ok
		})
	}
	wg.Wait()
	if results[0] == results[1] {
		t.Fatalf("results = %v, want exactly one success", results)
	}
}

func TestRaceInitialize(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	a, b := open(t, srv, "a", 5*time.Second), open(t, srv, "b", 5*time.Second)
	ctx := testCtx(t)
	results := make([]bool, 2)
	var wg sync.WaitGroup
	for i, c := range []*Client{a, b} {
		wg.Go(func() {
			ok, err := c.RaceInitialize(ctx)
			if err != nil {
				t.Error(err)
			}
			results[i] = ok
		})
	}
	wg.Wait()
	if results[0] == results[1] {
		t.Fatalf("results = %v, want exactly one winner", results)
	}
	// An empty key can be cancelled; one holding a system id cannot.
	if err := a.CancelInitialize(ctx); err != nil {
		t.Fatal(err)
	}
	if cl, err := a.Load(ctx); err != nil || cl.Initialize != nil {
		t.Fatalf("after cancel initialize = %+v, %v", cl.Initialize, err)
	}
	if ok, err := b.RaceInitialize(ctx); err != nil || !ok {
		t.Fatalf("race after cancel = %v, %v", ok, err)
	}
	if err := b.SetInitialize(ctx, "123"); err != nil {
		t.Fatal(err)
	}
	if err := a.CancelInitialize(ctx); err != nil {
		t.Fatal(err)
	}
	if cl, err := a.Load(ctx); err != nil || cl.Initialize == nil || cl.Initialize.SystemID != "123" {
		t.Fatalf("initialize = %+v, %v; want 123 kept", cl.Initialize, err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	const dial = 500 * time.Millisecond
	start := time.Now()
	_, err := Open(context.Background(), Options{
		Endpoints:   []string{"http://127.0.0.1:1"},
		DialTimeout: dial,
		Prefix:      testPrefix,
		Name:        "n1",
	})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Open succeeded against 127.0.0.1:1")
	}
	if !strings.Contains(err.Error(), "http://127.0.0.1:1") || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("error %q does not name the endpoint as unreachable", err)
	}
	if elapsed > dial+time.Second {
		t.Errorf("Open took %v, want about %v", elapsed, dial)
	}
}

func TestMemberNameTaken(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	first, second := open(t, srv, "n1", 5*time.Second), open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	if taken, err := second.MemberNameTaken(ctx); err != nil || taken {
		t.Fatalf("no key: taken = %v, %v", taken, err)
	}
	refresh(t, first)
	if err := first.TouchMember(ctx, &cluster.Member{State: cluster.StateRunning}); err != nil {
		t.Fatal(err)
	}
	if taken, err := first.MemberNameTaken(ctx); err != nil || taken {
		t.Errorf("own key: taken = %v, %v; want false", taken, err)
	}
	if taken, err := second.MemberNameTaken(ctx); err != nil || !taken {
		t.Errorf("other live agent: taken = %v, %v; want true", taken, err)
	}
	if err := first.DeleteMember(ctx); err != nil {
		t.Fatal(err)
	}
	if taken, err := second.MemberNameTaken(ctx); err != nil || taken {
		t.Errorf("after delete: taken = %v, %v; want false", taken, err)
	}
}

func TestWritesSkipUnchangedUntilLoadShowsChange(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	refresh(t, c)
	m := &cluster.Member{State: cluster.StateRunning, Role: cluster.RoleReplica}
	st := cluster.Status{Optime: 1}
	modRev := func() (member, status int64) {
		cl, err := c.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cl.Member("n1") != nil {
			member = cl.Member("n1").Revision
		}
		return member, cl.Status.Optime
	}
	if err := c.TouchMember(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	r1, _ := modRev()
	if err := c.TouchMember(ctx, m); err != nil {
		t.Fatal(err)
	}
	if r2, _ := modRev(); r2 != r1 {
		t.Errorf("unchanged member rewritten: revision %d -> %d", r1, r2)
	}
	// Someone else deletes both keys; the next Load drops the caches.
	r := raw(t, srv)
	if _, err := r.Delete(ctx, testPrefix+"members/n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Put(ctx, testPrefix+"status", `{"optime":7}`); err != nil {
		t.Fatal(err)
	}
	if rev, optime := modRev(); rev != 0 || optime != 7 {
		t.Fatalf("after external change: member rev %d, optime %d", rev, optime)
	}
	if err := c.TouchMember(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	if rev, optime := modRev(); rev == 0 || optime != 1 {
		t.Errorf("after rewrite: member rev %d, optime %d; want member present and optime 1", rev, optime)
	}
}
