package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// ttlAt is the default configuration with another ttl.
func ttlAt(secs int) Config {
	c := dyn
	c.TTL = secs
	return Config{Dynamic: c}
}

// TestScenarioTTLRaisedThenLeaderPartitioned raises ttl from 5 to 15 s
// while a leader leads, then cuts the leader off from the DCS. With the
// agent of old (leases keep the ttl they were granted with, deadlines
// follow the configured ttl) the DCS deletes the leader key 5 s after the
// last keep-alive while the leader keeps writing until 15 s-based
// deadlines: the checker must report it. With lease moves, the leader key
// is on a 15 s lease, so the other members wait for it, and the leader is
// fenced within the renew deadline of the new ttl.
func TestScenarioTTLRaisedThenLeaderPartitioned(t *testing.T) {
	raise, cut := 30*time.Second, 40*time.Second
	faults := []Fault{
		{At: raise, Kind: ChangeTTL, TTL: 15},
		{At: cut, Kind: PartitionDCS, Member: "leader", Duration: 30 * time.Second},
	}
	high := ttlAt(15).Dynamic

	t.Run("deadlines from the configured ttl", func(t *testing.T) {
		r := runScenario(t, Config{Duration: 100 * time.Second, DeadlinesFromConfiguredTTL: true}, faults...)
		if r.Stats.TTLChanges != 1 {
			t.Fatalf("%d ttl changes, want 1", r.Stats.TTLChanges)
		}
		if !r.Failed() {
			t.Fatal("a leader whose deadlines outlast its lease went unnoticed")
		}
		if k := r.Violations[0].Kind; k != "single-writer" && k != "writable-without-key" {
			t.Fatalf("violation %s, want single-writer or writable-without-key", r.Violations[0])
		}
		t.Logf("caught: %s", r.Violations[0])
	})

	t.Run("lease moved", func(t *testing.T) {
		r := scenarioWith(t, Config{Duration: 100 * time.Second}, faults...)
		if r.Stats.TTLChanges != 1 {
			t.Fatalf("%d ttl changes, want 1", r.Stats.TTLChanges)
		}
		if r.Stats.LeaseMoves < 3 {
			t.Errorf("%d lease moves, want one per member", r.Stats.LeaseMoves)
		}
		old := leaderBefore(t, r, cut)
		if old.Start > raise {
			t.Fatalf("the leader at the cut (%s) took over after the ttl change", old.Member)
		}
		if limit := cut + high.RenewDeadline() + high.FenceTimeoutDuration(); old.End == 0 || old.End > limit {
			t.Errorf("%s stopped at %s, want by the renew deadline of ttl 15 + fence timeout (%s)", old.Member, fmtDur(old.End), fmtDur(limit))
		}
		next := nextTerm(r, old.Member, cut)
		if next == nil {
			t.Fatal("no other member was promoted")
		}
		// The key is on a 15 s lease: nobody takes it before that lease
		// can expire (a 5 s lease would let a replica in after 5 s).
		if d := next.Start - cut; d < high.TTLDuration()-high.LoopWaitDuration()-100*time.Millisecond || d > high.TTLDuration()+2*time.Second {
			t.Errorf("%s was promoted %s after the cut, want about the new ttl (%s)", next.Member, d, high.TTLDuration())
		}
		if old.LastCommit >= next.Start {
			t.Errorf("%s committed at %s after %s's promotion at %s", old.Member, fmtDur(old.LastCommit), next.Member, fmtDur(next.Start))
		}
		if !r.Stats.Healed {
			t.Errorf("cluster did not heal: %s", r.Stats.Unhealed)
		}
	})
}

// TestScenarioTTLLoweredThenLeaderPartitioned raises ttl to 15 s, lowers
// it back to 5 s, then cuts the leader off: the keys must have moved to a
// 5 s lease, so a replica takes over about 5 s after the cut, and the
// leader is fenced by then.
func TestScenarioTTLLoweredThenLeaderPartitioned(t *testing.T) {
	cut := 60 * time.Second
	r := scenario(t, 120*time.Second,
		Fault{At: 30 * time.Second, Kind: ChangeTTL, TTL: 15},
		Fault{At: 45 * time.Second, Kind: ChangeTTL, TTL: 5},
		Fault{At: cut, Kind: PartitionDCS, Member: "leader", Duration: 20 * time.Second})
	if r.Stats.TTLChanges != 2 || r.Stats.LeaseMoves < 6 {
		t.Fatalf("%d ttl changes and %d lease moves, want 2 and two per member", r.Stats.TTLChanges, r.Stats.LeaseMoves)
	}
	old := leaderBefore(t, r, cut)
	if limit := cut + dyn.RenewDeadline() + dyn.FenceTimeoutDuration(); old.End == 0 || old.End > limit {
		t.Errorf("%s stopped at %s, want by the renew deadline of ttl 5 + fence timeout (%s)", old.Member, fmtDur(old.End), fmtDur(limit))
	}
	next := nextTerm(r, old.Member, cut)
	if next == nil {
		t.Fatal("no other member was promoted")
	}
	if d := next.Start - cut; d > dyn.TTLDuration()+2*time.Second {
		t.Errorf("%s was promoted %s after the cut, want about ttl 5 s: the keys stayed on the 15 s lease", next.Member, d)
	}
	if !r.Stats.Healed {
		t.Errorf("cluster did not heal: %s", r.Stats.Unhealed)
	}
}

