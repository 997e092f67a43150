package dcs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/etcdtest"
)

// expectSignal waits for one signal on ch.
func expectSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("watch channel closed while waiting for %s", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no watch signal for %s", what)
	}
}

// startWatch starts c's watch and stops it when the test ends, waiting for
// the channel to close.
func startWatch(t *testing.T, c *Client) <-chan struct{} {
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.Watch(ctx)
	t.Cleanup(func() {
		cancel()
		for range ch {
		}
	})
	return ch
}

func TestWatchSignalsRelevantChanges(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	if _, err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	ch := startWatch(t, c)
	r := raw(t, srv)
	for _, k := range []string{KeyLeader, KeyConfig, KeyFailover, KeySync, KeyInitialize, KeyFailsafe} {
		if _, err := r.Put(ctx, testPrefix+k, "x"); err != nil {
			t.Fatal(err)
		}
		expectSignal(t, ch, k)
	}
}

// expectNoSignal fails if ch signals within d. A slow watch can only make
// it pass wrongly, never fail wrongly; TestRelevant pins the filter
// itself.
func expectNoSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("watch signalled for %s", what)
	case <-time.After(d):
	}
}

// TestWatchIgnoresMemberAndStatusChanges: member keys change whenever a
// member's WAL position moves, and the status key every leader loop; they
// must not wake the HA loop (that made every member loop many times a
// second under write load). A leader change still does.
func TestWatchIgnoresMemberAndStatusChanges(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	if _, err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	ch := startWatch(t, c)
	r := raw(t, srv)
	for i := range 5 {
		for _, k := range []string{KeyMembers + "n2", KeyStatus, KeyHistory} {
			if _, err := r.Put(ctx, testPrefix+k, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	expectNoSignal(t, ch, 500*time.Millisecond, "member, status and history changes")
	if _, err := r.Put(ctx, testPrefix+KeyLeader, "n2"); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ch, "leader change")
}

func TestWatchClosesWithContext(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.Watch(ctx)
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			// A pending signal is allowed; the close must follow.
			<-ch
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch channel not closed after cancel")
	}
}

func TestWatchRereadsAfterCompaction(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	if _, err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	r := raw(t, srv)
	// Changes to unwatched keys, then compaction past the Load's revision.
	var rev int64
	for range 3 {
		resp, err := r.Put(ctx, testPrefix+KeyHistory, "[]")
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	if _, err := r.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	ch := startWatch(t, c)
	expectSignal(t, ch, "compaction")
	// The watch goes on from the current revision.
	if _, err := r.Put(ctx, testPrefix+KeyLeader, "n2"); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ch, "leader after compaction")
}

func TestWatchResumesAfterEtcdRestart(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	ch := startWatch(t, c)
	r := raw(t, srv)
	if _, err := r.Put(ctx, testPrefix+KeyLeader, "a"); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ch, "leader before restart")
	// Restart takes ~8 s: etcd waits for the open watch stream to drain.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Put(ctx, testPrefix+KeyLeader, "b"); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ch, "leader after restart")
}
