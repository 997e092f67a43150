package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/operate"
	"github.com/regent-ha/regent/internal/postgres"
)

// Operator actions arrive from REST handlers on their own goroutines. They
// are handed to the loop goroutine, which owns the agent's state, through
// a.requests; a handler then waits for the answer.

// request is one operator action for the loop goroutine.
type request struct {
	run  func(ctx context.Context) // runs on the loop goroutine
	done chan struct{}
}

// do runs fn on the loop goroutine and waits for it (or ctx).
func (a *Agent) do(ctx context.Context, fn func(ctx context.Context)) error {
	r := &request{run: fn, done: make(chan struct{})}
	select {
	case a.requests <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serve runs one request on the loop goroutine.
func (a *Agent) serve(ctx context.Context, r *request) {
	defer close(r.done)
	r.run(ctx)
}

var errBusy = errors.New("another operation is in progress on this member")

// operator adapts the agent to api.Operator.
type operator struct{ a *Agent }

var _ api.Operator = operator{}

// Restart restarts PostgreSQL in its current role, now or at a scheduled
// time. A leader keeps its key while it restarts.
func (op operator) Restart(ctx context.Context, r api.RestartRequest) (api.RestartResult, error) {
	a := op.a
	var (
		res     api.RestartResult
		err     error
		waitFor chan error
	)
	if doErr := a.do(ctx, func(lctx context.Context) {
		if skip := a.restartFilter(r); skip != "" {
			res.Skipped = skip
			return
		}
		if !r.ScheduledAt.IsZero() {
			if a.scheduledRestart != nil {
				err = &operate.ConflictError{Reason: "a restart is already scheduled at " + a.scheduledRestart.ScheduledAt.Format(time.RFC3339)}
				return
			}
			sr := r
			a.scheduledRestart = &sr
			res.Scheduled = true
			a.log.Info("restart scheduled", "action", "schedule_restart", "at", r.ScheduledAt)
			return
		}
		waitFor, err = a.startRestart(lctx, r, "requested through the REST API")
	}); doErr != nil {
		return res, doErr
	}
	if err != nil || waitFor == nil {
		return res, err
	}
	select {
	case err := <-waitFor:
		return res, err
	case <-ctx.Done():
		return res, ctx.Err()
	}
}

// restartFilter returns why a restart request does not apply, or "".
func (a *Agent) restartFilter(r api.RestartRequest) string {
	role := cluster.RoleReplica
	if a.keyOnMyLease {
		role = cluster.RolePrimary
	}
	switch {
	case r.Role != "" && r.Role != "any" && r.Role != role && !(r.Role == "master" && role == cluster.RolePrimary):
		return fmt.Sprintf("role does not match: this member is a %s", role)
	case r.PendingOnly && len(a.pendingRestart) == 0:
		return "no restart pending"
	}
	return ""
}

// startRestart starts the restart task; the returned channel receives its
// result.
func (a *Agent) startRestart(ctx context.Context, r api.RestartRequest, why string) (chan error, error) {
	if a.task != nil {
		return nil, fmt.Errorf("%w (%s)", errBusy, a.task.name)
	}
	if _, running := a.pg.Running(); !running {
		return nil, &operate.PreconditionError{Reason: "PostgreSQL is not running"}
	}
	asPrimary := a.keyOnMyLease && a.lastKnownPrimary
	view := a.lastView
	following := a.following
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = a.dyn.PrimaryStartTimeoutDuration()
		if !asPrimary || timeout == 0 {
			timeout = 10 * time.Minute
		}
	}
	fenceTimeout := a.dyn.TTLDuration()
	a.log.Warn("restarting PostgreSQL", "action", "restart", "reason", why, "primary", asPrimary)
	result := make(chan error, 1)
	a.expectRunning = true
	a.startTask(ctx, "restart", cluster.StateStarting, func(ctx context.Context) error {
		sctx, cancel := context.WithTimeout(ctx, timeout+fenceTimeout)
		defer cancel()
		a.beforeStop(sctx)
		if err := a.pg.Stop(sctx, postgres.StopFast, fenceTimeout); err != nil {
			return err
		}
		if asPrimary {
			return a.pg.Start(sctx, postgres.StartOptions{})
		}
		return a.startReplica(sctx, view, following)
	}, func(err error) {
		a.startFailed = err != nil
		if err == nil {
			a.following = following
			a.pgRestarted(map[bool]string{true: cluster.RolePrimary, false: cluster.RoleReplica}[asPrimary])
		}
		result <- err
	})
	return result, nil
}

// runScheduledRestart starts a scheduled restart whose time has come.
func (a *Agent) runScheduledRestart(ctx context.Context, wall time.Time) {
	sr := a.scheduledRestart
	if sr == nil || wall.Before(sr.ScheduledAt) || a.task != nil {
		return
	}
	a.scheduledRestart = nil
	if skip := a.restartFilter(*sr); skip != "" {
		a.log.Info("scheduled restart skipped", "reason", skip)
		return
	}
	if _, err := a.startRestart(ctx, *sr, "scheduled for "+sr.ScheduledAt.Format(time.RFC3339)); err != nil {
		a.log.Error("scheduled restart", "err", err)
	}
}

// CancelRestart drops a scheduled restart.
func (op operator) CancelRestart(ctx context.Context) (bool, error) {
	a := op.a
	had := false
	err := a.do(ctx, func(context.Context) {
		had = a.scheduledRestart != nil
		a.scheduledRestart = nil
	})
	return had, err
}

// Reload rereads the member's configuration file and reloads PostgreSQL
// (Agent.Reload).
func (op operator) Reload(ctx context.Context) error {
	_, err := op.a.Reload(ctx, "requested through the REST API")
	return err
}

// Reinitialize throws away this replica's data directory, as the operator
// asked, and clones it again from the leader (or from a clonefrom replica
// unless FromLeader).
func (op operator) Reinitialize(ctx context.Context, r api.ReinitRequest) error {
	a := op.a
	var err error
	if doErr := a.do(ctx, func(lctx context.Context) {
		view := a.lastView
		switch {
		case view == nil:
			err = &operate.PreconditionError{Reason: "the cluster view is unknown (DCS unreachable?)"}
		case view.LeaderName() == a.cfg.Name || a.keyOnMyLease:
			err = &operate.PreconditionError{Reason: "cannot reinitialize the leader: switch over first"}
		case view.LeaderMember() == nil || view.LeaderMember().State != cluster.StateRunning:
			err = &operate.PreconditionError{Reason: "the cluster has no running leader to clone from"}
		case a.task != nil:
			err = fmt.Errorf("%w (%s)", errBusy, a.task.name)
		}
		if err != nil {
			return
		}
		source := view.LeaderName()
		if !r.FromLeader {
			if s := cloneSourceOf(view, a.cfg.Name); s != "" {
				source = s
			}
		}
		src, serr := a.source(view, source, true)
		if serr != nil {
			err = serr
			return
		}
		mode := postgres.StopFast
		if r.Force {
			mode = postgres.StopImmediate
		}
		leader := view.LeaderName()
		dataDir := a.cfg.PostgreSQL.DataDir
		a.log.Warn("reinitializing: removing the data directory and cloning it again", "action", "reinitialize",
			"source", source, "reason", "requested through the REST API")
		a.expectRunning = true
		a.startFailed = false
		a.rejoin.succeeded() // the operator's re-clone replaces whatever failed
		a.startTask(lctx, "reinitialize", cluster.StateCreatingReplica, func(ctx context.Context) error {
			if err := a.pg.Stop(ctx, mode, a.dyn.TTLDuration()); err != nil {
				return err
			}
			if err := os.RemoveAll(dataDir); err != nil {
				return fmt.Errorf("removing %s: %w", dataDir, err)
			}
			if err := a.pg.BaseBackup(ctx, src); err != nil {
				return err
			}
			return a.startReplica(ctx, view, leader)
		}, a.followingOnSuccess(leader, nil))
	}); doErr != nil {
		return doErr
	}
	return err
}

// cloneSourceOf is a running replica tagged clonefrom, or "".
func cloneSourceOf(view *cluster.Cluster, self string) string {
	for _, m := range view.SortedMembers() {
		if m.Name != self && m.Name != view.LeaderName() && m.EffectiveTags().CloneFrom &&
			m.State == cluster.StateRunning && m.ReplicationState == cluster.ReplicationStreaming {
			return m.Name
		}
	}
	return ""
}

// positions adapts the agent to api.PositionReader.
type positions struct{ a *Agent }

var _ api.PositionReader = positions{}

// PrimaryPositions queries PostgreSQL now (the connection pool is safe to
// share with the loop).
func (p positions) PrimaryPositions(ctx context.Context) (int64, map[string]int64, bool) {
	st, err := p.a.pg.Query(ctx)
	if err != nil || st.InRecovery {
		return 0, nil, false
	}
	flush := make(map[string]int64, len(st.Replication))
	for _, r := range st.Replication {
		flush[r.ApplicationName] = r.FlushLSN
	}
	return st.WriteLSN, flush, true
}
