package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"time"
)

// Sample is one repetition of a scenario. Values are in seconds, keyed by
// what they measure ("write", "api", "gap", "duration").
type Sample struct {
	Values map[string]float64 `json:"values,omitempty"`
	// Acked writes during the repetition and how many of them were missing
	// on the final primary.
	Acked int    `json:"acked"`
	Lost  int    `json:"lost"`
	Err   string `json:"error,omitempty"`
}

// scenarioRun holds what the scenarios of one cluster share.
type scenarioRun struct {
	o      *Options
	s      System
	sync   bool
	clk    clock
	ids    *atomic.Int64
	logf   func(format string, args ...any)
	leader string
	// loopWait is the system's loop interval under the profile.
	loopWait time.Duration
}

// baseline is how long the client writes before the fault, to show that
// writes were flowing: 2 s plus a random part of up to one loop_wait, so
// that faults hit every phase of the agents' loops (lease renewals happen
// once per loop; without the random part, the fault would always land at
// about the same phase after the health check).
func (r *scenarioRun) baseline() time.Duration {
	base := 2 * time.Second
	if r.o.Smoke {
		base = time.Second
	}
	if r.loopWait > 0 {
		base += rand.N(r.loopWait)
	}
	return base
}

// begin waits for a healthy cluster and starts the client.
func (r *scenarioRun) begin(ctx context.Context) (*writer, error) {
	leader, err := waitHealthy(ctx, r.s, r.sync, r.o.RecoverTimeout)
	if err != nil {
		return nil, err
	}
	r.leader = leader
	w := startWriter(ctx, r.s, r.clk, r.ids)
	if err := sleepCtx(ctx, r.baseline()); err != nil {
		w.stop()
		return nil, err
	}
	if _, ok := w.first(func(a Ack) bool { return a.Member == leader }); !ok {
		w.stop()
		return nil, fmt.Errorf("no write succeeded on the primary %s before the fault", leader)
	}
	return w, nil
}

// finish waits for a healthy cluster again, stops the client and counts
// the acknowledged writes missing on the final primary.
func (r *scenarioRun) finish(ctx context.Context, w *writer, smp *Sample) error {
	leader, err := waitHealthy(ctx, r.s, r.sync, r.o.RecoverTimeout)
	acks := w.stop()
	smp.Acked = len(acks)
	if err != nil {
		return fmt.Errorf("after the fault: %w", err)
	}
	r.leader = leader
	lost, err := countLost(ctx, r.s, leader, acks)
	if err != nil {
		return fmt.Errorf("counting lost writes on %s: %w", leader, err)
	}
	smp.Lost = lost
	return nil
}

