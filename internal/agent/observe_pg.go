package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/regent-ha/regent/internal/ha"
	"github.com/regent-ha/regent/internal/postgres"
)

// observePostgres reads the local instance: data directory, pg_control when
// stopped, and a bounded query when running. It also keeps the timers the
// core needs (down since, not streaming since).
func (a *Agent) observePostgres(ctx context.Context) ha.Postgres {
	now := time.Now()
	a.recheckSoon = false
	p := ha.Postgres{
		StartFailed:       a.startFailed,
		Rejoin:            a.rejoin.observation(),
		Following:         a.following,
		CheckpointPending: a.checkpointPending,
	}
	if a.task != nil {
		// The task owns the data directory; report what is known.
		p.DataDir = ha.DataDirInitialized
		_, p.Running = a.pg.Running()
		p.LastKnownPrimary = a.lastKnownPrimary && p.Running
		return p
	}
	state, err := a.pg.DataDirState()
	switch {
	case err != nil:
		a.log.Error("inspecting data directory", "err", err)
		p.DataDir = ha.DataDirUnknown
	case state == postgres.DataDirEmpty:
		p.DataDir = ha.DataDirEmpty
	default:
		p.DataDir = ha.DataDirInitialized
	}
	if p.DataDir != ha.DataDirInitialized {
		a.pgAnswered = false
		a.replicaTimeline = 0
		return p
	}
	_, p.Running = a.pg.Running()
	if !p.Running {
		a.pgAnswered = false
		a.receiver = receiverWatch{}
		a.unansweredSince = time.Time{}
		// Streaming is judged afresh after every (re)start.
		a.notStreamingSince = time.Time{}
		if cd, err := a.pg.ControlData(ctx); err == nil {
			p.SystemID = cd.SystemIdentifier
			p.ControlTimeline = cd.TimeLineID
			p.ControlStandby = cd.State == "in archive recovery" || cd.State == "shut down in recovery"
			if cd.MinRecoveryEndTimeline > p.ControlTimeline {
				p.ControlTimeline = cd.MinRecoveryEndTimeline
			}
		} else {
			a.log.Warn("reading pg_control", "err", err)
		}
		if sig, err := a.pg.RecoverySignalled(); err != nil {
			a.log.Warn("inspecting the data directory's recovery signal files", "err", err)
			p.RecoverySignalled = true // unknown: never taken for a primary
		} else {
			p.RecoverySignalled = sig
		}
		if a.downSince.IsZero() {
			a.downSince = now
		}
		p.DownSince = a.downSince
		a.lastKnownPrimary = false
		return p
	}
	a.downSince = time.Time{}
	p.LastKnownPrimary = a.lastKnownPrimary
	if a.fencing.Load() {
		// The lease guard is stopping PostgreSQL right now (immediate
		// shutdown). Whatever a query might still answer, it must not be
		// taken for a healthy primary: the core would let a primary
		// without the key take it again, although its lease expired and
		// another member may have been promoted meanwhile.
		return p
	}

	qctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	st, err := a.pg.Query(qctx)
	if err == nil && !st.InRecovery {
		// A primary must also let new clients in.
		pctx, pcancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
		if perr := a.pg.ProbeConnect(pctx); perr != nil {
			err = fmt.Errorf("PostgreSQL answers on existing connections but refuses new ones: %w", perr)
		}
		pcancel()
	}
	if err != nil {
		a.pgAnswered = false
		a.log.Warn("querying PostgreSQL", "err", err)
		// Only silence counts as hung: an error PostgreSQL sends (starting
		// up, too many connections, authentication) is an answer, and a
		// long crash recovery must never be cut short.
		if !timedOut(err) {
			a.unansweredSince = time.Time{}
		} else if a.unansweredSince.IsZero() {
			a.unansweredSince = now
		}
		p.UnansweredSince = a.unansweredSince
		return p
	}
	a.unansweredSince = time.Time{}
	a.pgAnswered = true
	a.lastPG = st
	a.recheckSoon = a.receiver.observe(st, now, a.dyn.LoopWaitDuration())
	p.Answered = true
	p.SystemID = st.SystemIdentifier
	p.InRecovery = st.InRecovery
	p.Timeline = st.Timeline
	if st.InRecovery {
		// Without a WAL receiver PostgreSQL only reports the timeline of
		// the last restartpoint, which lags behind a timeline switch the
		// replica already received. A data directory's timeline never goes
		// back, so keep the highest one seen.
		p.Timeline = max(p.Timeline, a.replicaTimeline)
		a.replicaTimeline = p.Timeline
	}
	p.ControlTimeline = st.Timeline
	p.WriteLSN = st.WriteLSN
	p.ReceiveLSN = st.ReceiveLSN
	p.ReplayLSN = st.ReplayLSN
	p.Streaming = st.ReplicationState == "streaming"
	p.SyncStandbyNames = postgres.ParseSyncStandbyNames(st.SyncStandbyNames)
	p.SyncQuorum = postgres.ParseSyncStandbyQuorum(st.SyncStandbyNames)
	p.StandbyFlush = make(map[string]int64, len(st.Replication))
	for _, r := range st.Replication {
		p.StandbyFlush[r.ApplicationName] = r.FlushLSN
		if r.SyncState == "sync" || r.SyncState == "quorum" {
			p.SyncReported = append(p.SyncReported, r.ApplicationName)
		}
	}
	// The first observation well after a synchronous_standby_names change
	// (the reload has reached every backend) fixes the position every
	// newly synchronous standby must reach before it is published.
	if !st.InRecovery && a.syncSetLSN == 0 && time.Since(a.syncSetAt) >= syncSettle {
		a.syncSetLSN = st.WriteLSN
	}
	if st.InRecovery {
		a.syncSetLSN, a.syncSetAt = 0, time.Now()
	}
	p.SyncSetLSN = a.syncSetLSN
	if pending, err := a.pg.PendingRestart(qctx); err == nil {
		a.pendingRestart = pending
	}
	a.lastKnownPrimary = !st.InRecovery
	p.LastKnownPrimary = a.lastKnownPrimary
	if !st.InRecovery || p.Streaming {
		a.notStreamingSince = time.Time{}
	} else if a.notStreamingSince.IsZero() {
		a.notStreamingSince = now
	}
	p.NotStreamingSince = a.notStreamingSince
	return p
}

// syncSettle is how long after a synchronous_standby_names reload the agent
// waits before taking the primary's WAL position as the catch-up point.
const syncSettle = 500 * time.Millisecond

// timedOut reports whether err means PostgreSQL did not answer in time
// (as opposed to answering with an error).
func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}
