package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// scenario runs a fault-free three-member cluster (no random faults, no
// slow requests) with the scripted faults.
func scenario(t *testing.T, d time.Duration, faults ...Fault) Result {
	t.Helper()
	return scenarioWith(t, Config{Duration: d}, faults...)
}

func scenarioWith(t *testing.T, cfg Config, faults ...Fault) Result {
	t.Helper()
	r := runScenario(t, cfg, faults...)
	for _, v := range r.Violations {
		t.Errorf("violation: %s", v)
	}
	return r
}

// runScenario is scenarioWith without failing on violations.
func runScenario(t *testing.T, cfg Config, faults ...Fault) Result {
	t.Helper()
	cfg.Seed = 7
	cfg.TraceLen = 5000
	cfg.Faults.Script = faults
	cfg.Faults.SlowRequests = -1
	r := Run(cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("trace:\n%s", strings.Join(r.Trace, "\n"))
		}
	})
	return r
}

var dyn = cluster.DefaultDynamicConfig()

// termAt returns the term running at time at, or nil.
func termAt(r Result, at time.Duration) *Term {
	for i := range r.Terms {
		t := &r.Terms[i]
		if t.Start <= at && (t.End == 0 || t.End > at) {
			return t
		}
	}
	return nil
}

// nextTerm returns the first term of another member than who starting
// after at, or nil.
func nextTerm(r Result, who string, at time.Duration) *Term {
	for i := range r.Terms {
		if t := &r.Terms[i]; t.Start > at && t.Member != who {
			return t
		}
	}
	return nil
}

// leaderBefore returns the term running just before a fault.
func leaderBefore(t *testing.T, r Result, at time.Duration) *Term {
	t.Helper()
	old := termAt(r, at-time.Millisecond)
	if old == nil {
		t.Fatalf("no writable primary before %s", at)
	}
	return old
}

func TestScenarioLeaderPartitionedFromDCS(t *testing.T) {
	at := 30 * time.Second
	r := scenario(t, 90*time.Second, Fault{At: at, Kind: PartitionDCS, Member: "leader", Duration: 20 * time.Second})
	old := leaderBefore(t, r, at)
	if old.End == 0 {
		t.Fatalf("%s stayed writable while partitioned from the DCS", old.Member)
	}
	// Its last confirmed renewal was sent before the partition, so it must
	// stop within R + D_fence after it.
	if limit := at + dyn.RenewDeadline() + dyn.FenceTimeoutDuration(); old.End > limit {
		t.Errorf("%s stopped at %s, after the renew deadline + fence timeout (%s)", old.Member, fmtDur(old.End), fmtDur(limit))
	}
	next := nextTerm(r, old.Member, at)
	if next == nil {
		t.Fatal("no other member was promoted")
	}
	if next.Start <= old.End {
		t.Errorf("%s was promoted at %s, before %s stopped at %s", next.Member, fmtDur(next.Start), old.Member, fmtDur(old.End))
	}
	if old.LastCommit >= next.Start {
		t.Errorf("%s committed at %s after %s's promotion at %s", old.Member, fmtDur(old.LastCommit), next.Member, fmtDur(next.Start))
	}
	if d := next.Start - at; d > dyn.TTLDuration()+2*time.Second {
		t.Errorf("promotion took %s after the partition, want about TTL (%s)", d, dyn.TTLDuration())
	}
	if !r.Stats.Healed {
		t.Errorf("cluster did not heal: %s", r.Stats.Unhealed)
	}
}

func TestScenarioLeaderHostKilled(t *testing.T) {
	at := 30 * time.Second
	r := scenario(t, 120*time.Second, Fault{At: at, Kind: KillNode, Member: "leader", Duration: 40 * time.Second})
	old := leaderBefore(t, r, at)
	next := nextTerm(r, old.Member, at)
	if next == nil || next.How != "promote" {
		t.Fatalf("no replica was promoted after the leader's host was killed: %+v", next)
	}
	// The lease expires TTL after the last keep-alive (at most one loop
	// before the kill); the replicas race as soon as the key is gone.
	d := next.Start - at
	if d < dyn.TTLDuration()-dyn.LoopWaitDuration()-100*time.Millisecond || d > dyn.TTLDuration()+1500*time.Millisecond {
		t.Errorf("%s was promoted %s after the kill, want about TTL (%s)", next.Member, d, dyn.TTLDuration())
	}
	if !r.Stats.Healed {
		t.Errorf("cluster did not heal after the old leader came back: %s", r.Stats.Unhealed)
	}
}

