package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
)

// handoverWait bounds how long a leader handing over waits for the
// candidate to receive its shutdown checkpoint.
const handoverWait = 10 * time.Second

var errRaceLost = errors.New("another member took the leader key first")

// execute applies the decision's actions in order and stops at the first
// failure, as package agent does.
func (c *actx) execute(o ha.Observation, d ha.Decision) error {
	for _, act := range d.Actions {
		if err := c.apply(o, d, act); err != nil {
			return fmt.Errorf("%s: %w", act, err)
		}
	}
	return nil
}

func (c *actx) apply(o ha.Observation, d ha.Decision, act ha.Action) error {
	a := c.a
	rt := a.dyn.RetryTimeoutDuration()
	switch act.Kind {
	case ha.Wait, ha.ProbePeers:
		return nil
	case ha.Refuse:
		return fmt.Errorf("%w: %s", errRefused, d.Reason)
	case ha.Fence:
		c.fenceNow(d.Reason)
	case ha.Demote:
		return c.stop(true, d.Reason)
	case ha.StopForRejoin:
		return c.stop(false, d.Reason)
	case ha.Bootstrap:
		dyn := a.dyn
		a.startTask("bootstrap", cluster.StateInitializing, func(c *actx) error { return c.bootstrap(dyn) }, nil)
	case ha.Clone:
		if err := source(o.Cluster, act.Target); err != nil {
			return err
		}
		view, target := o.Cluster, act.Target
		step := "pg_basebackup"
		a.startTask("clone", cluster.StateCreatingReplica, func(c *actx) error {
			if err := c.pgBaseBackup(target); err != nil {
				return err
			}
			step = "start"
			return c.startReplica(view, target)
		}, a.followingOnSuccess(target, func(err error) { a.rejoinDone(step, target, err) }))
	case ha.Rewind:
		if err := source(o.Cluster, act.Target); err != nil {
			return err
		}
		view, target := o.Cluster, act.Target
		step := "pg_rewind"
		a.startTask("rewind", cluster.StateRewinding, func(c *actx) error {
			if err := c.pgRewind(target); err != nil {
				return fmt.Errorf("pg_rewind from %s: %w", target, err)
			}
			step = "start"
			return c.startReplica(view, target)
		}, a.followingOnSuccess(target, func(err error) { a.rejoinDone(step, target, err) }))
	case ha.Reclone:
		if err := source(o.Cluster, act.Target); err != nil {
			return err
		}
		view, target := o.Cluster, act.Target
		step := "pg_basebackup"
		a.startTask("reclone", cluster.StateCreatingReplica, func(c *actx) error {
			c.a.tracef("moving the diverged data directory aside")
			c.a.m.pg.data = nil
			if err := c.pgBaseBackup(target); err != nil {
				return err
			}
			step = "start"
			return c.startReplica(view, target)
		}, a.followingOnSuccess(target, func(err error) { a.rejoinDone(step, target, err) }))
	case ha.StartPrimary:
		if err := c.stillHoldsClaim(); err != nil {
			return err
		}
		a.expectRunning = true
		a.startTask("start", cluster.StateStarting, func(c *actx) error {
			return c.pgStart(false, "", c.a.dyn.PrimaryStartTimeoutDuration())
		}, func(err error) { a.startFailed = err != nil })
	case ha.StartReplica:
		view, target := o.Cluster, act.Target
		a.startTask("start", cluster.StateStarting, func(c *actx) error {
			return c.startReplica(view, target)
		}, a.followingOnSuccess(target, func(err error) { a.startFailed = err != nil }))
	case ha.Follow:
		if err := source(o.Cluster, act.Target); err != nil {
			return err
		}
		a.m.pg.setUpstream(act.Target)
		a.writeConfig()
		a.following = act.Target
		a.notStreamingSince = time.Time{}
	case ha.AcquireLeader:
		won, err := c.acquireLeader(c.deadline(rt))
		if err != nil {
			return err
		}
		if !won {
			return errRaceLost
		}
		a.keyOnMyLease = true
		a.armFences()
		a.tracef("acquired the leader key")
	case ha.ReleaseLeader:
		if ok, err := c.releaseLeaderKey(rt, 0); !ok {
			a.releasePending = true
			return fmt.Errorf("no answer, retrying at the next loop: %w", err)
		}
		a.releaseResolved("released")
		a.startFailed = false
		a.downSince = time.Time{}
	case ha.Promote:
		if err := c.stillHoldsClaim(); err != nil {
			return err
		}
		return c.promote(o, d.Reason)
	case ha.SetSyncStandbys:
		c.setSyncStandbys(act.Names, act.Quorum)
	case ha.PublishSync:
		return c.publishSync(o, act.Names, act.Quorum)
	case ha.HandOver:
		return c.handOver(o, act.Target)
	case ha.ClearFailover:
		if _, err := c.clearFailover(c.deadline(rt), o.Cluster.Failover.Revision); err != nil {
			return err
		}
	case ha.LeaderHousekeeping:
		if o.Cluster != nil {
			return c.writeStatus(c.deadline(rt), ha.LeaderStatus(o))
		}
	case ha.ClaimInitialize:
		// agent.claimInitialize: the initialize key with this data
		// directory's system identifier, if no one wrote it first.
		if o.PG.SystemID == "" {
			return errors.New("the data directory's system identifier is unknown")
		}
		won, err := c.createIfAbsent(c.deadline(rt), keyInitialize, o.PG.SystemID)
		if err != nil {
			return err
		}
		if !won {
			return errors.New("another member wrote the initialize key first")
		}
	default:
		return fmt.Errorf("unknown action %v", act.Kind)
	}
	return nil
}

