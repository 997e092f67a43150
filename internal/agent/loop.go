package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
)

// loop runs one HA cycle: observe, decide, execute, publish.
func (a *Agent) loop(ctx context.Context) error {
	start := time.Now()
	defer func() { a.metrics.ObserveLoop(time.Since(start)) }()
	obs := a.observe(ctx)
	if a.life.role == "" && obs.PG.Answered && a.task == nil {
		// Found running, not started by this agent: on_start, as Patroni.
		a.pgStarted(map[bool]string{true: cluster.RoleReplica, false: cluster.RolePrimary}[obs.PG.InRecovery])
	}
	d := ha.Decide(obs)
	if d.Is(ha.ProbePeers) {
		obs.Peers = a.probePeers(ctx, obs.Cluster)
		obs.PeersProbed = true
		d = ha.Decide(obs)
	}
	a.logDecision(obs, d)
	a.recordRefusal(ctx, obs, d)
	if len(d.Actions) > 0 {
		a.metrics.RecordDecision(d.Actions[0].Kind.String())
	}
	a.observeSlotMembers(obs.Cluster)
	err := a.execute(ctx, obs, d)
	a.replicaSlots(ctx, obs)
	a.lastDecision = d
	a.publish(ctx, obs)
	if errors.Is(err, ErrRefused) {
		return err
	}
	if err != nil {
		a.log.Warn("action failed", "action", d.Summary(), "err", err)
	}
	return nil
}

// observe gathers the observation for the core. The lease renewal is sent
// first, so that its send time is as late as possible.
func (a *Agent) observe(ctx context.Context) ha.Observation {
	a.checkSuspend()
	a.collectTask()
	a.runScheduledRestart(ctx, time.Now())
	obs := ha.Observation{
		Self: ha.Self{Name: a.cfg.Name, Tags: a.cfg.Tags, WatchdogMissing: a.watchdogMissing(),
			PrePromoteBackoff: a.prePromoteBackoff()},
		Config: a.dyn,
	}

	a.retryPendingRelease(ctx)
	if !a.refreshLease(ctx) && a.dyn.FailsafeMode && a.keyOnMyLease {
		// failsafe_mode: ask the members now rather than after the view
		// load has timed out as well; with etcd unreachable every DCS call
		// of this loop costs retry_timeout, and the leader must hear from
		// its members well within the renew deadline.
		a.failsafeRound(ctx)
		a.armFences()
	}
	view, err := a.loadView(ctx)
	if err != nil {
		obs.DCSError = err.Error()
		a.failsafeRound(ctx)
	} else {
		a.lastView = view
		a.dcsLastSeen = time.Now()
		a.adoptConfig(ctx, view)
		a.applyParameters(ctx)
		obs.Config = a.dyn
		if a.releasePending && view.LeaderName() != a.cfg.Name {
			a.releaseResolved("the leader key no longer names this member")
		}
		a.confirmOwnership(ctx, view)
		a.followTTL(ctx, view)
		a.noteUpstream(view)
		obs.Cluster = view
	}
	a.armFences()

	obs.PG = a.observePostgres(ctx)
	obs.Lease = ha.Lease{ConfirmedSentAt: a.lease.ConfirmedSentAt, TTL: a.lease.TTL, KeyOnMyLease: a.keyOnMyLease}
	obs.Failsafe = a.failsafe.observation()
	if a.task != nil {
		obs.Task = a.task.name
	}
	obs.Now = time.Now()
	obs.Wall = obs.Now.Round(0)
	return obs
}

// refreshLease renews (or grants) the lease, bounded so that a slow etcd
// cannot hold the loop past the renew deadline. It reports whether etcd
// answered.
func (a *Agent) refreshLease(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	sent := time.Now()
	st, err := a.dcs.RefreshLease(rctx)
	a.metrics.ObserveRenewal(time.Since(sent), err == nil)
	if err != nil {
		a.log.Warn("lease renewal failed", "err", err,
			"since_confirmed", time.Since(a.lease.ConfirmedSentAt).Round(time.Millisecond))
		return false
	}
	if st.Regranted && a.keyOnMyLease {
		// The old lease is gone, and with it any leader key on it.
		a.log.Warn("lease was re-granted; the leader key on the old lease is lost")
		a.keyOnMyLease = false
	}
	a.lease = st
	return true
}