func TestScenarioNodePausedLongerThanTTL(t *testing.T) {
	at, pause := 30*time.Second, 2*dyn.TTLDuration()
	r := scenario(t, 90*time.Second, Fault{At: at, Kind: PauseNode, Member: "leader", Duration: pause})
	old := leaderBefore(t, r, at)
	next := nextTerm(r, old.Member, at)
	if next == nil || next.Start > at+pause {
		t.Fatalf("no member was promoted while the leader's node was frozen: %+v", next)
	}
	if old.LastCommit >= next.Start {
		t.Errorf("the old leader %s committed at %s, after %s's promotion at %s", old.Member, fmtDur(old.LastCommit), next.Member, fmtDur(next.Start))
	}
	if old.End == 0 || old.End > at+pause+50*time.Millisecond {
		t.Errorf("the old leader %s was not stopped as it resumed at %s (term end %s)", old.Member, fmtDur(at+pause), fmtDur(old.End))
	}
	if len(r.Stats.NeedsWatchdog) > 0 {
		t.Errorf("stale primaries: %v", r.Stats.NeedsWatchdog)
	}
	if !r.Stats.Healed {
		t.Errorf("the old leader did not rejoin: %s", r.Stats.Unhealed)
	}
}

func TestScenarioPostmasterCrash(t *testing.T) {
	at := 30 * time.Second
	r := scenario(t, 60*time.Second, Fault{At: at, Kind: KillPostmaster, Member: "leader"})
	old := leaderBefore(t, r, at)
	if r.Stats.Promotions != 0 {
		t.Errorf("%d promotions after a postmaster crash, want a restart in place", r.Stats.Promotions)
	}
	next := termAt(r, at+10*time.Second)
	if next == nil || next.Member != old.Member || next.How != "start" {
		t.Fatalf("the leader %s was not restarted in place: %+v", old.Member, next)
	}
	if d := next.Start - at; d > 3*time.Second {
		t.Errorf("restart in place took %s", d)
	}
	if !r.Stats.Healed {
		t.Errorf("cluster did not heal: %s", r.Stats.Unhealed)
	}
}

func TestScenarioDCSOutage(t *testing.T) {
	at, outage := 30*time.Second, 20*time.Second
	r := scenario(t, 90*time.Second, Fault{At: at, Kind: DCSOutage, Duration: outage})
	old := leaderBefore(t, r, at)
	for _, tm := range r.Terms {
		if tm.Start > at && tm.Start < at+outage && tm.Member != old.Member {
			t.Errorf("%s became writable during the DCS outage at %s", tm.Member, fmtDur(tm.Start))
		}
	}
	if r.Stats.Promotions != 0 {
		t.Errorf("%d promotions, want none: the leader key survives the outage", r.Stats.Promotions)
	}
	// The leader fences at its renew deadline: R after its last confirmed
	// renewal, which was sent at most a loop (plus latency) before the
	// outage.
	lo := at + dyn.RenewDeadline() - dyn.LoopWaitDuration() - 100*time.Millisecond
	hi := at + dyn.RenewDeadline() + dyn.FenceTimeoutDuration()
	if old.End < lo || old.End > hi {
		t.Errorf("leader %s stopped at %s, want at its renew deadline (between %s and %s)", old.Member, fmtDur(old.End), fmtDur(lo), fmtDur(hi))
	}
	if after := termAt(r, at+outage+10*time.Second); after == nil || after.Member != old.Member {
		t.Errorf("after the outage, want %s writable again (restart in place), got %+v", old.Member, after)
	}
}

// TestCheckerCatchesSlowFencing breaks the timing assumption (every
// immediate stop outlasts fence_timeout) and expects the checker to find a
// second writer. The fence process is left out: its SIGKILL at R + D/2 does
// not depend on how long an immediate stop takes.
func TestCheckerCatchesSlowFencing(t *testing.T) {
	var script []Fault
	for at := 30 * time.Second; at < 170*time.Second; at += 20 * time.Second {
		script = append(script, Fault{At: at, Kind: PartitionDCS, Member: "leader", Duration: 10 * time.Second})
	}
	for seed := int64(1); seed <= 5; seed++ {
		r := Run(Config{Seed: seed, NoFenceProcess: true, Faults: FaultConfig{Script: script, FenceOverrun: 4}})
		if r.Failed() && r.Violations[0].Kind == "single-writer" {
			return
		}
	}
	t.Fatal("fencing slower than fence_timeout went unnoticed")
}