// TestScenarioTTLMoveInterrupted cuts the leader off from the DCS shortly
// after a ttl increase, at offsets 250 µs apart, so that some cuts fall
// between the grant of the new lease and the answer to the move
// transaction: either the request is lost (the keys stay on the old
// lease) or only the reply is (the keys are on the new lease). The move
// is then unresolved: the leader's deadlines must keep the smaller TTL and
// the earlier confirmation, so it is fenced within the renew deadline of
// the old ttl, and nothing is violated whichever lease the keys are on.
func TestScenarioTTLMoveInterrupted(t *testing.T) {
	raise := 30 * time.Second
	var requestLost, replyLost int
	for off := 20 * time.Millisecond; off <= 60*time.Millisecond; off += 250 * time.Microsecond {
		cut := raise + off
		r := scenario(t, 80*time.Second,
			Fault{At: raise, Kind: ChangeTTL, TTL: 15},
			Fault{At: cut, Kind: PartitionDCS, Member: "leader", Duration: 30 * time.Second})
		if t.Failed() {
			t.Fatalf("cut %s after the ttl change", off)
		}
		old := leaderBefore(t, r, raise)
		var from, to int64
		for _, l := range r.Trace {
			if _, rest, ok := strings.Cut(l, old.Member+": moving to a lease with ttl 15s failed; deadlines keep ttl 5s: dcs: move lease "); ok {
				if _, err := fmt.Sscanf(rest, "%x to %x: outcome unknown", &from, &to); err == nil {
					break
				}
			}
		}
		if to == 0 {
			continue // moved before the cut, or the grant was lost
		}
		if traceHas(r, fmt.Sprintf("dcs: leader key = %s (lease %x)", old.Member, to)) {
			replyLost++
		} else {
			requestLost++
		}
		if limit := cut + dyn.RenewDeadline() + dyn.FenceTimeoutDuration(); old.End == 0 || old.End > limit {
			t.Errorf("cut %s after the ttl change, move unresolved: %s stopped at %s, want by the renew deadline of ttl 5 + fence timeout (%s)",
				off, old.Member, fmtDur(old.End), fmtDur(limit))
		}
	}
	if requestLost == 0 || replyLost == 0 {
		t.Fatalf("unresolved moves: %d with the request lost, %d with the reply lost; want both", requestLost, replyLost)
	}
	t.Logf("unresolved moves: %d with the request lost, %d with the reply lost", requestLost, replyLost)
}

// TestAgentRestartReadsTTLBeforeGrant: an agent that starts after a ttl
// change grants its first lease with the cluster's ttl (it reads the
// dynamic configuration first), so it never has to move it.
func TestAgentRestartReadsTTLBeforeGrant(t *testing.T) {
	r := scenario(t, 70*time.Second,
		Fault{At: 30 * time.Second, Kind: ChangeTTL, TTL: 12},
		Fault{At: 40 * time.Second, Kind: RestartAgent, Member: "m1", Duration: time.Second})
	moves := 0
	for _, l := range r.Trace {
		if strings.Contains(l, "m1: moved keys from lease") {
			moves++
		}
	}
	if moves != 1 {
		t.Errorf("m1 moved its keys %d times, want once (after the change, not after its restart)", moves)
	}
}

// While a move is unresolved the keys may be on either lease: the sim's
// DCS client, like package dcs, reports the smaller TTL and the earlier
// confirmation of the two (with its true send time, for the checker), and
// keeps the lease outdated.
func TestUnresolvedMoveReportsTheEarlierDeadline(t *testing.T) {
	t0 := epoch.Add(time.Minute)
	lease := func(id int64, ttl, sent time.Duration) leaseState {
		return leaseState{ID: id, TTL: ttl, Requested: ttl, ConfirmedSentAt: t0.Add(sent), sentTrue: time.Minute + sent}
	}
	cases := []struct {
		name     string
		cur, mv  leaseState
		wantSent time.Duration
	}{
		{"lowered, old lease renewed after the grant", lease(1, 30*time.Second, time.Second), lease(2, 5*time.Second, 0), 0},
		{"raised, old lease renewed before the grant", lease(1, 5*time.Second, 0), lease(2, 30*time.Second, time.Second), 0},
	}
	for _, tc := range cases {
		mv := tc.mv
		cl := dcsClient{ttl: mv.Requested, lease: tc.cur, moving: &mv}
		got := cl.effectiveLease()
		if got.ID != 1 || got.TTL != 5*time.Second || !got.ConfirmedSentAt.Equal(t0.Add(tc.wantSent)) || got.sentTrue != time.Minute+tc.wantSent {
			t.Errorf("%s: effectiveLease = %+v; want lease 1, TTL 5s, confirmed at +%s", tc.name, got, tc.wantSent)
		}
		if !cl.leaseTTLOutdated() {
			t.Errorf("%s: an unresolved move must keep the lease outdated", tc.name)
		}
		cl.lease, cl.moving = mv, nil
		if cl.leaseTTLOutdated() {
			t.Errorf("%s: outdated after the move", tc.name)
		}
	}
}