// waitUntil polls cond every 20 ms until it holds or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// hostLoss kills the primary's agent and every PostgreSQL process of it
// with SIGKILL (as if the host died) and measures the time until a write
// succeeds on another member and until another member's GET /primary
// answers 200. Then the dead member's agent is started again and must
// rejoin.
func (r *scenarioRun) hostLoss(ctx context.Context) (smp Sample) {
	smp.Values = map[string]float64{}
	w, err := r.begin(ctx)
	if err != nil {
		smp.Err = err.Error()
		return smp
	}
	old := r.leader
	p := startPoller(ctx, r.s, r.clk)
	dataDir := member(r.s, old).DataDir
	pgPIDs := postgresProcsIn(dataDir)
	killAt := r.clk.now()
	killErr := r.s.KillAgent(old)
	for _, pid := range pgPIDs {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	killPostgresIn(dataDir, 5*time.Second)
	if killErr != nil {
		smp.Err = killErr.Error()
	}
	var wAck Ack
	var pEv pollEvent
	var gotW, gotP bool
	waitUntil(ctx, r.o.FailoverTimeout, func() bool {
		if !gotW {
			wAck, gotW = w.first(func(a Ack) bool { return a.Member != old && a.Sent > killAt })
		}
		if !gotP {
			pEv, gotP = p.first(func(e pollEvent) bool { return e.Member != old && e.At > killAt && e.Code == 200 })
		}
		return gotW && gotP
	})
	p.stop()
	if gotW {
		smp.Values["write"] = (wAck.At - killAt).Seconds()
	}
	if gotP {
		smp.Values["api"] = (pEv.At - killAt).Seconds()
	}
	if !gotW || !gotP {
		smp.Err = joinErr(smp.Err, fmt.Sprintf("no failover within %s (write on new primary: %v, GET /primary 200: %v)", r.o.FailoverTimeout, gotW, gotP))
	} else {
		r.logf("host loss of %s: write on %s after %.2fs, GET /primary 200 on %s after %.2fs",
			old, wAck.Member, smp.Values["write"], pEv.Member, smp.Values["api"])
	}
	// Keep writing for a moment on the new primary, then bring the dead
	// member back.
	_ = sleepCtx(ctx, time.Second)
	if err := r.s.StartAgent(old); err != nil {
		smp.Err = joinErr(smp.Err, "restarting "+old+": "+err.Error())
	}
	if err := r.finish(ctx, w, &smp); err != nil {
		smp.Err = joinErr(smp.Err, err.Error())
	}
	return smp
}

// postmasterCrash kills only the primary's postmaster and measures the
// time until a write succeeds again on any member. A write on the old
// primary counts only over a connection opened after the kill (not on an
// orphaned backend of the killed postmaster).
func (r *scenarioRun) postmasterCrash(ctx context.Context) (smp Sample) {
	smp.Values = map[string]float64{}
	w, err := r.begin(ctx)
	if err != nil {
		smp.Err = err.Error()
		return smp
	}
	old := r.leader
	pm := postmasterPID(member(r.s, old).DataDir)
	if pm == 0 {
		w.stop()
		smp.Err = "no postmaster found for " + old
		return smp
	}
	killAt := r.clk.now()
	if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
		w.stop()
		smp.Err = err.Error()
		return smp
	}
	var ack Ack
	var got bool
	waitUntil(ctx, r.o.FailoverTimeout, func() bool {
		ack, got = w.first(func(a Ack) bool {
			return a.Sent > killAt && (a.Member != old || a.ConnAt > killAt)
		})
		return got
	})
	if got {
		smp.Values["write"] = (ack.At - killAt).Seconds()
		r.logf("postmaster crash on %s: writes back on %s after %.2fs", old, ack.Member, smp.Values["write"])
	} else {
		smp.Err = fmt.Sprintf("writes not back within %s", r.o.FailoverTimeout)
	}
	_ = sleepCtx(ctx, time.Second)
	if err := r.finish(ctx, w, &smp); err != nil {
		smp.Err = joinErr(smp.Err, err.Error())
	}
	return smp
}

// switchover asks for a switchover to a replica and measures the longest
// gap between two acknowledged writes from the request until 2 s after
// the answer, and the duration of the request.
func (r *scenarioRun) switchover(ctx context.Context) (smp Sample) {
	smp.Values = map[string]float64{}
	w, err := r.begin(ctx)
	if err != nil {
		smp.Err = err.Error()
		return smp
	}
	old := r.leader
	// In synchronous mode only the synchronous standby may take over, and
	// which member that is can change while the old leader catches up: a
	// refused request (412, nothing changed) is retried with a fresh pick.
	var candidate string
	var reqAt, doneAt time.Duration
	for attempt := 1; ; attempt++ {
		candidate = pickCandidate(ctx, r.s, old)
		reqAt = r.clk.now()
		sctx, cancel := context.WithTimeout(ctx, r.o.FailoverTimeout)
		err = r.s.Switchover(sctx, old, candidate)
		cancel()
		doneAt = r.clk.now()
		if err == nil || !errors.Is(err, errRefused) || attempt == 5 {
			break
		}
		r.logf("switchover to %s refused, trying again: %v", candidate, err)
		_ = sleepCtx(ctx, time.Second)
	}
	if err != nil {
		smp.Err = "switchover: " + err.Error()
		smp.Acked = len(w.stop())
		return smp
	}
	// Writes must be flowing on the candidate before the gap is final.
	waitUntil(ctx, r.o.FailoverTimeout, func() bool {
		_, ok := w.first(func(a Ack) bool { return a.Member == candidate && a.Sent > reqAt })
		return ok
	})
	_ = sleepCtx(ctx, 2*time.Second)
	end := r.clk.now()
	acks := w.snapshot()
	gap, ok := longestGap(acks, reqAt, end)
	if ok {
		smp.Values["gap"] = gap.Seconds()
		smp.Values["duration"] = (doneAt - reqAt).Seconds()
		r.logf("switchover %s -> %s: request took %.2fs, longest write gap %.3fs", old, candidate, smp.Values["duration"], smp.Values["gap"])
	} else {
		smp.Err = joinErr(smp.Err, "no write acknowledged after the switchover")
	}
	if err := r.finish(ctx, w, &smp); err != nil {
		smp.Err = joinErr(smp.Err, err.Error())
	}
	return smp
}

