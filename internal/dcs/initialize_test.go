package dcs

import (
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/etcdtest"
)

// TestClaimInitialize checks the adoption race: exactly one of two members
// claiming at once wins, the key holds the winner's system identifier, and
// neither an existing key nor an empty identifier is ever overwritten.
func TestClaimInitialize(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	a, b := open(t, srv, "a", 5*time.Second), open(t, srv, "b", 5*time.Second)
	ctx := testCtx(t)
	if _, err := a.ClaimInitialize(ctx, ""); err == nil {
		t.Fatal("claim with an empty system identifier succeeded")
	}
	ids := []string{"111", "222"}
	results := make([]bool, 2)
	var wg sync.WaitGroup
	for i, c := range []*Client{a, b} {
		wg.Go(func() {
			ok, err := c.ClaimInitialize(ctx, ids[i])
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
	winner := ids[0]
	if results[1] {
		winner = ids[1]
	}
	cl, err := a.Load(ctx)
	if err != nil || cl.Initialize == nil || cl.Initialize.SystemID != winner {
		t.Fatalf("initialize = %+v, %v; want %s", cl.Initialize, err, winner)
	}
	// The key now holds a system identifier: cancelling keeps it, and a
	// later claim does not overwrite it.
	if err := a.CancelInitialize(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.ClaimInitialize(ctx, "333"); err != nil || ok {
		t.Fatalf("claim over an existing key = %v, %v; want false", ok, err)
	}
}