func (a *Agent) loadView(ctx context.Context) (*cluster.Cluster, error) {
	rctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	return a.dcs.Load(rctx)
}

// confirmOwnership sets keyOnMyLease from a fresh view. A leader key that
// names this member on another lease (the agent restarted while PostgreSQL
// kept running) is re-attached by a value-compare transaction.
func (a *Agent) confirmOwnership(ctx context.Context, view *cluster.Cluster) {
	l := view.Leader
	switch {
	case l == nil || l.Name != a.cfg.Name:
		a.keyOnMyLease = false
	case l.Lease == int64(a.lease.ID) && a.lease.ID != 0:
		a.keyOnMyLease = true
	default:
		rctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
		defer cancel()
		ok, err := a.dcs.UpdateLeader(rctx)
		if err != nil {
			a.log.Warn("re-attaching leader key to the current lease", "err", err)
		}
		a.keyOnMyLease = ok && err == nil
		if a.keyOnMyLease {
			view.Leader.Lease = int64(a.lease.ID)
			a.log.Info("re-attached the leader key to this agent's lease", "action", "reattach_leader")
		}
	}
}

// applyDynamic adopts the DCS configuration if it is valid.
func (a *Agent) applyDynamic(c cluster.DynamicConfig) {
	if err := c.Validate(); err != nil {
		a.log.Error("ignoring invalid dynamic configuration in the DCS; keeping the previous one", "err", err)
		return
	}
	a.dyn = c
	a.dcs.SetTTL(c.TTLDuration())
	a.dcs.SetRequestTimeout(c.RetryTimeoutDuration())
}

// timing is the dynamic configuration whose deadlines apply to the lease
// this agent holds: ttl is the smaller of the configured one and the TTL
// etcd granted (cluster.DynamicConfig.ForLease). Every deadline the agent
// enforces (renew deadline, lease guard, fence process, watchdog) comes
// from it, never from the configured ttl alone.
func (a *Agent) timing() cluster.DynamicConfig { return a.dyn.ForLease(a.lease.TTL) }

// followTTL moves this member's keys onto a lease granted with the
// configured ttl after it changed (etcd cannot change a lease's TTL). Until
// etcd confirms the move, timing() keeps the smaller of the two TTLs.
func (a *Agent) followTTL(ctx context.Context, view *cluster.Cluster) {
	if !a.dcs.LeaseTTLOutdated() {
		return
	}
	// The new lease is granted after this instant with at least the
	// configured ttl, and the keys are on it or on the current lease: no
	// deadline published from now on may lie beyond either.
	t := a.dyn.ForLease(min(a.lease.TTL, a.dyn.TTLDuration()))
	a.pub.LimitLeaseDeadline(time.Now().Add(t.RenewDeadline()))
	rctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	res, err := a.dcs.MoveLease(rctx)
	a.lease = a.dcs.Lease()
	if err != nil {
		a.log.Warn("moving to a lease with the configured ttl; deadlines keep the smaller ttl until it succeeds",
			"ttl", a.dyn.TTLDuration(), "lease_ttl", a.lease.TTL, "err", err)
		return
	}
	a.keyOnMyLease = res.LeaderMoved
	if res.LeaderMoved && view.Leader != nil {
		view.Leader.Lease = int64(res.Lease.ID)
	}
	a.log.Info("lease re-granted with the configured ttl", "action", "move_lease", "reason", "ttl changed",
		"ttl", res.Lease.TTL, "leader_key_moved", res.LeaderMoved)
}

func (a *Agent) logDecision(o ha.Observation, d ha.Decision) {
	level := slog.LevelInfo
	if d.Is(ha.Wait) && d.Reason == a.lastDecision.Reason {
		level = slog.LevelDebug // do not repeat a steady state every second
	}
	a.log.Log(context.Background(), level, "decision",
		"role", roleOf(o.PG), "timeline", o.PG.Timeline, "lsn", cluster.FormatLSN(o.PG.LSN()),
		"leader", o.Cluster.LeaderName(), "action", d.Summary(), "reason", d.Reason)
}

