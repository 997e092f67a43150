package dcs

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
)

func TestCreateFailoverRace(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	clients := []*Client{open(t, srv, "a", 5*time.Second), open(t, srv, "b", 5*time.Second), open(t, srv, "c", 5*time.Second)}
	ctx := testCtx(t)
	cli := raw(t, srv)

	race := func(round string) int {
		t.Helper()
		results := make([]bool, len(clients))
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				ok, err := c.CreateFailover(ctx, cluster.Failover{Leader: "a", Member: c.Name()})
				if err != nil {
					t.Error(err)
				}
				results[i] = ok
			})
		}
		wg.Wait()
		winner, wins := -1, 0
		for i, ok := range results {
			if ok {
				winner, wins = i, wins+1
			}
		}
		if wins != 1 {
			t.Fatalf("%s: results = %v, want exactly one winner", round, results)
		}
		cl, err := clients[0].Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := (cluster.Failover{Leader: "a", Member: clients[winner].Name(), Revision: cl.Failover.Revision}); cl.Failover == nil || *cl.Failover != want {
			t.Fatalf("%s: stored failover = %+v, want %+v", round, cl.Failover, want)
		}
		return winner
	}

	race("fresh key")
	// A pending request is never replaced.
	if ok, err := clients[0].CreateFailover(ctx, cluster.Failover{Member: "x"}); err != nil || ok {
		t.Fatalf("create over a pending request = %v, %v; want false", ok, err)
	}
	// Once cleared (deleted), the key can be created again.
	cl, err := clients[0].Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := clients[0].ClearFailover(ctx, cl.Failover.Revision); err != nil || !ok {
		t.Fatalf("ClearFailover = %v, %v", ok, err)
	}
	race("after clear")
	// Patroni leaves "{}" (or "") behind: that is no request either.
	for _, empty := range []string{"{}", ""} {
		if _, err := cli.Put(ctx, testPrefix+KeyFailover, empty); err != nil {
			t.Fatal(err)
		}
		race("over " + empty)
	}
	// An undecodable value is left for the operator to inspect.
	if _, err := cli.Put(ctx, testPrefix+KeyFailover, "garbage"); err != nil {
		t.Fatal(err)
	}
	if ok, err := clients[0].CreateFailover(ctx, cluster.Failover{Member: "x"}); err != nil || ok {
		t.Fatalf("create over garbage = %v, %v; want false", ok, err)
	}
}

func TestPutConfig(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "a", 5*time.Second)
	ctx := testCtx(t)
	cfg := cluster.DefaultDynamicConfig()
	cfg.TTL = 20
	cfg.PostgreSQL.Parameters = map[string]string{"max_connections": "50"}
	// Creates a missing key.
	if err := c.PutConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cl, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Config == nil || !reflect.DeepEqual(*cl.Config, cfg) {
		t.Fatalf("config = %+v, want %+v", cl.Config, cfg)
	}
	// Overwrites regardless of the revision; a CAS on the old one fails.
	old := cl.ConfigRevision
	cfg.TTL = 30
	if err := c.PutConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if cl, err = c.Load(ctx); err != nil || cl.Config.TTL != 30 || cl.ConfigRevision <= old {
		t.Fatalf("after put: %+v rev %d, %v", cl.Config, cl.ConfigRevision, err)
	}
	if ok, err := c.SetConfig(ctx, cfg, old); err != nil || ok {
		t.Fatalf("SetConfig on the old revision = %v, %v; want false", ok, err)
	}
}
