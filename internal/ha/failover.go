package ha

import (
	"fmt"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// decideFailoverKeyAsLeader carries out, or refuses, a switchover requested
// through the failover key while this member leads. ok is false when there
// is nothing to do.
func decideFailoverKeyAsLeader(o Observation) (Decision, bool) {
	if o.Cluster == nil || o.Cluster.Failover == nil {
		return Decision{}, false
	}
	f := o.Cluster.Failover
	self := o.Self.Name
	switch {
	case f.Member == self:
		// The request that made this member leader is done.
		return decide("switchover/failover to this member completed", act(ClearFailover), act(LeaderHousekeeping)), true
	case f.Leader != "" && f.Leader != self:
		return decide(fmt.Sprintf("failover key names leader %s, but this member leads: the request is stale", f.Leader),
			act(ClearFailover), act(LeaderHousekeeping)), true
	}
	if f.ScheduledAt != "" {
		at, err := time.Parse(time.RFC3339, f.ScheduledAt)
		if err != nil {
			return decide(fmt.Sprintf("scheduled_at %q of the failover key is not RFC 3339: dropping the request", f.ScheduledAt),
				act(ClearFailover), act(LeaderHousekeeping)), true
		}
		if o.Wall.Before(at) {
			return decide("holding the leader key; switchover scheduled at "+f.ScheduledAt, act(LeaderHousekeeping)), true
		}
	}
	target := f.Member
	if target == "" {
		target = bestCandidate(o)
		if target == "" {
			return decide("switchover requested but no replica is eligible: cancelling it", act(ClearFailover),
				act(LeaderHousekeeping)), true
		}
	}
	if why := candidateProblem(o, o.Cluster.Member(target)); why != "" {
		return decide(fmt.Sprintf("switchover to %s cancelled: %s", target, why), act(ClearFailover),
			act(LeaderHousekeeping)), true
	}
	return decide(fmt.Sprintf("switchover to %s requested: handing over leadership", target), actOn(HandOver, target)), true
}

// candidateProblem says why m cannot take over now, or "".
func candidateProblem(o Observation, m *cluster.Member) string {
	switch {
	case m == nil:
		return "it is not a member of the cluster"
	case m.EffectiveTags().Priority() <= 0:
		return "it has nofailover set or failover_priority 0"
	case m.State != cluster.StateRunning || m.ReplicationState != cluster.ReplicationStreaming:
		return fmt.Sprintf("it is not a streaming replica (state %q, replication %q)", m.State, m.ReplicationState)
	case m.XLogLocation == nil:
		return "its WAL position is unknown"
	case o.Config.SynchronousMode.Enabled() && !o.Cluster.Sync.Has(m.Name):
		return "synchronous mode is on and it is not a synchronous standby"
	}
	if lag := o.PG.WriteLSN - candidatePosition(o, m); lag > o.Config.MaximumLagOnFailover {
		return fmt.Sprintf("it lags %d bytes behind (maximum_lag_on_failover %d)", lag, o.Config.MaximumLagOnFailover)
	}
	return ""
}

// candidatePosition is the WAL position of replica m to compare with this
// leader's o.PG.WriteLSN: the larger of m's published xlog_location and
// what pg_stat_replication reports m has flushed. The flush position comes
// from the same observation as WriteLSN; m's key may be a loop older and
// miss WAL m received since (after a clone it can sit a whole WAL segment
// behind, at the position where its WAL receiver started).
func candidatePosition(o Observation, m *cluster.Member) int64 {
	pos := int64(0)
	if m.XLogLocation != nil {
		pos = *m.XLogLocation
	}
	if flush, ok := o.PG.StandbyFlush[m.Name]; ok && flush > pos {
		pos = flush
	}
	return pos
}

// LeaderStatus is the status key a leader writes from observation o: its
// WAL position and the flush position of every member streaming directly
// from it (cluster.StatusFrom), both from this one observation. Readers
// compare a replica with the optime through Cluster.Position.
func LeaderStatus(o Observation) cluster.Status {
	return cluster.StatusFrom(o.Cluster, o.Self.Name, o.PG.WriteLSN, o.PG.StandbyFlush)
}

// bestCandidate is the eligible replica with the most WAL, ties broken by
// failover_priority and then by name.
func bestCandidate(o Observation) string {
	best := ""
	var bestLSN int64
	bestPrio := 0
	for _, m := range o.Cluster.SortedMembers() {
		if m.Name == o.Self.Name || candidateProblem(o, m) != "" {
			continue
		}
		lsn, prio := candidatePosition(o, m), m.EffectiveTags().Priority()
		if best == "" || lsn > bestLSN || (lsn == bestLSN && prio > bestPrio) {
			best, bestLSN, bestPrio = m.Name, lsn, prio
		}
	}
	return best
}

// decideRequestedRace handles a leaderless cluster with a failover key that
// names a candidate: only that member races; the others wait while it is
// alive. For a switchover the old leader has checked that the candidate
// holds its shutdown checkpoint; a failover without a leader is the
// operator's explicit choice, so lag does not disqualify the candidate.
func decideRequestedRace(o Observation, f *cluster.Failover) Decision {
	kind := "failover"
	if f.Leader != "" {
		kind = "switchover"
	}
	if f.Member == o.Self.Name {
		if o.Self.Tags.Priority() <= 0 {
			return decide(kind + " requested to this member, but nofailover is set: refusing")
		}
		if why := o.Self.PrePromoteBackoff; why != "" {
			return refusePromotion(kind + " requested to this member, but " + why)
		}
		return decide(fmt.Sprintf("%s to this member requested by the operator: taking the leader key", kind),
			promotion(o)...)
	}
	if c := o.Cluster.Member(f.Member); c != nil && c.State == cluster.StateRunning {
		return decide(fmt.Sprintf("%s to %s in progress; not racing", kind, f.Member))
	}
	// The candidate is gone: fall back to an ordinary election (on a
	// copy: the view belongs to the caller).
	view := *o.Cluster
	view.Failover = nil
	o.Cluster = &view
	return decideRace(o)
}
