package ha

import (
	"fmt"
	"sort"
	"strings"

	"github.com/regent-ha/regent/internal/cluster"
)

// Quorum commit (synchronous_mode: quorum), Patroni's semantics.
//
// PostgreSQL waits, on every commit, for any k of the listed standbys
// (synchronous_standby_names = 'ANY k (s1, s2, ...)'). The sync key
// publishes the members P a candidate may come from and a quorum q: a
// published member may be promoted automatically only after it compared
// its WAL with q other published members (R = q+1 members, itself
// included) and none was ahead of it. That is safe when at least |P| - q
// published members hold every acknowledged commit (W = |P| - q, so
// R + W = |P| + 1 > |P|).
//
// A commit acknowledged while PostgreSQL waits for any k of S is held by
// k members of S, of which at least k - |S \ P| are published. The
// published state is therefore safe for that configuration when
//
//	q + k >= |P ∪ S|
//
// (Patroni's invariant quorum + numsync >= |voters ∪ sync|). The leader
// keeps it true at every moment by changing one side at a time:
//
//  1. before PostgreSQL's configuration changes, the sync key is made safe
//     for the old and the new configuration: members that are no longer
//     wanted leave it, and q only grows (a larger read quorum, or fewer
//     candidates, is always safe);
//  2. then synchronous_standby_names is changed;
//  3. once the change has surely taken effect (SyncSetLSN), members that
//     PostgreSQL reports as quorum standbys and that flushed every earlier
//     commit join the key, and q shrinks to what the new configuration
//     allows.

// decideQuorumSync is decideSync for synchronous_mode quorum. ok is false
// when nothing needs to change.
func decideQuorumSync(o Observation) (Decision, bool) {
	sync := o.Cluster.Sync
	if sync == nil || sync.Leader != o.Self.Name {
		return decide("claiming the sync key for this leader, empty, before changing synchronous_standby_names",
			Action{Kind: PublishSync}, act(LeaderHousekeeping)), true
	}
	published, q := sync.Members, sync.Quorum
	desired, lagging := syncCandidates(o, published)
	// maximum_lag_on_syncnode: lagging standbys leave the quorum list when
	// enough healthy ones remain to confirm commits (ANY n keeps its n);
	// otherwise they stay, as in "on" mode. Dropping one goes through
	// step 1 like any other departure.
	if healthy := minus(desired, keys(lagging)); len(lagging) > 0 && len(healthy) >= o.Config.SynchronousNodeCount {
		desired = healthy
	}
	sort.Strings(desired)
	k := min(o.Config.SynchronousNodeCount, len(desired))
	names, anyK := desired, k
	if len(desired) == 0 {
		names, anyK = nil, 0
		if o.Config.SynchronousModeStrict {
			names = []string{"*"}
		}
	}
	if d, ok := quorumPublishSafer(o, published, q, desired, k); ok {
		return d, true
	}
	if !sameSet(o.PG.SyncStandbyNames, names) || o.PG.SyncQuorum != anyK {
		return decide(quorumSetReason(o, names, anyK),
			Action{Kind: SetSyncStandbys, Names: names, Quorum: anyK}, act(LeaderHousekeeping)), true
	}
	return quorumPublishGrowth(o, published, q, desired)
}

// effectiveSync is the local PostgreSQL's synchronous configuration as a
// quorum: the standbys S that may acknowledge a commit and how many of
// them must (FIRST n of n names: all of them). "*" (any standby, listed or
// not) counts as no known holder.
func effectiveSync(p Postgres) (names []string, k int) {
	switch {
	case len(p.SyncStandbyNames) == 1 && p.SyncStandbyNames[0] == "*":
		return nil, 0
	case p.SyncQuorum > 0:
		return p.SyncStandbyNames, p.SyncQuorum
	}
	return p.SyncStandbyNames, len(p.SyncStandbyNames)
}

// safeQuorum is the smallest quorum at least q that keeps members safe
// for commits acknowledged by any k of standbys: q' + k >= |members ∪
// standbys|.
func safeQuorum(members []string, q int, standbys []string, k int) int {
	return max(q, len(union(members, standbys))-k)
}

