package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
	"github.com/regent-ha/regent/internal/metrics"
	"github.com/regent-ha/regent/internal/postgres"
)

// execute applies a decision's actions in order, stopping at the first
// failure. Quick actions run inline; long ones start a background task.
func (a *Agent) execute(ctx context.Context, o ha.Observation, d ha.Decision) error {
	for _, act := range d.Actions {
		if err := a.apply(ctx, o, d, act); err != nil {
			return fmt.Errorf("%s: %w", act, err)
		}
	}
	return nil
}

func (a *Agent) apply(ctx context.Context, o ha.Observation, d ha.Decision, act ha.Action) error {
	rt := a.dyn.RetryTimeoutDuration()
	switch act.Kind {
	case ha.Wait, ha.ProbePeers:
		return nil
	case ha.Refuse:
		return refuse(d.Reason)
	case ha.Fence:
		if o.Lease.KeyOnMyLease {
			a.metrics.RecordFence(metrics.FenceRenewDeadline)
		} else {
			a.metrics.RecordFence(metrics.FenceDCSUnreachable)
		}
		a.fenceNow(d.Reason, a.dyn.FenceTimeoutDuration())
		return nil
	case ha.Demote:
		if strings.Contains(d.Reason, "stale") {
			a.metrics.RecordDemotion(metrics.DemotionStaleTimeline)
		} else {
			a.metrics.RecordDemotion(metrics.DemotionOtherLeader)
		}
		return a.stop(ctx, postgres.StopImmediate, d.Reason)
	case ha.StopForRejoin:
		return a.stop(ctx, postgres.StopFast, d.Reason)
	case ha.StopUnresponsive:
		a.log.Error("stopping an unresponsive PostgreSQL", "action", "stop_unresponsive", "reason", d.Reason)
		return a.stop(ctx, postgres.StopImmediate, d.Reason)
	case ha.Bootstrap:
		dyn := a.dyn
		a.startTask(ctx, "bootstrap", cluster.StateInitializing, func(ctx context.Context) error {
			return a.bootstrap(ctx, dyn)
		}, func(err error) {
			if _, running := a.pg.Running(); err == nil && running { // not when the race was lost
				a.pgStarted(cluster.RolePrimary)
			}
		})
	case ha.Clone:
		src, err := a.source(o.Cluster, act.Target, true)
		if err != nil {
			return err
		}
		// step is written by the task and read by its completion, which
		// the task's done channel orders after it.
		step := "pg_basebackup"
		a.startTask(ctx, "clone", cluster.StateCreatingReplica, func(ctx context.Context) error {
			if err := a.pg.BaseBackup(ctx, src); err != nil {
				return err
			}
			step = "start"
			return a.startReplica(ctx, o.Cluster, act.Target)
		}, a.followingOnSuccess(act.Target, func(err error) { a.rejoinDone(step, act.Target, err) }))
	case ha.Rewind:
		src, err := a.source(o.Cluster, act.Target, false)
		if err != nil {
			return err
		}
		step := "pg_rewind"
		a.startTask(ctx, "rewind", cluster.StateRewinding, func(ctx context.Context) error {
			if err := a.pg.Rewind(ctx, src); err != nil {
				return fmt.Errorf("pg_rewind from %s: %w", act.Target, err)
			}
			step = "start"
			return a.startReplica(ctx, o.Cluster, act.Target)
		}, a.followingOnSuccess(act.Target, func(err error) { a.rejoinDone(step, act.Target, err) }))
	case ha.Reclone:
		src, err := a.source(o.Cluster, act.Target, true)
		if err != nil {
			return err
		}
		step := "pg_basebackup"
		a.startTask(ctx, "reclone", cluster.StateCreatingReplica, func(ctx context.Context) error {
			if err := a.moveDataDirAside(); err != nil {
				return err
			}
			if err := a.pg.BaseBackup(ctx, src); err != nil {
				return err
			}
			step = "start"
			return a.startReplica(ctx, o.Cluster, act.Target)
		}, a.followingOnSuccess(act.Target, func(err error) { a.rejoinDone(step, act.Target, err) }))
	case ha.StartPrimary:
		if err := a.stillHoldsClaim(); err != nil {
			return err
		}
		a.expectRunning = true
		a.startTask(ctx, "start", cluster.StateStarting, func(ctx context.Context) error {
			sctx, cancel := context.WithTimeout(ctx, a.dyn.PrimaryStartTimeoutDuration())
			defer cancel()
			return a.pg.Start(sctx, postgres.StartOptions{})
		}, func(err error) {
			a.startFailed = err != nil
			if err == nil {
				a.pgStarted(cluster.RolePrimary)
			}
		})
	case ha.StartReplica:
		a.startTask(ctx, "start", cluster.StateStarting, func(ctx context.Context) error {
			return a.startReplica(ctx, o.Cluster, act.Target)
		}, a.followingOnSuccess(act.Target, func(err error) { a.startFailed = err != nil }))
	case ha.Follow:
		src, err := a.source(o.Cluster, act.Target, true)
		if err != nil {
			return err
		}
		fctx, cancel := context.WithTimeout(ctx, rt)
		defer cancel()
		if err := a.pg.SetPrimary(fctx, src.String(), a.slotFor(o.Cluster, act.Target)); err != nil {
			return err
		}
		a.following = act.Target
		// Judge streaming from the new upstream afresh.
		a.notStreamingSince = time.Time{}
	case ha.AcquireLeader:
		actx, cancel := context.WithTimeout(ctx, rt)
		defer cancel()
		won, err := a.dcs.AcquireLeader(actx)
		if err != nil {
			return err
		}
		if !won {
			return errRaceLost
		}
		a.keyOnMyLease = true
		a.armFences()
		a.log.Info("acquired the leader key", "action", "acquire_leader", "reason", d.Reason)
	case ha.ReleaseLeader:
		// One attempt: without an answer the release stays pending and
		// the next loops retry it (a timeout does not mean the delete
		// was not applied).
		if ok, err := releaseLeaderKey(ctx, a.dcs, rt, 0); !ok {
			a.releasePending = true
			return fmt.Errorf("no answer, retrying at the next loop: %w", err)
		}
		a.releaseResolved("released")
		a.startFailed = false
		a.downSince = time.Time{}
	case ha.Promote:
		if err := a.stillHoldsClaim(); err != nil {
			return err
		}
		if why := a.prePromote(ctx); why != "" {
			return a.abortPromotion(ctx, o, why)
		}
		if err := a.stillHoldsClaim(); err != nil {
			return err
		}
		return a.promote(ctx, o, d.Reason)
	case ha.SetSyncStandbys:
		sctx, cancel := context.WithTimeout(ctx, rt)
		defer cancel()
		if err := a.pg.SetSyncStandbys(sctx, act.Names, act.Quorum); err != nil {
			return err
		}
		a.syncSetLSN, a.syncSetAt = 0, time.Now()
		a.log.Info("synchronous_standby_names changed", "action", "set_sync_standbys", "standbys", act.Names,
			"any", act.Quorum, "reason", d.Reason)
	case ha.PublishSync:
		return a.publishSync(ctx, o, act.Names, act.Quorum, d.Reason)
	case ha.HandOver:
		a.metrics.RecordDemotion(metrics.DemotionSwitchover)
		return a.handOver(ctx, o, act.Target, d.Reason)
	case ha.ClearFailover:
		f := o.Cluster.Failover
		cctx, cancel := context.WithTimeout(ctx, rt)
		defer cancel()
		if _, err := a.dcs.ClearFailover(cctx, f.Revision); err != nil {
			return err
		}
		a.log.Info("cleared the failover key", "action", "clear_failover", "reason", d.Reason,
			"failover_leader", f.Leader, "failover_member", f.Member)
	case ha.LeaderHousekeeping:
		return a.housekeeping(ctx, o)
	case ha.ClaimInitialize:
		return a.claimInitialize(ctx, o, d.Reason)
	default:
		return fmt.Errorf("unknown action %v", act.Kind)
	}
	return nil
}