// source checks that the member to copy from or follow has a member key
// (conn_url) in the view.
func source(view *cluster.Cluster, name string) error {
	if m := view.Member(name); m == nil || m.ConnURL == "" {
		return fmt.Errorf("member %q has no conn_url in the DCS", name)
	}
	return nil
}

// stop stops PostgreSQL: immediate (demote) or fast (rejoin).
func (c *actx) stop(immediate bool, reason string) error {
	a := c.a
	a.tracef("stopping PostgreSQL (immediate %t): %s", immediate, reason)
	a.expectRunning = false
	a.following = ""
	return c.pgStop(immediate, 0)
}

// followingOnSuccess records, when a start task succeeds, that PostgreSQL
// follows leader.
func (a *agent) followingOnSuccess(leader string, next func(error)) func(error) {
	a.expectRunning = true
	return func(err error) {
		if err == nil {
			a.following = leader
		}
		if next != nil {
			next(err)
		}
	}
}

// promote promotes the local standby, appends to the history and starts
// the post-promote checkpoint.
func (c *actx) promote(o ha.Observation, reason string) error {
	a := c.a
	oldTimeline, switchLSN := o.PG.Timeline, o.PG.ReplayLSN
	if err := c.pgPromote(); err != nil {
		return err
	}
	a.lastKnownPrimary = true
	a.following = ""
	// As package agent: a stop or suspend during the promotion shows only
	// now; fence at once and record no history line.
	if err := c.stillHoldsClaim(); err != nil {
		c.fenceNow("promoted after the leader claim was lost")
		return err
	}
	a.checkpointPending = true
	entry := cluster.HistoryEntry{Timeline: oldTimeline, SwitchLSN: switchLSN, Reason: reason, Time: c.mono(), NewLeader: a.m.name}
	if err := c.appendHistory(c.deadline(a.dyn.RetryTimeoutDuration()), entry); err != nil {
		a.tracef("appending to history: %v", err)
	}
	a.startTask("checkpoint", cluster.StateRunning, func(c *actx) error { return c.pgCheckpoint() }, func(err error) {
		if err == nil {
			a.checkpointPending = false
		}
	})
	return nil
}