// TestWithoutFenceProcess pauses the leader's agent (not PostgreSQL) for
// longer than TTL: without the fence process its PostgreSQL keeps
// committing after another member's promotion, which the checker
// classifies as needs_watchdog; with it, the postmaster is killed at the
// deadline.
func TestWithoutFenceProcess(t *testing.T) {
	at := 30 * time.Second
	pause := Fault{At: at, Kind: PauseAgent, Member: "leader", Duration: 3 * dyn.TTLDuration()}

	r := scenarioWith(t, Config{Duration: 90 * time.Second, NoFenceProcess: true}, pause)
	if r.Stats.NeedsWatchdog["agent paused"] == 0 {
		t.Errorf("without the fence process, want a stale primary classified as needs_watchdog, got %v", r.Stats.NeedsWatchdog)
	}

	r = scenarioWith(t, Config{Duration: 90 * time.Second}, pause)
	if len(r.Stats.NeedsWatchdog) > 0 {
		t.Errorf("with the fence process: stale primaries %v", r.Stats.NeedsWatchdog)
	}
	old := leaderBefore(t, r, at)
	if limit := at + dyn.RenewDeadline() + dyn.FenceTimeoutDuration(); old.End == 0 || old.End > limit {
		t.Errorf("the fence process did not stop %s by %s (term end %s)", old.Member, fmtDur(limit), fmtDur(old.End))
	}
}

// syncConfig is a fault-free run in synchronous mode.
func syncConfig(d time.Duration) Config {
	c := cluster.DefaultDynamicConfig()
	c.SynchronousMode = cluster.SyncOn
	return Config{Duration: d, Dynamic: c}
}

// TestScenarioSyncStandbyPromoted: in synchronous mode the leader publishes
// a synchronous standby once it has caught up (SyncSetLSN, StandbyFlush),
// so losing the leader's host promotes that standby without losing an
// acknowledged commit.
func TestScenarioSyncStandbyPromoted(t *testing.T) {
	at := 30 * time.Second
	r := scenarioWith(t, syncConfig(120*time.Second), Fault{At: at, Kind: KillNode, Member: "leader", Duration: 40 * time.Second})
	old := leaderBefore(t, r, at)
	next := nextTerm(r, old.Member, at)
	if next == nil || next.How != "promote" {
		t.Fatalf("no synchronous standby was promoted after the leader's host was killed: %+v", next)
	}
	if d := next.Start - at; d > dyn.TTLDuration()+2*time.Second {
		t.Errorf("promotion took %s after the kill, want about TTL", d)
	}
	if !r.Stats.Healed {
		t.Errorf("cluster did not heal: %s", r.Stats.Unhealed)
	}
}

// TestScenarioSyncNamesSurviveAgentRestart: the leader's agent is killed
// and restarts while PostgreSQL keeps running; the postmaster then dies
// (the killed agent's fence process fires at its deadline, and later a
// crash) and the new agent restarts it in place each time. Every such
// start must keep synchronous_standby_names, which the new agent read back
// from the data directory, so commits keep waiting for the published
// standby and a later failover to it loses none.
func TestScenarioSyncNamesSurviveAgentRestart(t *testing.T) {
	r := scenarioWith(t, syncConfig(150*time.Second),
		Fault{At: 30 * time.Second, Kind: KillAgent, Member: "leader", Duration: 2 * time.Second},
		Fault{At: 40 * time.Second, Kind: KillPostmaster, Member: "leader"},
		Fault{At: 60 * time.Second, Kind: KillNode, Member: "leader", Duration: 40 * time.Second})
	old := leaderBefore(t, r, 60*time.Second)
	if old.How != "start" {
		t.Fatalf("the leader was not restarted in place after its postmaster crashed: %+v", old)
	}
	starts := 0
	for _, l := range r.Trace {
		var at float64
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "%fs", &at); err != nil || at < 30 ||
			!strings.Contains(l, old.Member+": postgres starting as primary") {
			continue
		}
		starts++
		if !strings.Contains(l, "synchronous_standby_names [") {
			t.Errorf("the restarted agent started PostgreSQL without synchronous_standby_names: %q", l)
		}
	}
	if starts == 0 {
		t.Error("PostgreSQL was not restarted as primary after the agent restart")
	}
	if next := nextTerm(r, old.Member, 60*time.Second); next == nil || next.How != "promote" {
		t.Fatalf("no synchronous standby was promoted: %+v", next)
	}
	if r.Stats.LostCommits > 0 {
		t.Errorf("%d acknowledged commits lost", r.Stats.LostCommits)
	}
}

