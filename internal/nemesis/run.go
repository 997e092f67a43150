package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Run is one execution of a scenario on a healthy environment; scenarios
// inject their fault through it.
type Run struct {
	Env *Env
	W   *Workload
	// Leader is the leader when the fault was injected; Replicas the rest.
	Leader   string
	Replicas []string
	// Notes collects what the scenario observed beyond the checkers.
	Notes []string
	// Violations are scenario-specific failures (a promotion that must
	// not happen, a refused switchover that should have succeeded, ...).
	Violations []string
}

// Notef records an observation.
func (r *Run) Notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Failf records a scenario-specific violation.
func (r *Run) Failf(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// Hold keeps the fault in place for d while the workload runs. This is
// the fault's duration, a parameter of the scenario, not a wait for a
// condition.
func (r *Run) Hold(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// WaitView polls the DCS until cond holds or timeout passes; it returns
// the last view and whether cond held.
func (r *Run) WaitView(ctx context.Context, timeout time.Duration, cond func(*cluster.Cluster) bool) (*cluster.Cluster, bool) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := r.Env.Cluster.WaitFor(wctx, cond)
	return v, err == nil
}

// WaitNewLeader waits until a member other than the injected leader
// holds the key; it returns the new leader or "".
func (r *Run) WaitNewLeader(ctx context.Context, timeout time.Duration) string {
	v, ok := r.WaitView(ctx, timeout, func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.Name != r.Leader && l.Role == cluster.RolePrimary && l.State == cluster.StateRunning
	})
	if !ok {
		return ""
	}
	return v.LeaderName()
}

// ExpectNewLeader waits up to 30 s for another member to take over and
// records a violation if none does.
func (r *Run) ExpectNewLeader(ctx context.Context) {
	if r.WaitNewLeader(ctx, 30*time.Second) == "" {
		r.Failf("no new leader within 30 s")
	}
}

// Result is the outcome of one run.
type Result struct {
	Scenario  int
	Mode      Mode
	Verdict   Verdict
	Failovers int
	// Converge is the converged checker's verdict.
	Converge Convergence
	// Healed: after converging, the DCS view showed a healthy cluster
	// (in synchronous modes with published synchronous standbys).
	Healed     bool
	Notes      []string
	Violations []string
	Err        error
}

// Passed applies the rules every run must satisfy plus the scenario's.
func (res Result) Passed() bool { return len(res.Problems()) == 0 }

// Problems lists why a run failed.
func (res Result) Problems() []string {
	var p []string
	if res.Err != nil {
		p = append(p, "error: "+res.Err.Error())
	}
	if res.Verdict.MaxWritablePrimaries > 1 {
		p = append(p, fmt.Sprintf("%d writable primaries at once", res.Verdict.MaxWritablePrimaries))
	}
	if res.Mode.synchronous() && res.Verdict.AckedLost > 0 {
		p = append(p, fmt.Sprintf("%d acknowledged writes lost in synchronous mode", res.Verdict.AckedLost))
	}
	if c := res.Converge.Problem(); c != "" {
		p = append(p, c)
	} else if res.Converge.Converged && !res.Healed {
		p = append(p, "converged, but the DCS view did not show a healthy cluster within 60 s")
	}
	return append(p, res.Violations...)
}

// Runner executes scenarios on one environment, healing between runs.
type Runner struct {
	Env    *Env
	nextID int64
}