// setSyncStandbys is postgres.Instance.SetSyncStandbys: the agent's copy
// is updated, and a running server's configuration is rewritten and
// reloaded only when it changed (a stopped one gets it at the next start).
// As package agent does, it restarts the SyncSetLSN settle period.
func (c *actx) setSyncStandbys(names []string, anyK int) {
	a := c.a
	same := slices.Equal(a.pgSyncNames, names) && a.pgSyncAny == anyK
	a.pgSyncNames, a.pgSyncAny = slices.Clone(names), anyK
	if pg := a.m.pg; !same && pg.running {
		a.writeConfig()
		pg.syncNames, pg.syncAny = slices.Clone(names), anyK
	}
	a.syncSetLSN, a.syncSetAt = 0, c.mono()
}

// writeConfig is postgres.Instance.writeConfig as far as the model cares:
// synchronous_standby_names goes to the data directory's postgresql.conf,
// where a restarted agent reads it back. Start, reload, SetPrimary, base
// backup and rewind write it.
func (a *agent) writeConfig() {
	if d := a.m.pg.data; d != nil {
		d.confSyncNames, d.confSyncAny = slices.Clone(a.pgSyncNames), a.pgSyncAny
	}
}

// publishSync writes (or deletes) the sync key, guarded by the revision
// this loop read.
func (c *actx) publishSync(o ha.Observation, names []string, quorum int) error {
	a := c.a
	dl := c.deadline(a.dyn.RetryTimeoutDuration())
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
		ok, err = c.deleteSync(dl, rev)
	} else {
		ok, err = c.setSync(dl, cluster.SyncState{Leader: a.m.name, Members: names, Quorum: quorum}, rev)
	}
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("sync key changed concurrently; retrying next loop")
	}
	if quorum > 0 {
		a.tracef("sync key: %s, quorum %d", joinNames(names), quorum)
	} else {
		a.tracef("sync key: %s", joinNames(names))
	}
	return nil
}

// handOver is the leader's half of a switchover: stop fast, wait until
// the target received the shutdown checkpoint, release the key. Once the
// target confirmed, a release without an answer is retried until the renew
// deadline and then left pending, never abandoned (package agent).
func (c *actx) handOver(o ha.Observation, target string) error {
	a := c.a
	if err := source(o.Cluster, target); err != nil {
		return err
	}
	rev := o.Cluster.Failover.Revision
	attempt, budget := min(releaseAttempt, a.dyn.RetryTimeoutDuration()), a.timing().RenewDeadline()
	a.expectRunning = false
	a.startTask("switchover", cluster.StateStopping, func(c *actx) error {
		if err := c.pgStop(false, 30*time.Second); err != nil {
			return c.abandonHandOver(rev, err)
		}
		ckpt := c.a.m.pg.data.ckptLSN
		if err := c.waitReceived(target, ckpt); err != nil {
			return c.abandonHandOver(rev, fmt.Errorf("%s did not confirm the shutdown checkpoint %d: %w", target, ckpt, err))
		}
		if ok, err := c.releaseLeaderKey(attempt, budget); !ok {
			return fmt.Errorf("%w: %w", errReleaseUnresolved, err)
		}
		c.a.tracef("switchover: leader key released to %s", target)
		return nil
	}, func(err error) {
		switch {
		case err == nil:
			a.releaseResolved("switchover hand-over")
		case errors.Is(err, errReleaseUnresolved):
			a.releasePending = true
		}
	})
	return nil
}

var errReleaseUnresolved = errors.New("switchover: releasing the leader key got no answer; retrying every loop")

func (c *actx) abandonHandOver(rev int64, cause error) error {
	if _, err := c.clearFailover(c.deadline(5*time.Second), rev); err != nil {
		cause = errors.Join(cause, err)
	}
	return fmt.Errorf("switchover abandoned, keeping leadership: %w", cause)
}