// stop stops PostgreSQL and records why.
func (a *Agent) stop(ctx context.Context, mode postgres.StopMode, reason string) error {
	a.log.Warn("stopping PostgreSQL", "mode", mode, "reason", reason)
	escalate := a.dyn.FenceTimeoutDuration() / 2
	if mode == postgres.StopFast {
		escalate = a.dyn.TTLDuration()
	}
	if mode != postgres.StopImmediate {
		a.beforeStop(ctx) // not before a demotion: the old primary must stop at once
	}
	sctx, cancel := context.WithTimeout(ctx, escalate+5*time.Second)
	defer cancel()
	a.expectRunning = false
	a.following = ""
	_, wasRunning := a.pg.Running()
	if err := a.pg.Stop(sctx, mode, escalate); err != nil {
		return err
	}
	if wasRunning {
		a.pgStopped()
	}
	return nil
}

// fenceNow stops PostgreSQL immediately so it can acknowledge no further
// commit: SIGQUIT, escalating to SIGKILL after half of fenceTimeout. It is
// called by the loop and by the lease guard's timer, so it reads no agent
// state.
func (a *Agent) fenceNow(reason string, fenceTimeout time.Duration) {
	a.log.Error("fencing PostgreSQL", "action", "fence", "reason", reason)
	a.fencing.Store(true)
	defer a.fencing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.pg.Stop(ctx, postgres.StopImmediate, fenceTimeout/2); err != nil {
		a.log.Error("fencing failed", "err", err)
	}
}