// quorumPublishSafer is step 1: when PostgreSQL is about to wait for any
// k of desired, publish first a state that is safe both for what
// PostgreSQL does now and for that target.
func quorumPublishSafer(o Observation, published []string, q int, desired []string, k int) (Decision, bool) {
	cur, curK := effectiveSync(o.PG)
	keep := intersect(published, desired)
	safe := safeQuorum(keep, q, cur, curK)
	safe = safeQuorum(keep, safe, desired, k)
	if k == 0 || len(keep) == 0 {
		keep, safe = nil, 0 // no standby will confirm commits: nobody may be promoted
	}
	if sameSet(keep, published) && safe == q {
		return Decision{}, false
	}
	reason := fmt.Sprintf("publishing the safer quorum state [%s] with quorum %d (was [%s] with quorum %d) before synchronous_standby_names changes",
		strings.Join(keep, ","), safe, strings.Join(published, ","), q)
	if dropped := minus(published, keep); len(dropped) > 0 {
		reason += fmt.Sprintf(", dropping [%s], which can no longer be a quorum standby (not streaming from this leader, nosync, or gone)",
			strings.Join(dropped, ","))
	}
	return decide(reason, Action{Kind: PublishSync, Names: keep, Quorum: safe}, act(LeaderHousekeeping)), true
}

// quorumSetReason explains a change of synchronous_standby_names in
// quorum mode.
func quorumSetReason(o Observation, names []string, k int) string {
	switch {
	case len(names) == 0:
		return "no streaming replica can be a quorum standby: commits continue asynchronously and no member may be promoted automatically"
	case names[0] == "*":
		return "no streaming replica can be a quorum standby: strict mode keeps commits waiting for any standby"
	}
	return fmt.Sprintf("setting synchronous_standby_names to ANY %d (%s): every commit waits for %d of these standbys",
		k, strings.Join(names, ","), k)
}

// quorumPublishGrowth is step 3: publish the quorum standbys that caught
// up, and lower the quorum to what PostgreSQL's settled configuration
// allows. Commits acknowledged before SyncSetLSN are held by every member
// that flushed it, and by at least |published| - q published members (the
// key was safe); later ones by k of the listed standbys.
func quorumPublishGrowth(o Observation, published []string, q int, desired []string) (Decision, bool) {
	if o.PG.SyncSetLSN == 0 {
		return Decision{}, false // the change may still be taking effect
	}
	cur, k := effectiveSync(o.PG)
	var caughtUp []string
	for _, name := range intersect(desired, o.PG.SyncReported) {
		if o.PG.StandbyFlush[name] >= o.PG.SyncSetLSN {
			caughtUp = append(caughtUp, name)
		}
	}
	members := union(published, caughtUp)
	sort.Strings(members)
	holders := max(len(published)-q, len(intersect(caughtUp, members)))
	newQ := max(len(union(members, cur))-k, len(members)-holders, 0)
	if len(members) == len(published) && newQ >= q {
		return Decision{}, false
	}
	return decide(fmt.Sprintf("PostgreSQL waits for ANY %d (%s) and [%s] hold every earlier commit: publishing [%s] with quorum %d, so a candidate must see %d of them",
		k, strings.Join(cur, ","), strings.Join(caughtUp, ","), strings.Join(members, ","), newQ, newQ+1),
		Action{Kind: PublishSync, Names: members, Quorum: newQ}, act(LeaderHousekeeping)), true
}

// quorumProblem says why this replica, a published member of a quorum
// sync key, cannot show that it holds every acknowledged commit, or "".
// It must see, among the peers' answers, sync.Quorum other published
// members that run as replicas and none that is ahead of it.
func quorumProblem(o Observation) string {
	sync := o.Cluster.Sync
	if sync == nil || sync.Quorum == 0 || sync.Leader == o.Self.Name {
		return ""
	}
	mine := o.PG.LSN()
	var seen, missing []string
	for _, p := range o.Peers {
		if p.Name == o.Self.Name || !sync.Has(p.Name) {
			continue
		}
		if !p.Reachable || p.State != cluster.StateRunning || p.Role == cluster.RolePrimary || p.LSN == 0 ||
			(p.Timeline > 0 && p.Timeline < o.PG.Timeline) {
			missing = append(missing, p.Name)
			continue
		}
		if p.LSN > mine {
			return fmt.Sprintf("published quorum standby %s has more WAL (%s > %s), so this member may miss acknowledged commits",
				p.Name, cluster.FormatLSN(p.LSN), cluster.FormatLSN(mine))
		}
		seen = append(seen, p.Name)
	}
	if len(seen) >= sync.Quorum {
		return ""
	}
	for _, m := range sync.Members {
		if m != o.Self.Name && !contains(seen, m) && !contains(missing, m) {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	return fmt.Sprintf("the sync key lists [%s] with quorum %d: this member must compare its WAL with %d other listed members to be sure it holds every acknowledged commit, "+
		"but only %d answered ([%s] unreachable, not running or on an older timeline)",
		strings.Join(sync.Members, ","), sync.Quorum, sync.Quorum, len(seen), strings.Join(missing, ","))
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	return append(out, minus(b, a)...)
}

func contains(list []string, x string) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
