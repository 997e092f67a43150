package nemesis

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// leaderStatus is a running primary holding the key, streaming to replicas.
func leaderStatus(name string, tl int, replicas ...string) MemberStatus {
	return MemberStatus{Member: name, State: cluster.StateRunning, Role: cluster.RolePrimary, Timeline: tl,
		HoldsLeaderKey: true, Streaming: replicas}
}

func streamingStatus(name string, tl int) MemberStatus {
	return MemberStatus{Member: name, State: cluster.StateRunning, Role: cluster.RoleReplica, Timeline: tl,
		ReplicationState: cluster.ReplicationStreaming}
}

// healthyRound is m<leader> leading on timeline tl, the others streaming.
func healthyRound(at time.Duration, leader string, tl int) ProbeRound {
	var replicas []string
	for _, m := range []string{"m1", "m2", "m3"} {
		if m != leader {
			replicas = append(replicas, m)
		}
	}
	r := ProbeRound{At: at, Members: []MemberStatus{leaderStatus(leader, tl, replicas...)}}
	for _, m := range replicas {
		r.Members = append(r.Members, streamingStatus(m, tl))
	}
	return r
}

var rewindFailed = MemberStatus{Member: "m1", State: cluster.StateRewindFailed, Role: cluster.RoleReplica,
	Reason: "pg_rewind failed and remove_data_directory_on_rewind_failure is off: waiting for an operator (regent reinit)"}

// stuckRound is m2 leading on timeline 3, m3 streaming, m1 as given.
func stuckRound(at time.Duration, m1 MemberStatus) ProbeRound {
	return ProbeRound{At: at, Members: []MemberStatus{m1, leaderStatus("m2", 3, "m3"), streamingStatus("m3", 3)}}
}

// every returns rounds from `from` to `to` (inclusive) every 250 ms.
func every(from, to time.Duration, round func(time.Duration) ProbeRound) []ProbeRound {
	var out []ProbeRound
	for at := from; at <= to; at += 250 * time.Millisecond {
		out = append(out, round(at))
	}
	return out
}

func TestConvergeAfterRewind(t *testing.T) {
	rewinding := MemberStatus{Member: "m1", State: cluster.StateRewinding, Role: cluster.RoleReplica, Reason: "rewinding"}
	rounds := every(0, sec(4.75), func(at time.Duration) ProbeRound { return stuckRound(at, rewinding) })
	rounds = append(rounds, every(sec(5), sec(8), func(at time.Duration) ProbeRound { return healthyRound(at, "m2", 3) })...)
	c := judgeConvergence(rounds, 60*time.Second, convergeSettle)
	if !c.Converged || c.Late || c.Time != sec(5) {
		t.Fatalf("judgeConvergence = %+v, want converged at 5s", c)
	}
	if p, n := c.Problem(), c.Note(); p != "" || n != "" {
		t.Errorf("Problem = %q, Note = %q; want none", p, n)
	}
}

func TestNeverConvergesNamesTheStuckMember(t *testing.T) {
	rounds := every(0, sec(70), func(at time.Duration) ProbeRound { return stuckRound(at, rewindFailed) })
	c := judgeConvergence(rounds, 60*time.Second, convergeSettle)
	if c.Converged || c.Late {
		t.Fatalf("judgeConvergence = %+v, want not converged", c)
	}
	if len(c.Stuck) != 1 || !strings.Contains(c.Stuck[0], `m1: state "rewind failed"`) || !strings.Contains(c.Stuck[0], "waiting for an operator") {
		t.Errorf("Stuck = %q, want m1 with its state and reason", c.Stuck)
	}
	if p := c.Problem(); !strings.Contains(p, "did not converge within 1m0s") || !strings.Contains(p, "rewind failed") {
		t.Errorf("Problem = %q", p)
	}
	res := Result{Converge: c, Healed: false}
	if res.Passed() {
		t.Errorf("a run that did not converge passed: %v", res.Problems())
	}
	if n := c.Note(); !strings.HasPrefix(n, "not converged: m1") {
		t.Errorf("Note = %q", n)
	}

	// The same run, for a scenario that documents why an operator is needed.
	c.OperatorRequired = "the fault destroys the member's data"
	res = Result{Converge: c}
	if !res.Passed() {
		t.Errorf("operator-required run failed: %v", res.Problems())
	}
	if n := c.Note(); !strings.HasPrefix(n, "operator required: the fault destroys the member's data (m1: state \"rewind failed\"") {
		t.Errorf("Note = %q", n)
	}
}