// source builds the connection to another member from its conn_url, with
// the replication role (replication=true) or the superuser (pg_rewind).
func (a *Agent) source(view *cluster.Cluster, name string, replication bool) (postgres.ConnInfo, error) {
	m := view.Member(name)
	if m == nil || m.ConnURL == "" {
		return postgres.ConnInfo{}, fmt.Errorf("member %q has no conn_url in the DCS", name)
	}
	u, err := url.Parse(m.ConnURL)
	if err != nil {
		return postgres.ConnInfo{}, fmt.Errorf("member %q conn_url: %w", name, err)
	}
	host, port, err := postgres.ParseHostPort(u.Host)
	if err != nil {
		return postgres.ConnInfo{}, fmt.Errorf("member %q conn_url: %w", name, err)
	}
	creds := a.cfg.PostgreSQL.Authentication.Replication
	db := ""
	if !replication {
		creds = a.cfg.PostgreSQL.Authentication.Superuser
		db = "postgres"
	}
	pw, err := creds.Password.Value()
	if err != nil {
		return postgres.ConnInfo{}, err
	}
	return postgres.ConnInfo{Host: host, Port: port, User: creds.Username, Password: pw, DBName: db,
		ApplicationName: a.cfg.Name}, nil
}

// startReplica starts PostgreSQL as a standby of upstream ("" = none). It
// runs inside tasks and so touches no agent state.
func (a *Agent) startReplica(ctx context.Context, view *cluster.Cluster, upstream string) error {
	so := postgres.StartOptions{Standby: true}
	if upstream != "" {
		src, err := a.source(view, upstream, true)
		if err != nil {
			return err
		}
		so.PrimaryConnInfo = src.String()
		so.SlotName = a.slotFor(view, upstream)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return a.pg.Start(sctx, so)
}

// followingOnSuccess returns a task completion that records, on the loop
// goroutine, that PostgreSQL now runs as a replica of leader, then calls
// next (if any).
func (a *Agent) followingOnSuccess(leader string, next func(error)) func(error) {
	a.expectRunning = true
	return func(err error) {
		if err == nil {
			a.following = leader
			a.pgStarted(cluster.RoleReplica)
		}
		if next != nil {
			next(err)
		}
	}
}

// moveDataDirAside renames a diverged data directory instead of deleting it.
func (a *Agent) moveDataDirAside() error {
	dir := a.cfg.PostgreSQL.DataDir
	aside := fmt.Sprintf("%s.diverged-%s", dir, time.Now().UTC().Format("20060102T150405"))
	if err := os.Rename(dir, aside); err != nil {
		return fmt.Errorf("moving diverged data directory aside: %w", err)
	}
	a.log.Warn("moved diverged data directory aside", "from", dir, "to", aside)
	return nil
}

// promote turns the local replica into the primary and records why.
func (a *Agent) promote(ctx context.Context, o ha.Observation, reason string) error {
	oldTimeline := o.PG.Timeline
	switchLSN := o.PG.ReplayLSN
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	a.log.Warn("promoting", "action", "promote", "reason", reason, "timeline", oldTimeline,
		"lsn", cluster.FormatLSN(switchLSN))
	if err := a.pg.Promote(pctx); err != nil {
		return err
	}
	a.metrics.RecordPromotion(promotionKind(o.Cluster))
	a.lastKnownPrimary = true
	a.following = ""
	// The claim was re-checked before pg_promote, but the process may have
	// been stopped or the host suspended while PostgreSQL was promoting; it
	// then finishes the promotion on resume, before the agent runs again.
	// Stop it at once instead of at the next loop, and do not record a
	// history line for it (a newer promotion may already have recorded a
	// higher timeline).
	if err := a.stillHoldsClaim(); err != nil {
		a.fenceNow("promoted after the leader claim was lost: "+err.Error(), a.dyn.FenceTimeoutDuration())
		return err
	}
	a.pgPromoted()
	a.checkpointPending = true
	hctx, hcancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer hcancel()
	entry := cluster.HistoryEntry{Timeline: oldTimeline, SwitchLSN: switchLSN, Reason: reason,
		Time: time.Now(), NewLeader: a.cfg.Name}
	if err := a.dcs.AppendHistory(hctx, entry); err != nil {
		a.log.Error("appending to history", "err", err)
	}
	// The other members reconnect as soon as they see the new leader; a
	// slot created only by the next loop's housekeeping makes their first
	// attempt fail, and the WAL receiver waits wal_retrieve_retry_interval
	// before the next.
	if o.Cluster != nil {
		if _, err := a.syncSlots(hctx, o.Cluster, true); err != nil {
			a.log.Warn("creating the members' replication slots after promotion; housekeeping retries", "err", err)
		}
	}
	// pg_rewind on the old primary reads the new timeline from pg_control,
	// which changes only at the first checkpoint after promotion.
	a.startTask(ctx, "checkpoint", cluster.StateRunning, a.pg.Checkpoint, func(err error) {
		if err == nil {
			a.checkpointPending = false
		}
	})
	return nil
}

// housekeeping is the leader's per-loop upkeep: the replication slots
// (internal/slots), the status key and the failsafe key.
func (a *Agent) housekeeping(ctx context.Context, o ha.Observation) error {
	hctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	var errs []error
	if a.replicationRoleDue && o.PG.Answered && !o.PG.InRecovery {
		if err := a.pg.EnsureReplicationRole(hctx); err != nil {
			errs = append(errs, err)
		} else {
			a.replicationRoleDue = false
		}
	}
	if o.Cluster != nil {
		existing, err := a.syncSlots(hctx, o.Cluster, true)
		if err != nil {
			errs = append(errs, err)
		}
		if err := a.dcs.WriteStatus(hctx, a.leaderStatus(o, existing)); err != nil {
			errs = append(errs, fmt.Errorf("status key: %w", err))
		}
		if a.dyn.FailsafeMode {
			if err := a.dcs.WriteFailsafe(hctx, failsafeMembers(o.Cluster)); err != nil {
				errs = append(errs, fmt.Errorf("failsafe key: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// slotFor is the replication slot to use when streaming from upstream: the
// leader keeps one per member; a cascading upstream replica keeps none.
func (a *Agent) slotFor(view *cluster.Cluster, upstream string) string {
	if view == nil || upstream != view.LeaderName() || !a.dyn.PostgreSQL.UseSlots {
		return ""
	}
	return postgres.SlotName(a.cfg.Name)
}

// publishSync writes (or, with synchronous mode off, deletes) the sync key,
// guarded by the revision this loop read.
func (a *Agent) publishSync(ctx context.Context, o ha.Observation, names []string, quorum int, reason string) error {
	sctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	var rev int64
	if o.Cluster.Sync != nil {
		rev = o.Cluster.Sync.Revision
	}
	var ok bool
	var err error
	if !a.dyn.SynchronousMode.Enabled() {
		if rev == 0 {
			return nil
		}
		ok, err = a.dcs.DeleteSync(sctx, rev)
	} else {
		ok, err = a.dcs.SetSync(sctx, cluster.SyncState{Leader: a.cfg.Name, Members: names, Quorum: quorum}, rev)
	}
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("sync key changed concurrently; retrying next loop")
	}
	a.log.Info("sync key updated", "action", "publish_sync", "standbys", names, "quorum", quorum, "reason", reason)
	return nil
}

// promotionKind names why this member is being promoted, for metrics.
func promotionKind(view *cluster.Cluster) string {
	switch f := view.Failover; {
	case f == nil || f.Member == "":
		return metrics.PromotionFailover
	case f.Leader != "":
		return metrics.PromotionSwitchover
	default:
		return metrics.PromotionManualFailover
	}
}
