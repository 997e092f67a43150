package ha

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/regent-ha/regent/internal/cluster"
)

// decideSync keeps the synchronous standbys of a leader in synchronous
// mode, one step per loop, in an order that keeps the sync key truthful:
//
//  1. a member leaves the sync key before it leaves
//     synchronous_standby_names, so a published member has every commit
//     acknowledged while it was published;
//  2. synchronous_standby_names names exactly the chosen members
//     (FIRST n with n = their number), so PostgreSQL never falls back to a
//     standby that is not published;
//  3. a member enters the sync key only after PostgreSQL reports it as
//     synchronous.
//
// ok is false when nothing needs to change.
func decideSync(o Observation) (Decision, bool) {
	if o.Cluster == nil {
		return Decision{}, false // nothing changes without the DCS
	}
	self := o.Self.Name
	sync := o.Cluster.Sync
	if !o.Config.SynchronousMode.Enabled() {
		switch {
		case sync != nil:
			return decide("synchronous mode is off: removing the sync key first", act(PublishSync), act(LeaderHousekeeping)), true
		case len(o.PG.SyncStandbyNames) > 0:
			return decide("synchronous mode is off: clearing synchronous_standby_names",
				Action{Kind: SetSyncStandbys}, act(LeaderHousekeeping)), true
		}
		return Decision{}, false
	}
	if o.Config.SynchronousMode == cluster.SyncQuorum {
		return decideQuorumSync(o)
	}
	var published []string
	if sync != nil && sync.Leader == self && sync.Quorum == 0 {
		published = sync.Members
	}
	desired := chooseSync(o, published)

	// 1. Unpublish members that are no longer wanted, and claim the key
	// after a promotion (it still names the old leader). A key left by
	// quorum mode is emptied: its members need not each hold every commit.
	keep := intersect(published, desired)
	if sync != nil && sync.Leader == self && sync.Quorum != 0 {
		return decide("synchronous mode changed from quorum to on: publishing an empty sync key before changing synchronous_standby_names",
			Action{Kind: PublishSync}, act(LeaderHousekeeping)), true
	}
	if sync == nil || sync.Leader != self || len(keep) < len(published) {
		return decide(fmt.Sprintf("publishing synchronous standbys [%s] (dropping [%s]) before changing synchronous_standby_names",
			strings.Join(keep, ","), strings.Join(minus(published, keep), ",")),
			Action{Kind: PublishSync, Names: keep}, act(LeaderHousekeeping)), true
	}
	// 2. Make PostgreSQL wait for exactly the desired members.
	want := desired
	if len(want) == 0 && o.Config.SynchronousModeStrict {
		want = []string{"*"}
	}
	if !sameSet(o.PG.SyncStandbyNames, want) || o.PG.SyncQuorum != 0 {
		reason := fmt.Sprintf("setting synchronous_standby_names to [%s]", strings.Join(want, ","))
		if len(desired) == 0 {
			if o.Config.SynchronousModeStrict {
				reason = "no streaming replica can be synchronous: strict mode keeps commits waiting for any standby"
			} else {
				reason = "no streaming replica can be synchronous: commits continue asynchronously and no member may be promoted automatically"
			}
		}
		return decide(reason, Action{Kind: SetSyncStandbys, Names: want}, act(LeaderHousekeeping)), true
	}
	// 3. Publish the members PostgreSQL now waits for and that hold every
	// commit acknowledged before it started waiting for them (commits
	// acknowledged asynchronously, or by another standby).
	var confirmed []string
	for _, name := range intersect(desired, o.PG.SyncReported) {
		if o.PG.SyncSetLSN > 0 && o.PG.StandbyFlush[name] >= o.PG.SyncSetLSN {
			confirmed = append(confirmed, name)
		}
	}
	if add := minus(confirmed, published); len(add) > 0 {
		names := append(slices.Clone(published), add...)
		sort.Strings(names)
		return decide(fmt.Sprintf("PostgreSQL now waits for [%s]: publishing them as synchronous standbys", strings.Join(add, ",")),
			Action{Kind: PublishSync, Names: names}, act(LeaderHousekeeping)), true
	}
	return Decision{}, false
}

