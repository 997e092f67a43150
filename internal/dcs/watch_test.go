package dcs

import (
	"context"
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
	for _, k := range []string{KeyLeader, KeyConfig, KeyStatus, KeyFailover, KeyInitialize, KeyMembers + "n2"} {
		if _, err := r.Put(ctx, testPrefix+k, "x"); err != nil {
			t.Fatal(err)
		}
		expectSignal(t, ch, k)
	}
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