// longestGap is the longest time between two consecutive acknowledged
// writes (acks sorted by At), counting the pairs whose later write was
// acknowledged after from and not after to. ok is false without any such
// pair.
func longestGap(acks []Ack, from, to time.Duration) (time.Duration, bool) {
	var best time.Duration
	ok := false
	for i := 1; i < len(acks); i++ {
		if acks[i].At <= from || acks[i].At > to {
			continue
		}
		if g := acks[i].At - acks[i-1].At; !ok || g > best {
			best, ok = g, true
		}
	}
	return best, ok
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Footprint is the idle cost of a cluster.
type Footprint struct {
	Window time.Duration `json:"window"`
	// Per agent (sorted by member name).
	RSSBytes []int64 `json:"rss_bytes"`
	// RSSAnonBytes (heap, stacks) and RSSFileBytes (mapped executable and
	// libraries) split VmRSS.
	RSSAnonBytes []int64   `json:"rss_anon_bytes"`
	RSSFileBytes []int64   `json:"rss_file_bytes"`
	CPUPerMin    []float64 `json:"cpu_seconds_per_minute"`
	// EtcdPerMin is the gRPC messages etcd received per minute.
	EtcdPerMin float64 `json:"etcd_requests_per_minute"`
	// EtcdByMethod splits EtcdPerMin by gRPC method.
	EtcdByMethod map[string]float64 `json:"etcd_requests_per_minute_by_method"`
}

// footprint measures, with no client traffic, the agents' CPU time and
// etcd's received requests over the window (scaled to a minute), and the
// agents' resident memory at its end.
func (r *scenarioRun) footprint(ctx context.Context, etcdURL string) (*Footprint, error) {
	names := memberNames(r.s)
	pids := map[string]int{}
	cpu0 := map[string]time.Duration{}
	for _, n := range names {
		pids[n] = r.s.AgentPID(n)
		c, err := cpuTime(pids[n])
		if err != nil {
			return nil, err
		}
		cpu0[n] = c
	}
	req0, err := etcdRequests(ctx, etcdURL)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := sleepCtx(ctx, r.o.IdleWindow); err != nil {
		return nil, err
	}
	req1, err := etcdRequests(ctx, etcdURL)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	f := &Footprint{Window: elapsed, EtcdPerMin: (sumValues(req1) - sumValues(req0)) / elapsed.Minutes(), EtcdByMethod: map[string]float64{}}
	for m, v := range req1 {
		if d := v - req0[m]; d > 0 {
			f.EtcdByMethod[m] = d / elapsed.Minutes()
		}
	}
	for _, n := range names {
		if r.s.AgentPID(n) != pids[n] {
			return nil, fmt.Errorf("agent %s restarted during the idle window", n)
		}
		c, err := cpuTime(pids[n])
		if err != nil {
			return nil, err
		}
		mem, err := memStatus(pids[n])
		if err != nil {
			return nil, err
		}
		f.RSSBytes = append(f.RSSBytes, mem["VmRSS"])
		f.RSSAnonBytes = append(f.RSSAnonBytes, mem["RssAnon"])
		f.RSSFileBytes = append(f.RSSFileBytes, mem["RssFile"])
		f.CPUPerMin = append(f.CPUPerMin, (c-cpu0[n]).Seconds()/elapsed.Minutes())
	}
	return f, nil
}

// pickCandidate returns the member the switchover goes to: the
// synchronous standby when the cluster has one (published by the system,
// see System.SyncStandbys, or else pg_stat_replication's sync_state),
// otherwise the first other member by name.
func pickCandidate(ctx context.Context, s System, leader string) string {
	if names := s.SyncStandbys(ctx, leader); len(names) > 0 {
		return names[0]
	}
	if n := syncStandby(ctx, s, leader); n != "" {
		return n
	}
	for _, n := range memberNames(s) {
		if n != leader {
			return n
		}
	}
	return ""
}