// chooseSync picks up to synchronous_node_count synchronous standbys
// from syncCandidates: the highest sync_priority, among equals keeping the
// current ones while they qualify, then the least lagging.
func chooseSync(o Observation, current []string) []string {
	out, _ := syncCandidates(o, current)
	if len(out) > o.Config.SynchronousNodeCount {
		out = out[:o.Config.SynchronousNodeCount]
	}
	sort.Strings(out)
	return out
}

// syncCandidates lists the streaming replicas of this leader, on its
// timeline, without replicatefrom or nostream (such a replica recovers
// from the archive only) and with a positive sync priority (not nosync):
// as Patroni orders them, healthy ones first (within
// maximum_lag_on_syncnode, see laggingSync), then by sync_priority,
// highest first, then the current synchronous ones, then by WAL position,
// most first. A lagging candidate stays in the list, last: it is chosen
// only when there are not enough healthy ones, so the lag rule never
// leaves the leader with fewer synchronous standbys.
func syncCandidates(o Observation, current []string) (names []string, lagging map[string]bool) {
	var candidates []*cluster.Member
	for _, m := range o.Cluster.SortedMembers() {
		if m.Name == o.Self.Name || m.EffectiveTags().SyncPriorityValue() <= 0 || m.EffectiveTags().ReplicateFrom != "" ||
			m.EffectiveTags().NoStream ||
			m.State != cluster.StateRunning || m.ReplicationState != cluster.ReplicationStreaming ||
			m.XLogLocation == nil || m.Timeline != o.PG.Timeline {
			continue
		}
		candidates = append(candidates, m)
	}
	lagging = laggingSync(o, candidates, current)
	sort.SliceStable(candidates, func(i, j int) bool {
		li, lj := lagging[candidates[i].Name], lagging[candidates[j].Name]
		if li != lj {
			return lj
		}
		pi, pj := candidates[i].EffectiveTags().SyncPriorityValue(), candidates[j].EffectiveTags().SyncPriorityValue()
		if pi != pj {
			return pi > pj
		}
		ci, cj := slices.Contains(current, candidates[i].Name), slices.Contains(current, candidates[j].Name)
		if ci != cj {
			return ci
		}
		return *candidates[i].XLogLocation > *candidates[j].XLogLocation
	})
	out := make([]string, 0, len(candidates))
	for _, m := range candidates {
		out = append(out, m.Name)
	}
	return out, lagging
}

// laggingSync reports the candidates that are unhealthy synchronous
// standbys under maximum_lag_on_syncnode: their flushed WAL (as
// pg_stat_replication reports it, else their member key) lags more than
// the limit behind the most advanced position, the leader's WAL or the
// furthest candidate's if that is ahead of the leader's sample (Patroni's
// max_lsn). The check is off when the limit is not positive. In
// synchronous_mode_strict a current synchronous standby is never counted
// as lagging: strict mode trades availability for safety, and Regent does
// not move the role away from a standby that holds every commit.
func laggingSync(o Observation, candidates []*cluster.Member, current []string) map[string]bool {
	limit := o.Config.MaximumLagOnSyncnode
	if limit <= 0 || len(candidates) == 0 {
		return nil
	}
	position := func(m *cluster.Member) int64 {
		if lsn, ok := o.PG.StandbyFlush[m.Name]; ok {
			return lsn
		}
		return *m.XLogLocation
	}
	top := o.PG.WriteLSN
	for _, m := range candidates {
		top = max(top, position(m))
	}
	out := map[string]bool{}
	for _, m := range candidates {
		if o.Config.SynchronousModeStrict && slices.Contains(current, m.Name) {
			continue
		}
		if top-position(m) > limit {
			out[m.Name] = true
		}
	}
	return out
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	return len(minus(a, b)) == 0 && len(minus(b, a)) == 0
}
