package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
	"github.com/regent-ha/regent/internal/postgres"
)

// handoverWait bounds how long the old leader waits for the candidate to
// receive its shutdown checkpoint before it gives up and starts again.
const handoverWait = 10 * time.Second

// handOver is the leader's half of a switchover. In order:
//  1. stop PostgreSQL fast: sessions end, and the walsenders stream every
//     record up to and including the shutdown checkpoint (the hand-over
//     goes on as soon as pg_control says "shut down", while the postmaster
//     may still wait for walsenders or the archiver);
//  2. wait until the candidate has received and flushed that checkpoint, so
//     that it holds every acknowledged commit;
//  3. release the leader key; the candidate, named in the failover key,
//     takes it and promotes, and this member later follows it.
//
// If the candidate does not confirm in time, the key is kept, the request
// is cleared, and the next loop restarts PostgreSQL in place.
//
// Once the candidate confirmed, the hand-over is never abandoned: a release
// that times out may still be applied later (and the candidate promoted),
// so restarting in place could make two primaries. The release is retried
// until etcd answers or the renew deadline passes; without an answer it is
// left pending (releasePending), retried every loop, and PostgreSQL is not
// started as primary until it is resolved.
func (a *Agent) handOver(ctx context.Context, o ha.Observation, target, reason string) error {
	src, err := a.source(o.Cluster, target, false)
	if err != nil {
		return err
	}
	failoverRev := o.Cluster.Failover.Revision
	attempt, budget := min(releaseAttempt, a.dyn.RetryTimeoutDuration()), a.timing().RenewDeadline()
	a.log.Warn("switchover: stopping PostgreSQL to hand over", "action", "hand_over", "target", target, "reason", reason)
	a.expectRunning = false
	a.startTask(ctx, "switchover", cluster.StateStopping, func(ctx context.Context) error {
		started := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		a.beforeStop(sctx)
		stopped := make(chan error, 1)
		go func() { stopped <- a.pg.Stop(sctx, postgres.StopFast, 30*time.Second) }()
		// Whatever happens next, the task ends only once the postmaster is
		// gone, so that the next loop never finds a half-stopped server.
		defer func() {
			if stopped != nil {
				<-stopped
			}
		}()
		cd, finished, err := a.waitShutDown(ctx, stopped)
		if finished {
			stopped = nil
		}
		if err != nil {
			return a.abandonHandOver(ctx, failoverRev, fmt.Errorf("stopping PostgreSQL: %w", err))
		}
		if cd.State != "shut down" {
			// The stop escalated before the shutdown checkpoint (a walsender
			// whose client stopped reading holds it: Patroni #3022). The
			// last checkpoint is then older than the last commit, so the
			// candidate's position proves nothing: keep the key.
			return a.abandonHandOver(ctx, failoverRev, fmt.Errorf(
				"PostgreSQL did not shut down cleanly (pg_control state %q), so %s cannot be shown to hold every commit; "+
					"a walsender whose client stopped reading can hold the shutdown (check pg_stat_replication for logical consumers)",
				cd.State, target))
		}
		if err := waitReceived(ctx, src, cd.CheckpointLSN); err != nil {
			return a.abandonHandOver(ctx, failoverRev, fmt.Errorf("%s did not confirm the shutdown checkpoint %s: %w",
				target, cluster.FormatLSN(cd.CheckpointLSN), err))
		}
		if ok, err := releaseLeaderKey(ctx, a.dcs, attempt, budget); !ok {
			return fmt.Errorf("%w: %w", errReleaseUnresolved, err)
		}
		a.log.Info("switchover: leader key released", "action", "release_leader", "target", target,
			"checkpoint", cluster.FormatLSN(cd.CheckpointLSN), "stopped_for", time.Since(started).Round(time.Millisecond))
		return nil
	}, func(err error) {
		switch {
		case err == nil:
			a.releaseResolved("switchover hand-over")
			a.pgStopped()
		case errors.Is(err, errReleaseUnresolved):
			a.releasePending = true
		}
	})
	return nil
}

// waitShutDown waits until the fast stop has written the shutdown
// checkpoint. That happens before the postmaster exits: the postmaster
// still waits for every walsender to send the WAL (a stalled consumer can
// hold it for wal_sender_timeout or longer) and for the archiver. Once
// pg_control says "shut down" no transaction can commit any more, so the
// hand-over may proceed while the postmaster finishes (Patroni #2067).
// finished reports that the stop itself returned (its result consumed).
func (a *Agent) waitShutDown(ctx context.Context, stopped <-chan error) (cd postgres.ControlData, finished bool, err error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var prev postgres.ControlData
	for {
		select {
		case err := <-stopped:
			if err != nil {
				return cd, true, err
			}
			cd, err := a.pg.ControlData(ctx)
			return cd, true, err
		case <-ctx.Done():
			return cd, false, ctx.Err()
		case <-tick.C:
		}
		// pg_control is read while the server may rewrite it: trust a
		// "shut down" only when two reads in a row agree.
		cd, err := a.pg.ControlData(ctx)
		if err != nil || cd.State != "shut down" {
			prev = postgres.ControlData{}
			continue
		}
		if prev.State == cd.State && prev.CheckpointLSN == cd.CheckpointLSN && prev.TimeLineID == cd.TimeLineID {
			a.log.Info("switchover: shutdown checkpoint written; the postmaster is still finishing", "checkpoint", cluster.FormatLSN(cd.CheckpointLSN))
			return cd, false, nil
		}
		prev = cd
	}
}

// errReleaseUnresolved ends a hand-over whose leader-key release got no
// answer within the renew deadline.
var errReleaseUnresolved = errors.New("switchover: releasing the leader key got no answer; retrying every loop")

// waitReceived polls the candidate until it has received WAL past lsn (the
// start of the shutdown checkpoint record, so past means all of it).
func waitReceived(ctx context.Context, src postgres.ConnInfo, lsn int64) error {
	ctx, cancel := context.WithTimeout(ctx, handoverWait)
	defer cancel()
	var last error
	for {
		qctx, qcancel := context.WithTimeout(ctx, time.Second)
		got, err := postgres.ReceivedLSN(qctx, src)
		qcancel()
		if err == nil && got > lsn {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("received up to %s", cluster.FormatLSN(got))
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// abandonHandOver clears the switchover request so that the leader, which
// still holds the key, restarts in place instead of trying again.
func (a *Agent) abandonHandOver(ctx context.Context, failoverRev int64, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := a.dcs.ClearFailover(cctx, failoverRev); err != nil {
		cause = errors.Join(cause, fmt.Errorf("clearing the failover key: %w", err))
	}
	return fmt.Errorf("switchover abandoned, keeping leadership: %w", cause)
}