func TestConvergesAfterTheBoundFails(t *testing.T) {
	rounds := every(0, sec(74.75), func(at time.Duration) ProbeRound { return stuckRound(at, rewindFailed) })
	rounds = append(rounds, every(sec(75), sec(78), func(at time.Duration) ProbeRound { return healthyRound(at, "m2", 3) })...)
	c := judgeConvergence(rounds, 60*time.Second, convergeSettle)
	if c.Converged || !c.Late || c.Time != sec(75) {
		t.Fatalf("judgeConvergence = %+v, want late at 75s", c)
	}
	if p := c.Problem(); !strings.Contains(p, "converged only 1m15s after the heal, beyond the scenario's bound of 1m0s") {
		t.Errorf("Problem = %q", p)
	}
	if (Result{Converge: c, Healed: true}).Passed() {
		t.Error("a run that converged after its bound passed")
	}
}

func TestFlappingLeadersNeverConverge(t *testing.T) {
	// Every round on its own looks healthy, but the leader changes every
	// second: not the same leader for the settle time.
	flap := every(0, sec(70), func(at time.Duration) ProbeRound {
		if int(at/time.Second)%2 == 0 {
			return healthyRound(at, "m1", 4)
		}
		return healthyRound(at, "m2", 5)
	})
	if c := judgeConvergence(flap, 60*time.Second, convergeSettle); c.Converged || c.Late {
		t.Errorf("flapping leaders judged converged: %+v", c)
	}
	// Two members at once claim to be primary.
	two := every(0, sec(70), func(at time.Duration) ProbeRound {
		r := healthyRound(at, "m1", 4)
		r.Members[1] = leaderStatus("m2", 4)
		return r
	})
	c := judgeConvergence(two, 60*time.Second, convergeSettle)
	if c.Converged || len(c.Stuck) != 1 || !strings.Contains(c.Stuck[0], "2 members report role primary (m1, m2)") {
		t.Errorf("two primaries: %+v", c)
	}
}

func TestReplicaMustStreamFromTheLeaderOnItsTimeline(t *testing.T) {
	for name, mutate := range map[string]func(*ProbeRound){
		"old timeline":        func(r *ProbeRound) { r.Members[1].Timeline = 2 },
		"not in the sender":   func(r *ProbeRound) { r.Members[0].Streaming = []string{"m3"} },
		"archive recovery":    func(r *ProbeRound) { r.Members[1].ReplicationState = cluster.ReplicationArchive },
		"no answer":           func(r *ProbeRound) { r.Members[2] = MemberStatus{Member: "m3", Err: "connection refused"} },
		"leader without key":  func(r *ProbeRound) { r.Members[0].HoldsLeaderKey = false },
		"leader not running":  func(r *ProbeRound) { r.Members[0].State = cluster.StateStarting },
		"replica not running": func(r *ProbeRound) { r.Members[2].State = cluster.StateCrashed },
	} {
		rounds := every(0, sec(10), func(at time.Duration) ProbeRound {
			r := healthyRound(at, "m2", 3)
			// healthyRound puts the leader first: m2, m1, m3.
			mutate(&r)
			return r
		})
		if c := judgeConvergence(rounds, 5*time.Second, convergeSettle); c.Converged || len(c.Stuck) == 0 {
			t.Errorf("%s: judged %+v, want not converged with a reason", name, c)
		}
	}
}

func TestConvergenceMustHoldForTheSettleTime(t *testing.T) {
	rounds := every(0, sec(9), func(at time.Duration) ProbeRound { return stuckRound(at, rewindFailed) })
	rounds = append(rounds, healthyRound(sec(9.25), "m2", 3), healthyRound(sec(10), "m2", 3))
	if c := judgeConvergence(rounds, 5*time.Second, convergeSettle); c.Converged || c.Late {
		t.Errorf("judged %+v on 0.75 s of healthy rounds, want not converged", c)
	}
	if c := judgeConvergence(nil, 5*time.Second, convergeSettle); c.Converged || len(c.Stuck) == 0 {
		t.Errorf("no rounds judged %+v", c)
	}
}