func roleOf(p ha.Postgres) string {
	switch {
	case p.DataDir == ha.DataDirEmpty:
		return cluster.RoleUninitialized
	case p.Running && p.Answered && !p.InRecovery:
		return cluster.RolePrimary
	default:
		return cluster.RoleReplica
	}
}

// errRaceLost aborts a decision whose AcquireLeader lost the race.
var errRaceLost = errors.New("another member took the leader key first")

func refuse(reason string) error { return fmt.Errorf("%w: %s", ErrRefused, reason) }

// noteUpstream restarts the replica's not-streaming clock when the leader
// or its timeline changes: a replica is judged on how it streams from the
// current leader, not on the outage that preceded it.
func (a *Agent) noteUpstream(view *cluster.Cluster) {
	up := ""
	if l := view.LeaderMember(); l != nil {
		up = fmt.Sprintf("%s@%d", l.Name, l.Timeline)
	}
	if up != a.upstream {
		a.upstream = up
		a.notStreamingSince = time.Time{}
		// A transient rejoin failure is retried at once against a new
		// leader or timeline.
		a.rejoin.leaderChanged()
	}
}

// applyParameters writes the PostgreSQL settings of the dynamic and the
// local configuration (local wins) and reloads PostgreSQL when they change.
// Settings that need a restart then show up as pending_restart.
func (a *Agent) applyParameters(ctx context.Context) {
	params := mergedParameters(a.dyn, a.cfg.PostgreSQL.Parameters)
	pctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	changed, err := a.pg.SetParameters(pctx, params)
	if err != nil {
		a.log.Warn("applying PostgreSQL parameters", "err", err)
		return
	}
	if changed {
		a.log.Info("PostgreSQL parameters changed; configuration reloaded", "action", "reload")
	}
}

func mergedParameters(dyn cluster.DynamicConfig, local map[string]string) map[string]string {
	params := map[string]string{}
	for k, v := range dyn.PostgreSQL.Parameters {
		params[k] = v
	}
	for k, v := range local {
		params[k] = v
	}
	return params
}

// checkSuspend treats a suspend or freeze the monotonic clock did not see
// as a lost lease, before anything else happens in this loop: a leader is
// fenced at once and must win the key again like any other member. It
// reports the gap and whether it exceeded safety_margin. Besides the start
// of every loop it runs right before an action that can make PostgreSQL
// writable (stillHoldsClaim), since a suspend may fall between the two.
func (a *Agent) checkSuspend() (time.Duration, bool) {
	boot, ok := bootTime()
	if !ok {
		return 0, false
	}
	gap := a.suspend.check(time.Now(), boot)
	margin := time.Duration(a.dyn.SafetyMargin * float64(time.Second))
	if gap <= margin {
		return gap, false
	}
	a.log.Error("clock gap detected: the host was suspended or the agent frozen; treating the lease as lost",
		"gap", gap.Round(time.Millisecond), "safety_margin", margin)
	if a.keyOnMyLease || a.lastKnownPrimary {
		a.fenceNow("suspend gap of "+gap.Round(time.Millisecond).String()+" exceeds safety_margin", a.dyn.FenceTimeoutDuration())
	}
	a.keyOnMyLease = false
	a.lease.ConfirmedSentAt = time.Time{}
	a.guard.disarm()
	return gap, true
}

// armFences sets both fences to the current lease deadline: the in-process
// guard and the separate fence process. Neither fires in maintenance mode.
func (a *Agent) armFences() {
	holds := a.keyOnMyLease && !a.dyn.Pause
	a.guard.arm(holds, a.claimConfirmedAt(), a.timing())
	a.watchdogTick(holds)
	if a.fence == nil || !a.fence.alive() {
		f, err := startFence(a.cfg.PostgreSQL.DataDir)
		if err != nil {
			a.log.Error("fence process unavailable; relying on the in-process lease guard", "err", err)
			return
		}
		a.fence = f
	}
	if err := a.fence.update(holds, a.claimConfirmedAt(), a.timing()); err != nil {
		a.log.Error("updating the fence process", "err", err)
	}
}