// Execute runs one scenario once.
func (rn *Runner) Execute(ctx context.Context, sc Scenario) Result {
	env := rn.Env
	res := Result{Scenario: sc.Num, Mode: env.opts.Mode}
	hctx, cancel := context.WithTimeout(ctx, 150*time.Second)
	err := env.Heal(hctx)
	cancel()
	if err != nil {
		res.Err = fmt.Errorf("cluster not healthy before the run: %w", err)
		return res
	}
	view, err := env.View(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	// The DCS view may be a loop old: ask the leader itself that every
	// replica streams from it now (a replica that lost its connection
	// retries only every wal_retrieve_retry_interval).
	if err := env.WaitStreaming(ctx, view.LeaderName(), 60*time.Second); err != nil {
		res.Err = fmt.Errorf("cluster not healthy before the run: %w", err)
		return res
	}
	history := len(view.History)
	r := &Run{Env: env, Leader: view.LeaderName()}
	for _, m := range env.Members {
		if m != r.Leader {
			r.Replicas = append(r.Replicas, m)
		}
	}
	start := time.Now()
	r.W = StartWorkload(env.Targets(), rn.nextID, start)
	// The workload must be writing before the fault.
	if !r.W.WaitAcks(ctx, r.Leader, 10, 15*time.Second) {
		ops, _ := r.W.Stop()
		rn.nextID = maxID(ops, rn.nextID)
		res.Err = errors.New("the workload got no acknowledgement from the leader before the fault")
		return res
	}
	env.logf("scenario %d (%s): fault on leader %s", sc.Num, env.opts.Mode, r.Leader)
	inject := r.W.Now()
	if err := sc.Inject(ctx, r); err != nil {
		res.Err = err
	}
	// The heal undoes the faults and nothing more: no operator action.
	// From its end the converged checker watches the members themselves.
	if err := env.UndoFaults(); err != nil {
		res.Err = errors.Join(res.Err, fmt.Errorf("undoing the faults: %w", err))
	}
	healEnd := time.Now()
	res.Converge = watchConvergence(ctx, env.ProbeMembers, healEnd, sc.convergeBound(), convergeSettle, convergePoll)
	res.Converge.OperatorRequired = sc.OperatorRequired
	if res.Converge.Converged {
		env.logf("scenario %d (%s): converged %s after the heal", sc.Num, env.opts.Mode, res.Converge.Time.Round(time.Millisecond))
		// The members agree; the DCS view (and in synchronous modes the
		// published standbys) follows within a loop or two.
		hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := env.WaitHealthy(hctx)
		cancel()
		res.Healed = err == nil
		if err != nil {
			env.logf("cluster not healthy in the DCS view after converging: %v", err)
		}
	} else {
		env.logf("scenario %d (%s): not converged within %s: %v", sc.Num, env.opts.Mode, res.Converge.Bound, res.Converge.Stuck)
	}
	if res.Healed {
		// One acknowledged write after healing closes the run.
		leader := env.Leader(ctx)
		r.W.WaitAcks(ctx, leader, r.W.AckCount(leader)+5, 30*time.Second)
	}
	end := r.W.Now()
	ops, samples := r.W.Stop()
	rn.nextID = maxID(ops, rn.nextID)
	final, err := rn.finalRead(ctx)
	if err != nil {
		// Without the final data nothing can be said about lost writes;
		// the run fails on this error, not on invented losses.
		res.Err = errors.Join(res.Err, fmt.Errorf("final read: %w", err))
		final = ackedIDs(ops)
	}
	if v, err := env.View(ctx); err == nil {
		res.Failovers = len(v.History) - history
	}
	res.Verdict = Check(ops, samples, final, r.W.Seen(), inject, end)
	res.Notes, res.Violations = r.Notes, r.Violations
	if n := res.Converge.Note(); n != "" {
		res.Notes = append(res.Notes, n)
	}
	if sc.Check != nil {
		res.Violations = append(res.Violations, sc.Check(res)...)
	}
	if !res.Converge.Converged {
		// The verdict is taken; only now may the harness act as an
		// operator, so that the next run starts from a healthy cluster.
		for _, a := range env.ReinitNeedsReinit(ctx) {
			res.Notes = append(res.Notes, "after the verdict, for the next run, the harness ran "+a)
		}
	}
	env.logf("scenario %d (%s): %s", sc.Num, env.opts.Mode, Summary(res))
	return res
}

// finalRead reads every id from the leader, retrying until a leader
// answers.
func (rn *Runner) finalRead(ctx context.Context) (map[int64]bool, error) {
	deadline := time.Now().Add(60 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		if leader := rn.Env.Leader(ctx); leader != "" {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ids, err := ReadIDs(rctx, rn.Env.DSN(leader))
			cancel()
			if err == nil {
				return ids, nil
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("no leader answered: %v", lastErr)
}

func maxID(ops []Op, floor int64) int64 {
	for _, op := range ops {
		floor = max(floor, op.ID)
	}
	return floor
}

// Summary is a one-line description of a result.
func Summary(res Result) string {
	v := res.Verdict
	s := fmt.Sprintf("acked=%d acked_lost=%d unknown=%d recovered=%d visible_then_lost=%d max_writable_primaries=%d failovers=%d write_gap=%s role_overlap=%s primary200_overlap=%s late_acks=%d",
		v.Acked, v.AckedLost, v.Unknown, v.Recovered, v.VisibleThenLost, v.MaxWritablePrimaries, res.Failovers,
		v.WriteGap.Round(time.Millisecond), v.RoleOverlap.Round(time.Millisecond), v.Primary200Overlap.Round(time.Millisecond), v.LateAcks)
	if v.HasTransition {
		s += " dual_write_overlap=" + v.DualWriteOverlap.Round(time.Millisecond).String()
	}
	switch c := res.Converge; {
	case c.Converged:
		s += " time_to_converge=" + c.Time.Round(time.Millisecond).String()
	case c.Late:
		s += fmt.Sprintf(" time_to_converge=%s (bound %s)", c.Time.Round(time.Millisecond), c.Bound)
	case c.Bound > 0:
		s += fmt.Sprintf(" not_converged_within=%s", c.Bound)
	}
	if p := res.Problems(); len(p) > 0 {
		s += " FAILED: " + fmt.Sprint(p)
	}
	if len(res.Notes) > 0 {
		s += " notes: " + fmt.Sprint(res.Notes)
	}
	return s
}

// others returns the members except the excluded ones.
func others(all []string, except ...string) []string {
	var out []string
	for _, m := range all {
		if !slices.Contains(except, m) {
			out = append(out, m)
		}
	}
	return out
}

// memberLSN is the highest WAL position a member published.
func memberLSN(m *cluster.Member) int64 {
	var lsn int64
	for _, p := range []*int64{m.XLogLocation, m.ReceiveLSN, m.ReplayLSN} {
		if p != nil {
			lsn = max(lsn, *p)
		}
	}
	return lsn
}

// WaitPublished reads the leader's current WAL position and waits until
// every listed member has published a position at least as far: the
// leader's own record (what replicas compare their lag with) or the
// replicas' (caught up).
func (r *Run) WaitPublished(ctx context.Context, timeout time.Duration, members ...string) error {
	conn, err := connect(ctx, r.Env.DSN(r.Leader), nil)
	if err != nil {
		return err
	}
	var lsn int64
	err = conn.QueryRow(ctx, "SELECT pg_current_wal_lsn() - '0/0'").Scan(&lsn)
	closeQuietly(conn)
	if err != nil {
		return err
	}
	_, ok := r.WaitView(ctx, timeout, func(v *cluster.Cluster) bool {
		for _, name := range members {
			m := v.Member(name)
			if m == nil || memberLSN(m) < lsn {
				return false
			}
		}
		return true
	})
	if !ok {
		return fmt.Errorf("members %v did not publish WAL position %s within %s", members, cluster.FormatLSN(lsn), timeout)
	}
	return nil
}

// ackedIDs is the set of acknowledged ids.
func ackedIDs(ops []Op) map[int64]bool {
	ids := map[int64]bool{}
	for _, op := range ops {
		if op.Outcome == Acked {
			ids[op.ID] = true
		}
	}
	return ids
}