func TestWatchConvergenceStopsOnAVerdict(t *testing.T) {
	var calls atomic.Int64
	probe := func(context.Context) []MemberStatus {
		if calls.Add(1) <= 3 {
			return stuckRound(0, rewindFailed).Members
		}
		return healthyRound(0, "m2", 3).Members
	}
	c := watchConvergence(context.Background(), probe, time.Now(), time.Minute, 50*time.Millisecond, 5*time.Millisecond)
	if !c.Converged || c.Bound != time.Minute {
		t.Fatalf("watchConvergence = %+v, want converged", c)
	}
	never := func(context.Context) []MemberStatus { return stuckRound(0, rewindFailed).Members }
	c = watchConvergence(context.Background(), never, time.Now(), 20*time.Millisecond, 10*time.Millisecond, 5*time.Millisecond)
	if c.Converged || c.Late || len(c.Stuck) == 0 {
		t.Fatalf("watchConvergence = %+v, want not converged", c)
	}
}

func TestConvergeColumns(t *testing.T) {
	ok := func(s float64) Result {
		return Result{Converge: Convergence{Bound: time.Minute, Converged: true, Time: sec(s)}}
	}
	stuck := Result{Converge: Convergence{Bound: time.Minute, Stuck: []string{"m1: rewind failed"}}}
	late := Result{Converge: Convergence{Bound: time.Minute, Late: true, Time: sec(75)}}
	early := Result{Err: context.DeadlineExceeded} // never reached the heal
	for _, tc := range []struct {
		name                string
		results             []Result
		conv, median, worst string
	}{
		{"all converged", []Result{ok(3), ok(5)}, "2/2", "4.00 s", "5.00 s"},
		{"odd", []Result{ok(9), ok(1), ok(4)}, "3/3", "4.00 s", "9.00 s"},
		{"one never", []Result{ok(3), stuck}, "1/2", "not converged", "not converged"},
		{"median converged, worst not", []Result{ok(3), ok(4), stuck}, "2/3", "4.00 s", "not converged"},
		{"late", []Result{ok(3), late, ok(2)}, "2/3", "3.00 s", "75.00 s"},
		{"error before the heal", []Result{early}, "0/1", "–", "–"},
	} {
		c, m, w := convergeColumns(tc.results)
		if c != tc.conv || m != tc.median || w != tc.worst {
			t.Errorf("%s: convergeColumns = %q, %q, %q; want %q, %q, %q", tc.name, c, m, w, tc.conv, tc.median, tc.worst)
		}
	}
	op := stuck
	op.Converge.OperatorRequired = "the data directory is destroyed"
	if c, _, _ := convergeColumns([]Result{ok(3), op}); c != "1/2, operator required: the data directory is destroyed" {
		t.Errorf("operator-required row: %q", c)
	}
}

func TestMarkdownHasConvergeColumns(t *testing.T) {
	rows := []Row{
		{Scenario: Scenario{Num: 3, Name: "host loss"}, Mode: Sync, Results: []Result{
			{Converge: Convergence{Bound: time.Minute, Converged: true, Time: sec(7.5)}, Healed: true, Verdict: Verdict{MaxWritablePrimaries: 1}},
			{Converge: Convergence{Bound: time.Minute, Stuck: []string{`m1: state "rewind failed", role replica`}}, Verdict: Verdict{MaxWritablePrimaries: 1}, Notes: []string{"not converged: m1"}},
		}},
		{Scenario: Scenario{Num: 17, Name: "disk full"}, Mode: Async, Skipped: "no loop device"},
	}
	md := Markdown(rows, "")
	lines := strings.Split(md, "\n")
	var header, sep, row, skipped string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "| # |"):
			header = l
		case strings.HasPrefix(l, "|---"):
			sep = l
		case strings.HasPrefix(l, "| 3 |"):
			row = l
		case strings.HasPrefix(l, "| 17 |"):
			skipped = l
		}
	}
	if !strings.Contains(header, "| write gap max | converged | time to converge median | time to converge worst | unknown / recovered |") {
		t.Errorf("header = %q", header)
	}
	if !strings.Contains(row, "| 1/2 | not converged | not converged |") {
		t.Errorf("row = %q", row)
	}
	cells := func(l string) int { return strings.Count(l, "|") }
	if cells(sep) != cells(header) || cells(row) != cells(header) || cells(skipped) != cells(header) {
		t.Errorf("column counts differ: header %d, separator %d, row %d, skipped %d", cells(header), cells(sep), cells(row), cells(skipped))
	}
	if !strings.Contains(md, "- 3 sync run 2: did not converge within 1m0s after the heal: m1: state \"rewind failed\", role replica") {
		t.Errorf("failed runs do not name the stuck member:\n%s", md)
	}
}