// waitReceived polls the target until it received WAL past lsn.
func (c *actx) waitReceived(target string, lsn int64) error {
	a := c.a
	to := a.s.byName[target]
	until := c.deadline(handoverWait)
	for c.mono().Before(until) {
		res, ok := c.peerCall(to, minTime(c.deadline(time.Second), until), func() (any, bool) {
			got, err := to.pg.receivedLSN()
			if err != nil {
				return nil, false
			}
			return got, true
		})
		if ok && res.(int64) > lsn {
			return nil
		}
		c.sleep(20 * time.Millisecond)
	}
	return errTimeout
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// bootstrap races for the initialize key and, on winning, creates the
// cluster: leader key, configuration, initdb, start, system identifier.
func (c *actx) bootstrap(dyn cluster.DynamicConfig) (err error) {
	a := c.a
	long := func() time.Time { return c.deadline(time.Minute) }
	won, err := c.createIfAbsent(long(), keyInitialize, "")
	if err != nil || !won {
		return err
	}
	a.tracef("won the initialize race: bootstrapping")
	got, err := c.acquireLeader(long())
	if err != nil || !got {
		_ = c.cancelInitialize(long())
		return errors.Join(errors.New("could not take the leader key for bootstrap"), err)
	}
	created := false
	defer func() {
		if err == nil {
			return
		}
		if a.m.pg.running {
			_ = c.pgStop(true, time.Second)
		}
		if created {
			a.m.pg.data = nil
		}
		_ = c.cancelInitialize(long())
		_ = c.releaseLeader(long())
	}()
	if _, err := c.createIfAbsent(long(), keyConfig, dyn); err != nil {
		return fmt.Errorf("writing the dynamic configuration: %w", err)
	}
	created = true
	c.sleep(a.s.uniform(time.Second, 2*time.Second)) // initdb
	a.m.pg.initdb()
	if err := c.pgStart(false, "", 5*time.Minute); err != nil {
		return err
	}
	return c.put(long(), keyInitialize, a.m.pg.data.sysid)
}

// startReplica starts PostgreSQL as a standby of upstream ("" = none).
func (c *actx) startReplica(view *cluster.Cluster, upstream string) error {
	if upstream != "" {
		if err := source(view, upstream); err != nil {
			return err
		}
	}
	return c.pgStart(true, upstream, 10*time.Minute)
}

// pgStart starts the postmaster and waits until it accepts connections.
func (c *actx) pgStart(standby bool, upstream string, timeout time.Duration) error {
	a := c.a
	pg := a.m.pg
	a.writeConfig()
	if err := pg.start(standby, upstream, a.pgSyncNames, a.pgSyncAny); err != nil {
		return err
	}
	gen := pg.gen
	until := c.deadline(timeout)
	c.p.waitFor(func() bool { return pg.gen != gen || pg.ready || !a.m.mono().Before(until) })
	switch {
	case pg.gen != gen:
		return errors.New("start: postmaster exited")
	case !pg.ready:
		return errors.New("start: timed out waiting for PostgreSQL to accept connections")
	}
	return nil
}

// pgStop stops PostgreSQL (immediate or fast) and waits until it is gone.
func (c *actx) pgStop(immediate bool, _ time.Duration) error {
	pg := c.a.m.pg
	if !pg.running {
		return nil
	}
	gen := pg.gen
	if immediate {
		pg.stopImmediate("demote")
	} else {
		pg.stopFast("stop")
	}
	c.p.waitFor(func() bool { return pg.gen != gen || !pg.running })
	return nil
}

// pgPromote is pg_promote(wait => true).
func (c *actx) pgPromote() error {
	pg := c.a.m.pg
	if err := pg.promote(); err != nil {
		return err
	}
	gen := pg.gen
	c.p.waitFor(func() bool { return pg.gen != gen || !pg.promoting })
	if pg.gen != gen || pg.standby {
		return errors.New("promote: server exited")
	}
	return nil
}

// pgCheckpoint runs CHECKPOINT.
func (c *actx) pgCheckpoint() error {
	pg := c.a.m.pg
	op := &pgOp{}
	gen := pg.gen
	pg.checkpoint(op)
	c.p.waitFor(func() bool { return op.done || pg.gen != gen })
	if !op.done {
		return errors.New("checkpoint: server exited")
	}
	return op.err
}

// sourceReady reports whether member name's PostgreSQL can serve a copy
// to this member now.
func (c *actx) sourceReady(name string) (*member, error) {
	src := c.a.s.byName[name]
	switch {
	case src == nil:
		return nil, fmt.Errorf("no member %s", name)
	case !c.a.s.peerReachable(c.a.m, src):
		return nil, fmt.Errorf("%s is unreachable", name)
	case !src.pg.running || !src.pg.ready || src.frozen():
		return nil, fmt.Errorf("%s is not accepting connections", name)
	}
	return src, nil
}

// pgBaseBackup clones the data directory from name.
func (c *actx) pgBaseBackup(name string) error {
	pg := c.a.m.pg
	if pg.data != nil {
		return errors.New("base backup: data directory is not empty")
	}
	if _, err := c.sourceReady(name); err != nil {
		return fmt.Errorf("base backup: %w", err)
	}
	c.sleep(c.a.s.uniform(time.Second, 3*time.Second))
	src, err := c.sourceReady(name)
	if err != nil {
		return fmt.Errorf("base backup: %w", err)
	}
	pg.baseBackup(src.pg)
	c.a.writeConfig()
	c.a.tracef("cloned from %s (timeline %d, lsn %d)", name, pg.tl(), pg.lsn())
	return nil
}

// pgRewind runs pg_rewind against name.
func (c *actx) pgRewind(name string) error {
	pg := c.a.m.pg
	if pg.running {
		return errors.New("rewind: PostgreSQL is running")
	}
	if pg.data == nil {
		return errors.New("rewind: data directory is not initialized")
	}
	if _, err := c.sourceReady(name); err != nil {
		return err
	}
	// Connect, compare the control files, list the files and read the
	// target's WAL: a source lost now leaves the target unchanged.
	c.sleep(c.a.s.uniform(400*time.Millisecond, 1600*time.Millisecond))
	if _, err := c.sourceReady(name); err != nil {
		return err
	}
	// Copy: from here a lost source leaves the target partly rewound.
	c.sleep(c.a.s.uniform(100*time.Millisecond, 400*time.Millisecond))
	src, err := c.sourceReady(name)
	if err != nil {
		return needsOperator{fmt.Errorf("pg_rewind stopped while copying files (%w): the target is only partly rewound", err)}
	}
	if pg.running {
		return errors.New("rewind: PostgreSQL is running")
	}
	what := pg.rewind(src.pg)
	c.a.writeConfig() // pg_rewind copied the source's configuration
	c.a.tracef("pg_rewind from %s: %s (timeline %d, lsn %d)", name, what, pg.tl(), pg.lsn())
	return nil
}

// task is a long-running operation beside the loop.
type task struct {
	name   string
	state  string
	p      *proc
	done   bool
	err    error
	onDone func(error)
}

// startTask runs fn as a background process of this agent.
func (a *agent) startTask(name, state string, fn func(c *actx) error, onDone func(error)) {
	t := &task{name: name, state: state, onDone: onDone}
	a.task = t
	t.p = newProc("task "+name, func(p *proc) {
		t.err = fn(&actx{a: a, p: p})
		t.done = true
	})
}

func (a *agent) taskDone() bool { return a.task != nil && a.task.done }

// collectTask finishes a completed task on the loop.
func (a *agent) collectTask() {
	if a.taskDone() {
		a.finishTask(a.task)
	}
}

func (a *agent) finishTask(t *task) {
	if a.task != t {
		return
	}
	a.task = nil
	if t.err != nil {
		a.tracef("task %s failed: %v", t.name, t.err)
	}
	if t.onDone != nil {
		t.onDone(t.err)
	}
}