// quorumConfig is a fault-free run in quorum commit mode
// (synchronous_mode quorum, ANY 1 of the replicas).
func quorumConfig(d time.Duration) Config {
	c := syncConfig(d)
	c.Dynamic.SynchronousMode = cluster.SyncQuorum
	return c
}

// TestScenarioQuorumStandbyPromoted: in quorum mode the leader lists both
// replicas as ANY 1 and publishes them with quorum 1; when its host is
// lost, the replica that sees the other one and has the most WAL is
// promoted without losing an acknowledged commit.
func TestScenarioQuorumStandbyPromoted(t *testing.T) {
	at := 30 * time.Second
	r := scenarioWith(t, quorumConfig(120*time.Second), Fault{At: at, Kind: KillNode, Member: "leader", Duration: 40 * time.Second})
	if !traceHas(r, "sync key: ", ", quorum 1") {
		t.Error("the sync key was never published with quorum 1")
	}
	old := leaderBefore(t, r, at)
	next := nextTerm(r, old.Member, at)
	if next == nil || next.How != "promote" {
		t.Fatalf("no quorum standby was promoted after the leader's host was killed: %+v", next)
	}
	if d := next.Start - at; d > dyn.TTLDuration()+2*time.Second {
		t.Errorf("promotion took %s after the kill, want about TTL", d)
	}
	if r.Stats.LostCommits > 0 {
		t.Errorf("%d acknowledged commits lost", r.Stats.LostCommits)
	}
	if !r.Stats.Healed {
		t.Errorf("cluster did not heal: %s", r.Stats.Unhealed)
	}
}

// TestScenarioQuorumDoubleFailureRefuses: with three members in quorum
// mode (ANY 1 of two replicas, quorum 1), one replica's host dies and the
// leader's host dies a second later, before the leader could publish a
// safer state. The surviving replica cannot show it holds every
// acknowledged commit (the other replica may have confirmed commits
// alone), so it refuses to promote until that replica is back.
func TestScenarioQuorumDoubleFailureRefuses(t *testing.T) {
	at, back := 30*time.Second, 70*time.Second
	probe := scenarioWith(t, quorumConfig(at+time.Second))
	leader := leaderBefore(t, probe, at).Member
	replica := "m1"
	for _, name := range []string{"m1", "m2", "m3"} {
		if name != leader {
			replica = name
		}
	}
	r := scenarioWith(t, quorumConfig(150*time.Second),
		Fault{At: at, Kind: KillNode, Member: replica, Duration: back - at},
		Fault{At: at + time.Second, Kind: KillNode, Member: leader, Duration: 60 * time.Second})
	if next := nextTerm(r, leader, at); next != nil && next.Start < back {
		t.Fatalf("%s was promoted at %s although it could not see the other quorum standby", next.Member, fmtDur(next.Start))
	}
	if !traceHas(r, "must compare its WAL with 1 other listed members") {
		t.Error("no refusal naming the quorum in the trace")
	}
	if next := nextTerm(r, leader, back); next == nil || next.How != "promote" {
		t.Errorf("no promotion once the second replica was back: %+v", next)
	}
	if r.Stats.LostCommits > 0 {
		t.Errorf("%d acknowledged commits lost", r.Stats.LostCommits)
	}
}

// traceHas reports whether a trace line contains every part.
func traceHas(r Result, parts ...string) bool {
	for _, l := range r.Trace {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestScenarioLeaderRestartsDuringRewind: the old leader comes back and
// runs pg_rewind against the new leader, whose host goes down for a second
// and restarts in place (same leader, same timeline) while pg_rewind reads
// from it. The failed rewind is transient: it must be retried, and the
// cluster heal without an operator.
func TestScenarioLeaderRestartsDuringRewind(t *testing.T) {
	r := scenario(t, 120*time.Second,
		Fault{At: 30 * time.Second, Kind: KillNode, Member: "leader", Duration: 40 * time.Second},
		// The old leader's agent restarts at 70 s and starts pg_rewind at
		// once; it reads the source for at least 400 ms.
		Fault{At: 70100 * time.Millisecond, Kind: KillNode, Member: "leader", Duration: time.Second})
	failed := false
	for _, l := range r.Trace {
		failed = failed || strings.Contains(l, "task rewind failed")
	}
	if !failed {
		t.Fatal("the scenario no longer makes the first pg_rewind fail; adjust the fault times")
	}
	if r.Stats.Promotions != 1 {
		t.Errorf("%d promotions, want 1: the second fault must restart the new leader in place", r.Stats.Promotions)
	}
	if !r.Stats.Healed {
		t.Errorf("cluster did not heal after a transient pg_rewind failure: %s", r.Stats.Unhealed)
	}
}
