package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
)

// memberState is the PostgreSQL state this member reports.
func (a *Agent) memberState(p ha.Postgres) string {
	switch {
	case a.task != nil:
		return a.task.state
	case a.rejoin.needsOperator() && !p.Running:
		return cluster.StateNeedsReinit
	case p.DataDir == ha.DataDirEmpty:
		return cluster.StateStopped
	case p.Running && p.Answered:
		return cluster.StateRunning
	case p.Running:
		return cluster.StateStarting
	case a.rejoin.last != nil && a.rejoin.last.Step == "pg_rewind":
		return cluster.StateRewindFailed
	case a.rejoin.last != nil && a.rejoin.last.Step == "start":
		return cluster.StateStartFailed
	case a.startFailed:
		return cluster.StateStartFailed
	case a.expectRunning:
		return cluster.StateCrashed
	default:
		return cluster.StateStopped
	}
}

// publish writes the member key and the REST API snapshot.
func (a *Agent) publish(ctx context.Context, o ha.Observation) {
	// Re-read the local state after the actions of this loop would cost
	// another query; the observation is at most one loop old.
	p := o.PG
	state := a.memberState(p)
	role := roleOf(p)
	if a.task != nil && role == cluster.RolePrimary {
		role = cluster.RoleReplica
	}
	m := &cluster.Member{
		Name:     a.cfg.Name,
		ConnURL:  a.cfg.ConnURL(),
		APIURL:   a.cfg.APIURL(),
		State:    state,
		Role:     role,
		Version:  Version,
		Timeline: a.timeline(p),
		Pause:    a.dyn.Pause,
	}
	if tags := a.cfg.Tags; !tags.IsZero() {
		m.Tags = &tags
	}
	if p.Answered {
		lsn := p.LSN()
		m.XLogLocation = &lsn
		if p.InRecovery {
			m.ReceiveLSN = &p.ReceiveLSN
			m.ReplayLSN = &p.ReplayLSN
			m.ReplicationState = cluster.ReplicationArchive
			if p.Streaming {
				m.ReplicationState = cluster.ReplicationStreaming
			}
		}
	}
	if len(a.pendingRestart) > 0 && p.Running {
		m.PendingRestart = true
		m.PendingRestartReason = a.pendingRestart
	}
	if r := a.rejoin.last; r != nil && r.NeedsOperator {
		m.NeedsReinit = fmt.Sprintf("%s from %s failed: %s", r.Step, r.Source, r.Reason)
	}
	if a.keyOnMyLease {
		done := !a.checkpointPending
		m.CheckpointAfterPromote = &done
	}
	// When etcd did not answer this loop, another timed-out write would
	// only delay the next lease renewal (and, in failsafe_mode, the next
	// round of acknowledgements); the key is written again on the first
	// loop that reaches etcd.
	if o.Cluster != nil {
		tctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
		if err := a.dcs.TouchMember(tctx, m); err != nil {
			a.log.Warn("writing member key", "err", err)
		}
		cancel()
	}

	snap := api.Snapshot{
		Scope:                a.cfg.Scope,
		Name:                 a.cfg.Name,
		Version:              Version,
		Taken:                time.Now(),
		LastLoop:             time.Now(),
		Role:                 role,
		State:                state,
		HoldsLeaderKey:       a.keyOnMyLease && time.Since(a.claimConfirmedAt()) < a.timing().RenewDeadline(),
		LeaseDeadline:        a.leaseDeadline(),
		Writable:             p.Running && p.Answered && !p.InRecovery,
		Timeline:             a.timeline(p),
		XLogLocation:         p.WriteLSN,
		ReceiveLSN:           p.ReceiveLSN,
		ReplayLSN:            p.ReplayLSN,
		ReplicationState:     m.ReplicationState,
		SystemIdentifier:     p.SystemID,
		Tags:                 a.cfg.Tags,
		DCSLastSeen:          a.dcsLastSeen,
		DCSReachable:         o.Cluster != nil,
		Pause:                a.dyn.Pause,
		Cluster:              a.lastView,
		LoopWait:             a.dyn.LoopWaitDuration(),
		TTL:                  a.dyn.TTLDuration(),
		MaximumLagOnFailover: a.dyn.MaximumLagOnFailover,
		Reason:               a.lastDecision.Reason,
		Action:               a.lastDecision.Summary(),
		LastRenewalConfirmed: a.lease.ConfirmedSentAt,
		FencingActive:        a.fencing.Load(),
		WatchdogState:        a.watchdogState(),
		PendingRestart:       len(a.pendingRestart) > 0 && p.Running,
	}
	// A running replica listed in the sync key of this loop's DCS view (nil
	// when etcd did not answer: then, as in Patroni, nothing is known).
	if p.Running && p.Answered && p.InRecovery {
		snap.SyncStandby, snap.QuorumStandby = api.SyncStandbyOf(o.Cluster, a.dyn.SynchronousMode, a.cfg.Name)
	}
	if role == cluster.RolePrimary && a.dyn.SynchronousMode.Enabled() {
		snap.SyncStandbysExpected = a.dyn.SynchronousNodeCount
	}
	snap.WALDiskFreeBytes, snap.WALDiskTotalBytes = walDisk(a.cfg.PostgreSQL.DataDir)
	if a.pgAnswered {
		snap.XLogPaused = a.lastPG.ReplayPaused
		snap.ReplayedTimestamp = a.lastPG.ReplayedTimestamp
		snap.ServerVersion = a.lastPG.ServerVersion
		snap.PostmasterStartTime = a.lastPG.PostmasterStartTime
		for _, r := range a.lastPG.Replication {
			snap.Replication = append(snap.Replication, api.Replica{
				ApplicationName: r.ApplicationName, ClientAddr: r.ClientAddr, State: r.State, SyncState: r.SyncState,
				SentLSN: r.SentLSN, ReplayLSN: r.ReplayLSN, ReplayLagSeconds: r.ReplayLagSeconds,
			})
		}
	}
	a.pub.Publish(snap)
}

// leaseDeadline is when this member's claim to the leader key runs out if
// no further renewal is confirmed; zero when it holds no key.
func (a *Agent) leaseDeadline() time.Time {
	at := a.claimConfirmedAt()
	if !a.keyOnMyLease || at.IsZero() {
		return time.Time{}
	}
	return at.Add(a.timing().RenewDeadline())
}

// timeline is the member's timeline: the observed one, else the last one
// known (while PostgreSQL restarts or a task owns the data directory).
func (a *Agent) timeline(p ha.Postgres) int {
	if tl := max(p.Timeline, p.ControlTimeline); tl > 0 {
		a.lastTimeline = tl
	}
	return a.lastTimeline
}

// walDisk is the free and total space of the file system holding pg_wal
// (statfs, cheap; taken in the loop, never at scrape time).
func walDisk(dataDir string) (free, total int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(dataDir, "pg_wal"), &st); err != nil {
		return 0, 0
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize
}
