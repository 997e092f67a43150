package ha

import (
	"fmt"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Decide returns the next actions for one HA loop. It is a pure function
// of its input.
//
// The order of the checks is the safety argument:
//  1. a member that may be a writable primary without a confirmed lease is
//     fenced before anything else is considered;
//  2. a data directory that belongs to another cluster is refused;
//  3. only then are bootstrap, start, follow, race and promotion decided.
//
// A cluster without an initialize key adopts an existing data directory
// (a standalone PostgreSQL, running or stopped) as its first member: see
// decideAdoptStopped and decidePrimary.
func Decide(o Observation) Decision {
	if d, ok := fenceCheck(o); ok {
		return d
	}
	if o.Task != "" {
		return decide(fmt.Sprintf("waiting for %s to finish", o.Task))
	}
	if d, ok := identityCheck(o); ok {
		return d
	}
	switch {
	case o.PG.DataDir == DataDirEmpty:
		return decideEmpty(o)
	case !o.PG.Running:
		return decideStopped(o)
	case !o.PG.Answered:
		return decideUnanswered(o)
	case !o.PG.InRecovery:
		return decidePrimary(o)
	default:
		return decideReplica(o)
	}
}

// decideUnanswered handles a running PostgreSQL that did not answer: a
// busy or starting server, so wait. A leader's server that has stayed
// silent (no answer, not even an error, to the status query or to a new
// connection) for primary_start_timeout is hung, by a stopped postmaster
// or a stuck disk: it serves no new client, and waiting would keep the
// cluster without a usable primary for ever. It is stopped immediately;
// the crashed-primary path then restarts it in place, or releases the key
// if that fails for primary_start_timeout.
func decideUnanswered(o Observation) Decision {
	limit := o.Config.PrimaryStartTimeoutDuration()
	if limit <= 0 {
		limit = o.Config.TTLDuration()
	}
	since := o.PG.UnansweredSince
	if o.Lease.KeyOnMyLease && !o.Config.Pause && !since.IsZero() && o.Now.Sub(since) >= limit {
		return decide(fmt.Sprintf("PostgreSQL has not answered for %s (limit primary_start_timeout %s): stopping it immediately to restart it in place",
			o.Now.Sub(since).Round(time.Millisecond), limit), act(StopUnresponsive))
	}
	return decide("PostgreSQL is running but did not answer; waiting")
}

// holdsLease reports whether this member provably holds the leader key now:
// the key was last seen on its lease, and a renewal of that lease sent less
// than the renew deadline ago was confirmed.
func holdsLease(o Observation) bool {
	if !o.Lease.KeyOnMyLease {
		return false
	}
	rd := renewDeadline(o)
	fresh := func(at time.Time) bool { return !at.IsZero() && o.Now.Sub(at) < rd }
	if fresh(o.Lease.ConfirmedSentAt) {
		return true
	}
	// failsafe_mode: during a DCS outage every member in the failsafe key
	// has acknowledged this leader, so none of them can be promoted.
	return o.Config.FailsafeMode && o.Cluster == nil && fresh(o.Failsafe.ConfirmedAt)
}

// renewDeadline is R for the lease the agent holds: derived from the TTL
// etcd granted for it when that is smaller than the configured ttl.
func renewDeadline(o Observation) time.Duration {
	return o.Config.ForLease(o.Lease.TTL).RenewDeadline()
}

// mayBeWritable is true when the local PostgreSQL may accept writes.
func mayBeWritable(p Postgres) bool {
	if !p.Running {
		return false
	}
	if p.Answered {
		return !p.InRecovery
	}
	return p.LastKnownPrimary
}

// fenceCheck stops a possibly writable PostgreSQL whose leadership is not
// confirmed within the renew deadline. It runs before everything else,
// even while a background task is in progress.
func fenceCheck(o Observation) (Decision, bool) {
	if !mayBeWritable(o.PG) || o.Config.Pause {
		// In maintenance mode nothing is demoted automatically; no member
		// is promoted automatically either, so no second primary can
		// appear without an operator's failover.
		return Decision{}, false
	}
	if o.Lease.KeyOnMyLease && !holdsLease(o) {
		age := "never"
		if !o.Lease.ConfirmedSentAt.IsZero() {
			age = o.Now.Sub(o.Lease.ConfirmedSentAt).Round(time.Millisecond).String()
		}
		return decide(fmt.Sprintf("last confirmed lease renewal was sent %s ago, renew deadline is %s: fencing before the lease can expire",
			age, renewDeadline(o)), act(Fence)), true
	}
	if o.Lease.KeyOnMyLease || o.Task != "" {
		return Decision{}, false
	}
	if o.Cluster == nil {
		// A writable primary that never had the key on its lease and
		// cannot read the DCS has no claim to leadership at all.
		return decide("DCS unreachable and no confirmed leader lease: fencing", act(Fence)), true
	}
	return Decision{}, false
}

// identityCheck refuses a data directory initialised by another cluster.
func identityCheck(o Observation) (Decision, bool) {
	if o.Cluster == nil || o.Cluster.Initialize == nil {
		return Decision{}, false
	}
	want := o.Cluster.Initialize.SystemID
	if want == "" || o.PG.SystemID == "" || o.PG.SystemID == want {
		return Decision{}, false
	}
	return decide(fmt.Sprintf("data directory belongs to another cluster: its system identifier is %s, cluster %q has %s; "+
		"refusing to touch it (point postgresql.data_dir at an empty directory, or remove this one yourself if it is not needed)",
		o.PG.SystemID, o.Cluster.Scope, want), act(Refuse)), true
}

// decideEmpty handles a member without a data directory: bootstrap the
// cluster or clone it.
func decideEmpty(o Observation) Decision {
	c := o.Cluster
	if c == nil {
		return decide("DCS unreachable; cannot bootstrap or clone: " + o.DCSError)
	}
	if c.Initialize == nil {
		if l := c.LeaderName(); l != "" && l != o.Self.Name {
			// The leader adopted an existing data directory and has not
			// written its system identifier yet: bootstrapping would fail
			// on the leader key, and cloning must wait for the identifier.
			return decide(fmt.Sprintf("cluster has a leader (%s) but no initialize key yet: waiting for it to write its system identifier before cloning", l))
		}
		if o.Self.WatchdogMissing {
			return decide("cluster is not initialized; watchdog.mode is required but the watchdog is unavailable, so waiting for another member to bootstrap it")
		}
		if o.Self.Tags.Priority() <= 0 {
			return decide("cluster is not initialized; nofailover is set, so waiting for another member to bootstrap it")
		}
		return decide("cluster is not initialized: racing to bootstrap it", act(Bootstrap))
	}
	if c.Initialize.SystemID == "" {
		return decide("another member is bootstrapping the cluster; waiting")
	}
	if f := o.PG.Rejoin; f != nil {
		if f.NeedsOperator {
			return decideNeedsOperator(o, f)
		}
		if o.Now.Before(f.RetryAt) {
			return retryLater(o, f)
		}
	}
	if src := cloneSource(o); src != "" {
		return decide("cloning data directory from "+src, actOn(Clone, src))
	}
	return decide("no running member to clone from; waiting")
}

// cloneSource picks a running member to copy: a replica tagged clonefrom
// when there is one, else the leader.
func cloneSource(o Observation) string {
	c := o.Cluster
	for _, m := range c.SortedMembers() {
		if m.Name != o.Self.Name && m.EffectiveTags().CloneFrom && m.State == cluster.StateRunning {
			return m.Name
		}
	}
	if l := c.LeaderMember(); l != nil && l.Name != o.Self.Name && l.State == cluster.StateRunning {
		return l.Name
	}
	return ""
}

// decideStopped handles an initialised data directory with no postmaster.
func decideStopped(o Observation) Decision {
	c := o.Cluster
	if c == nil {
		return decide("DCS unreachable; leaving PostgreSQL stopped: " + o.DCSError)
	}
	if o.Config.Pause {
		return decide("cluster is paused; not starting PostgreSQL")
	}
	leader := c.LeaderName()
	f := o.PG.Rejoin
	switch {
	case leader == o.Self.Name:
		return decideStoppedLeader(o)
	case f != nil && f.NeedsOperator:
		// Never start a data directory a rejoin step left unusable, not
		// even read-only for an election.
		return decideNeedsOperator(o, f)
	case leader == "" && c.Initialize == nil:
		return decideAdoptStopped(o)
	case leader == "":
		return decide("no leader; starting read-only to take part in the election", actOn(StartReplica, ""))
	}
	if f != nil && o.Now.Before(f.RetryAt) {
		return retryLater(o, f)
	}
	lm := c.Member(leader)
	if lm != nil && lm.Timeline > 0 && o.PG.ControlTimeline > 0 && o.PG.ControlTimeline < lm.Timeline {
		return decideRejoin(o, lm)
	}
	up := upstream(o)
	return decide("starting as a replica of "+up, actOn(StartReplica, up))
}

// decideAdoptStopped handles a stopped data directory in a cluster with
// neither an initialize key nor a leader: a standalone PostgreSQL being
// converted. A data directory last shut down (cleanly or by a crash) as a
// primary becomes the cluster's first member in place: it claims the
// initialize key with its own system identifier, takes the leader key and
// starts as primary. A standby (pg_control says so and standby.signal or
// recovery.signal is present) may follow a primary elsewhere that has
// newer WAL: it is neither promoted nor started, and waits for the
// cluster to be initialized from its primary.
func decideAdoptStopped(o Observation) Decision {
	p := o.PG
	switch {
	case p.SystemID == "":
		return decide("cluster has no initialize key and the system identifier of the stopped data directory is unknown (pg_control could not be read); leaving it stopped")
	case p.ControlStandby && p.RecoverySignalled:
		return decide(fmt.Sprintf("cluster has no initialize key and this stopped data directory (system identifier %s) is a standby (pg_control says it is in recovery, and standby.signal or recovery.signal is present): "+
			"it may be a replica of a primary elsewhere, so it is not promoted; start Regent on the primary first, "+
			"or remove the signal file if this directory is the primary", p.SystemID))
	case o.Self.WatchdogMissing:
		return decide("cluster has no initialize key; watchdog.mode is required but the watchdog is unavailable, so not adopting this data directory as the primary")
	case o.Self.Tags.Priority() <= 0:
		return decide("cluster has no initialize key; nofailover is set, so not adopting this data directory as the primary")
	}
	how := "it was shut down as a primary"
	if p.ControlStandby {
		how = "pg_control says it was in recovery, but there is no standby.signal or recovery.signal: a stopped standalone primary"
	}
	return decide(fmt.Sprintf("cluster has no initialize key and no leader; this stopped data directory (system identifier %s; %s) becomes the cluster's first member: "+
		"claiming the initialize key with its system identifier, taking the leader key and starting it as primary", p.SystemID, how),
		act(ClaimInitialize), act(AcquireLeader), act(StartPrimary))
}

// upstream is the member a replica streams from: the replica named by its
// replicatefrom tag while that one streams from the leader on the
// leader's timeline, otherwise the leader itself.
func upstream(o Observation) string {
	c := o.Cluster
	leader := c.LeaderName()
	from := o.Self.Tags.ReplicateFrom
	if from == "" || from == o.Self.Name || from == leader {
		return leader
	}
	m, lm := c.Member(from), c.LeaderMember()
	if m == nil || lm == nil || m.State != cluster.StateRunning ||
		m.ReplicationState != cluster.ReplicationStreaming || m.Timeline != lm.Timeline {
		return leader
	}
	// The upstream replica may lack the WAL this member needs (it was
	// re-cloned, or recycled segments): after ttl without streaming from
	// it, catch up from the leader; the cascade resumes once streaming.
	if o.PG.Running && o.PG.Following == from && !o.PG.NotStreamingSince.IsZero() &&
		o.Now.Sub(o.PG.NotStreamingSince) >= o.Config.TTLDuration() {
		return leader
	}
	return from
}

// decideStoppedLeader restarts a crashed primary in place while
// primary_start_timeout allows, and otherwise gives up the key.
func decideStoppedLeader(o Observation) Decision {
	if o.Config.Pause {
		return decide("cluster is paused: not restarting PostgreSQL on the leader")
	}
	if !holdsLease(o) {
		return decide("leader key names this member but the lease is not confirmed; waiting")
	}
	if o.PG.ControlStandby {
		// The promotion did not finish (PostgreSQL died during it: a full
		// disk, a kill). Starting this data directory as a primary would
		// end recovery without choosing a new timeline, and the old
		// primary may have written different WAL on the same one: two
		// histories under one timeline number. Let the election run again.
		return decide("PostgreSQL stopped before its promotion finished (pg_control says it is a standby): "+
			"releasing the leader key instead of starting it as a primary on the old timeline", act(ReleaseLeader))
	}
	timeout := o.Config.PrimaryStartTimeoutDuration()
	down := time.Duration(0)
	if !o.PG.DownSince.IsZero() {
		down = o.Now.Sub(o.PG.DownSince)
	}
	if down >= timeout {
		return decide(fmt.Sprintf("PostgreSQL has been down for %s (primary_start_timeout %s, last start failed: %t): releasing the leader key so a replica can take over",
			down.Round(time.Millisecond), timeout, o.PG.StartFailed), act(ReleaseLeader))
	}
	if o.PG.StartFailed {
		// A first attempt can fail only because the killed postmaster's
		// children have not exited yet ("pre-existing shared memory block
		// is still in use"): keep trying until primary_start_timeout.
		return decide(fmt.Sprintf("restart in place failed after %s down; retrying until primary_start_timeout (%s)",
			down.Round(time.Millisecond), timeout), act(StartPrimary))
	}
	return decide("PostgreSQL is not running on the leader: restarting it in place", act(StartPrimary))
}

// decideRejoin handles a stopped member whose timeline is behind the
// leader's: rewind it, re-clone it, or start it and hope, per config.
func decideRejoin(o Observation, leader *cluster.Member) Decision {
	pgc := o.Config.PostgreSQL
	if leader.State != cluster.StateRunning {
		return decide(fmt.Sprintf("timeline %d is behind leader %s (timeline %d) which is not running; waiting",
			o.PG.ControlTimeline, leader.Name, leader.Timeline))
	}
	if leader.CheckpointAfterPromote != nil && !*leader.CheckpointAfterPromote {
		return decide("waiting for the post-promote checkpoint on " + leader.Name + " before pg_rewind")
	}
	if pgc.UsePgRewind {
		// A transient failure is retried here once its backoff has passed
		// (decideStopped), always against the current leader.
		if f := o.PG.Rejoin; f != nil {
			return decide(fmt.Sprintf("timeline %d is behind leader %s (timeline %d): retrying pg_rewind (attempt %d; the last one against %s failed: %s)",
				o.PG.ControlTimeline, leader.Name, leader.Timeline, f.Attempts+1, f.Source, f.Reason), actOn(Rewind, leader.Name))
		}
		return decide(fmt.Sprintf("timeline %d is behind leader %s (timeline %d): rewinding before rejoining",
			o.PG.ControlTimeline, leader.Name, leader.Timeline), actOn(Rewind, leader.Name))
	}
	if pgc.RemoveDataDirectoryOnDivergedTimelines {
		return decide("timeline behind the leader and use_pg_rewind is off: re-cloning from "+leader.Name,
			actOn(Reclone, leader.Name))
	}
	return decide("timeline behind the leader and use_pg_rewind is off: starting as a replica of "+leader.Name,
		actOn(StartReplica, leader.Name))
}

// retryLater waits out the backoff after a transient rejoin failure: the
// source was unreachable, restarting or went away, and the data directory
// is unchanged. The next attempt runs against whoever leads then.
func retryLater(o Observation, f *RejoinFailure) Decision {
	return decide(fmt.Sprintf("%s from %s failed (%s; attempt %d, transient): retrying against the current leader in %s",
		f.Step, f.Source, f.Reason, f.Attempts, f.RetryAt.Sub(o.Now).Round(100*time.Millisecond)))
}

// decideNeedsOperator handles a rejoin failure that trying again cannot
// fix: re-clone when remove_data_directory_on_rewind_failure allows it (the
// old directory is moved aside, never deleted), otherwise wait for
// `regent reinit`.
func decideNeedsOperator(o Observation, f *RejoinFailure) Decision {
	what := fmt.Sprintf("%s from %s failed and retrying cannot help: %s", f.Step, f.Source, f.Reason)
	lm := o.Cluster.LeaderMember()
	if f.Step != "pg_basebackup" && o.Config.PostgreSQL.RemoveDataDirectoryOnRewindFailure {
		if lm == nil || lm.Name == o.Self.Name || lm.State != cluster.StateRunning {
			return decide(what + "; waiting for a running leader to re-clone from (remove_data_directory_on_rewind_failure)")
		}
		return decide(what+"; re-cloning from "+lm.Name+" (remove_data_directory_on_rewind_failure)", actOn(Reclone, lm.Name))
	}
	return decide(what + "; waiting for an operator: run `regent reinit " + o.Self.Name + "`")
}

// decidePrimary handles a running PostgreSQL that accepts writes.
func decidePrimary(o Observation) Decision {
	if holdsLease(o) {
		if c := o.Cluster; c != nil && c.Initialize == nil && o.PG.SystemID != "" {
			return decide(fmt.Sprintf("holding the leader key but the cluster has no initialize key: writing this primary's system identifier (%s) to it",
				o.PG.SystemID), act(ClaimInitialize), act(LeaderHousekeeping))
		}
		if d, ok := decideFailoverKeyAsLeader(o); ok {
			return d
		}
		if d, ok := decideSync(o); ok {
			return d
		}
		if o.PG.CheckpointPending {
			return decide("holding the leader key; post-promote checkpoint in progress", act(LeaderHousekeeping))
		}
		return decide("holding the leader key", act(LeaderHousekeeping))
	}
	c := o.Cluster
	if c == nil {
		// Only reachable in maintenance mode: fenceCheck handles the
		// unreachable DCS otherwise.
		return decide("DCS unreachable and the cluster is paused: leaving the primary running")
	}
	leader := c.LeaderName()
	if leader != "" && leader != o.Self.Name {
		return decide(fmt.Sprintf("leader key is held by %s: demoting to prevent split brain", leader), act(Demote))
	}
	if leader == o.Self.Name {
		return decide("leader key names this member but is not on its lease yet; waiting for ownership confirmation")
	}
	if last := c.LastTimeline(); last > 0 && o.PG.Timeline <= last {
		return decide(fmt.Sprintf("running as primary on timeline %d but the history already has a newer timeline (%d): demoting a stale primary",
			o.PG.Timeline, last+1), act(Demote))
	}
	if o.Config.Pause {
		return decide("cluster is paused: not taking the leader key automatically")
	}
	if c.Initialize == nil && o.PG.SystemID != "" {
		return decide(fmt.Sprintf("running as primary; the cluster has no initialize key and no leader: adopting this data directory (system identifier %s) as the cluster's first member: "+
			"claiming the initialize key with its system identifier, then the leader key", o.PG.SystemID),
			act(ClaimInitialize), act(AcquireLeader), act(LeaderHousekeeping))
	}
	return decide("running as primary without a leader key: taking the key", act(AcquireLeader), act(LeaderHousekeeping))
}

// decideReplica handles a running standby.
func decideReplica(o Observation) Decision {
	c := o.Cluster
	if c == nil {
		return decide("DCS unreachable; staying a replica: " + o.DCSError)
	}
	leader := c.LeaderName()
	if leader == o.Self.Name {
		if holdsLease(o) {
			if o.Config.SynchronousMode.Enabled() && (c.Sync == nil || c.Sync.Leader != o.Self.Name) {
				return decide("holding the leader key while in recovery: claiming the sync key, then promoting",
					Action{Kind: PublishSync}, act(Promote))
			}
			return decide("holding the leader key while in recovery: promoting", act(Promote))
		}
		return decide("leader key names this member but is not confirmed on its lease; waiting")
	}
	if leader != "" {
		return decideFollow(o, leader)
	}
	return decideRace(o)
}

// decideFollow keeps a replica pointed at the leader.
func decideFollow(o Observation, leader string) Decision {
	if up := upstream(o); o.PG.Following != up {
		if up == leader {
			return decide("pointing replication at leader "+leader, actOn(Follow, leader))
		}
		return decide(fmt.Sprintf("pointing replication at %s (replicatefrom), which streams from leader %s", up, leader),
			actOn(Follow, up))
	}
	lm := o.Cluster.Member(leader)
	if lm != nil && lm.Timeline > o.PG.Timeline && !o.PG.NotStreamingSince.IsZero() &&
		o.Now.Sub(o.PG.NotStreamingSince) >= o.Config.TTLDuration() {
		return decide(fmt.Sprintf("not streaming for %s and behind leader's timeline %d: stopping to rejoin",
			o.Now.Sub(o.PG.NotStreamingSince).Round(time.Second), lm.Timeline), act(StopForRejoin))
	}
	if o.PG.Following != leader {
		return decide(fmt.Sprintf("following %s (replicatefrom) in a cascade from leader %s", o.PG.Following, leader))
	}
	return decide("following leader " + leader)
}

// refusePromotion is a Wait decision that the agent records as a refused
// promotion.
func refusePromotion(reason string) Decision {
	d := decide(reason)
	d.PromotionRefused = true
	return d
}

// decideRace decides whether this replica may take part in a leader race.
func decideRace(o Observation) Decision {
	if f := o.Cluster.Failover; f != nil && f.Member != "" {
		return decideRequestedRace(o, f)
	}
	if reason := ineligible(o); reason != "" {
		return refusePromotion("no leader, but not eligible for promotion: " + reason)
	}
	if !o.PeersProbed {
		return decide("no leader: asking peers before racing", act(ProbePeers))
	}
	mine := o.PG.LSN()
	prio := o.Self.Tags.Priority()
	for _, p := range o.Peers {
		if !p.Reachable || p.Name == o.Self.Name {
			continue
		}
		switch {
		case p.Role == cluster.RolePrimary && p.State == cluster.StateRunning:
			return decide(fmt.Sprintf("no leader key, but %s still runs as primary; not racing", p.Name))
		case p.Priority <= 0:
			continue
		case o.Config.SynchronousMode.Enabled() && !syncEligible(o.Cluster, p.Name):
			continue // cannot be promoted, so it does not block the race
		case p.Timeline > 0 && p.Timeline < o.PG.Timeline:
			continue // on an older timeline: ineligible, so it must not block the race
		case p.LSN > mine:
			return decide(fmt.Sprintf("%s has more WAL (%s > %s); not racing",
				p.Name, cluster.FormatLSN(p.LSN), cluster.FormatLSN(mine)))
		case p.LSN == mine && p.Priority > prio:
			return decide(fmt.Sprintf("%s has the same WAL and a higher failover_priority (%d > %d); not racing",
				p.Name, p.Priority, prio))
		}
	}
	if o.Config.SynchronousMode.Enabled() {
		if why := quorumProblem(o); why != "" {
			return refusePromotion("no leader, but not promoting automatically: " + why)
		}
	}
	return decide(fmt.Sprintf("no leader and this member is the healthiest candidate (%s): racing for the key",
		cluster.FormatLSN(mine)), promotion(o)...)
}

// ineligible returns why this replica must not promote automatically, or "".
func ineligible(o Observation) string {
	c := o.Cluster
	switch {
	case o.Config.Pause:
		return "cluster is paused"
	case o.Self.Tags.Priority() <= 0:
		return "nofailover is set or failover_priority is 0"
	case o.Self.WatchdogMissing:
		return "watchdog.mode is required but the watchdog device is unavailable"
	case o.Self.PrePromoteBackoff != "":
		return o.Self.PrePromoteBackoff
	case c.Initialize == nil || c.Initialize.SystemID == "":
		return "cluster initialization is not complete"
	}
	if last := c.LastTimeline(); last > 0 && o.PG.Timeline <= last {
		return fmt.Sprintf("on timeline %d but the history has timeline %d", o.PG.Timeline, last+1)
	}
	if f := o.Failsafe; o.Config.FailsafeMode && !f.HeardAt.IsZero() && o.Now.Sub(f.HeardAt) < o.Config.TTLDuration() {
		return fmt.Sprintf("leader %s was acknowledged through failsafe_mode %s ago", f.Leader,
			o.Now.Sub(f.HeardAt).Round(time.Millisecond))
	}
	if o.Config.SynchronousMode.Enabled() && !syncEligible(c, o.Self.Name) {
		if o.Config.SynchronousMode == cluster.SyncQuorum {
			return "synchronous_mode is quorum and this member is not listed in the sync key, so it may miss acknowledged commits"
		}
		return "synchronous mode is on and this member is not a published synchronous standby, so it may miss acknowledged commits"
	}
	if opt := c.Status.Optime; opt > 0 {
		if lag := opt - o.PG.LSN(); lag > o.Config.MaximumLagOnFailover {
			return fmt.Sprintf("lag %d bytes behind the last known leader position exceeds maximum_lag_on_failover (%d)",
				lag, o.Config.MaximumLagOnFailover)
		}
	}
	return ""
}

// syncEligible reports whether name holds every acknowledged commit in
// synchronous mode: a published synchronous standby, or the leader that
// published the sync key (it wrote those commits itself).
func syncEligible(c *cluster.Cluster, name string) bool {
	return c.Sync.Has(name) || (c.Sync != nil && c.Sync.Leader == name)
}

// promotion is the action sequence that turns this replica into the leader.
// In synchronous mode the sync key is claimed, empty, before PostgreSQL is
// promoted: from then on no other member counts as holding every commit the
// new primary acknowledges, until it publishes its own synchronous standbys.
func promotion(o Observation) []Action {
	if o.Config.SynchronousMode.Enabled() {
		return []Action{act(AcquireLeader), {Kind: PublishSync}, act(Promote)}
	}
	return []Action{act(AcquireLeader), act(Promote)}
}
