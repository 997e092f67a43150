package api

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// check is one health-check endpoint's condition.
type check int

const (
	checkPrimary        check = iota // /, /primary, /read-write, /master
	checkLeader                      // /leader
	checkStandbyLeader               // /standby-leader, /standby_leader
	checkReplica                     // /replica
	checkReadOnly                    // /read-only
	checkHealth                      // /health
	checkSync                        // /sync, /synchronous
	checkQuorum                      // /quorum
	checkAsync                       // /async, /asynchronous
	checkReadOnlySync                // /read-only-sync, /read-only-synchronous
	checkReadOnlyQuorum              // /read-only-quorum
	checkLiveness                    // /liveness
	checkReadiness                   // /readiness
)

// defaultTTL stands in for a snapshot without TTL (cluster default).
const defaultTTL = 5 * time.Second

// healthQuery holds the query parameters of a health check.
type healthQuery struct {
	lag              int64
	hasLag           bool
	replicationState string
	writeMode        bool
	tags             []tagFilter
}

type tagFilter struct{ key, value string }

// parseHealthQuery parses lag=, replication_state=, mode= and tag_<key>=.
// Unknown parameters are ignored, as in Patroni.
func parseHealthQuery(raw string) (healthQuery, error) {
	var q healthQuery
	if raw == "" {
		return q, nil
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("invalid query string: %v", err)
	}
	for k, v := range vals {
		if len(v) == 0 {
			continue
		}
		switch {
		case k == "lag":
			if q.lag, err = parseBytes(v[0]); err != nil {
				return q, fmt.Errorf("lag: %v", err)
			}
			q.hasLag = true
		case k == "replication_state":
			q.replicationState = v[0]
		case k == "mode":
			switch v[0] {
			case "", "apply":
			case "write":
				q.writeMode = true
			default:
				return q, errors.New(`mode must be "apply" or "write"`)
			}
		case strings.HasPrefix(k, "tag_"):
			q.tags = append(q.tags, tagFilter{key: k[len("tag_"):], value: v[0]})
		}
	}
	return q, nil
}

func ttlOf(s *Snapshot) time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return defaultTTL
}

// fresh reports whether the snapshot is no older than maxAge.
func fresh(s *Snapshot, now time.Time, maxAge time.Duration) bool {
	return !s.Taken.IsZero() && now.Sub(s.Taken) <= maxAge
}

// leaseHeld reports whether HoldsLeaderKey can still be believed at now:
// until LeaseDeadline when the agent gave one, else while the snapshot is
// younger than TTL (a stalled agent must not keep advertising a primary).
func leaseHeld(s *Snapshot, now time.Time) bool {
	if !s.HoldsLeaderKey || s.Taken.IsZero() {
		return false
	}
	if !s.LeaseDeadline.IsZero() {
		return now.Before(s.LeaseDeadline)
	}
	return now.Sub(s.Taken) < ttlOf(s)
}

// isPrimary is the /primary condition: a confirmed leader lease, a
// writable PostgreSQL that answered, and role primary in state running.
func isPrimary(s *Snapshot, now time.Time) bool {
	return s.Writable && s.Role == cluster.RolePrimary && s.State == cluster.StateRunning && leaseHeld(s, now)
}

// isLeader is the /leader condition.
func isLeader(s *Snapshot, now time.Time) bool {
	return s.State == cluster.StateRunning && leaseHeld(s, now)
}

// isRunning is the /health condition; a snapshot older than 2*TTL tells
// nothing about PostgreSQL any more.
func isRunning(s *Snapshot, now time.Time) bool {
	return s.State == cluster.StateRunning && fresh(s, now, 2*ttlOf(s))
}

// isReplica is the /replica condition.
func isReplica(s *Snapshot, q *healthQuery, now time.Time) bool {
	if !isRunning(s, now) || s.Role != cluster.RoleReplica || s.Tags.NoLoadBalance {
		return false
	}
	if q.hasLag && replayLag(s) > q.lag {
		return false
	}
	return q.replicationState == "" || q.replicationState == s.ReplicationState
}

// dcsKnown reports whether the snapshot carries a DCS view read in the
// loop that took it (Patroni forgets its cached view on a failed read).
func dcsKnown(s *Snapshot) bool { return s.Cluster != nil && s.DCSReachable }

// SyncStandbyOf reports whether member name is, in the DCS view c and under
// synchronous mode mode, a synchronous standby (mode on: Patroni's
// sync_standby) or a quorum standby (mode quorum: quorum_standby): listed
// in the sync key, which must name a leader (an empty key lists nobody).
// A sync key whose leader is not the member holding the leader key was
// published by the previous leader and is about to be replaced (a new
// leader claims it before promoting), so it makes nobody a standby; with no
// leader key at all the last published key still stands, as in Patroni.
// It says nothing about whether name runs as a replica: callers check.
func SyncStandbyOf(c *cluster.Cluster, mode cluster.SyncMode, name string) (syncStandby, quorumStandby bool) {
	if c == nil || c.Sync == nil || !mode.Enabled() || name == "" {
		return false, false
	}
	st := c.Sync
	if st.Leader == "" || name == st.Leader || !st.Has(name) {
		return false, false
	}
	if leader := c.LeaderName(); leader != "" && leader != st.Leader {
		return false, false
	}
	if mode == cluster.SyncQuorum {
		return false, true
	}
	return true, false
}

// Roles a synchronous standby has in /cluster (and, title-cased, in
// `regent list`), as Patroni names them.
const (
	ClusterRoleSyncStandby   = "sync_standby"
	ClusterRoleQuorumStandby = "quorum_standby"
)

// ClusterSyncRole is the /cluster role of member name when the sync key of
// c lists it under the synchronous mode of c's dynamic configuration
// (ClusterRoleSyncStandby or ClusterRoleQuorumStandby), else "".
func ClusterSyncRole(c *cluster.Cluster, name string) string {
	if c == nil || c.Config == nil {
		return ""
	}
	switch syncStandby, quorumStandby := SyncStandbyOf(c, c.Config.SynchronousMode, name); {
	case syncStandby:
		return ClusterRoleSyncStandby
	case quorumStandby:
		return ClusterRoleQuorumStandby
	}
	return ""
}

// tagsMatch applies the tag_<key>=<value> filters.
func tagsMatch(s *Snapshot, q *healthQuery) bool {
	for _, f := range q.tags {
		if v, ok := tagValue(s.Tags, f.key); !ok || v != f.value {
			return false
		}
	}
	return true
}

// healthStatus evaluates a body-carrying health check (not liveness or
// readiness) and returns 200 or 503.
func healthStatus(c check, s *Snapshot, q *healthQuery, now time.Time) int {
	ok := false
	switch c {
	case checkPrimary:
		return code(isPrimary(s, now))
	case checkLeader:
		return code(isLeader(s, now))
	case checkStandbyLeader:
		return code(false) // no standby clusters yet
	case checkReplica:
		ok = isReplica(s, q, now)
	case checkReadOnly:
		ok = isPrimary(s, now) || isReplica(s, q, now)
	case checkHealth:
		ok = isRunning(s, now)
	// The checks below need the DCS view, as in Patroni: without a
	// successful read in the last loop they answer 503.
	case checkSync:
		ok = dcsKnown(s) && s.SyncStandby && isReplica(s, q, now)
	case checkQuorum:
		ok = dcsKnown(s) && s.QuorumStandby && isReplica(s, q, now)
	case checkAsync:
		ok = dcsKnown(s) && !s.SyncStandby && !s.QuorumStandby && isReplica(s, q, now)
	case checkReadOnlySync:
		ok = dcsKnown(s) && (isPrimary(s, now) || s.SyncStandby && isReplica(s, q, now))
	case checkReadOnlyQuorum:
		ok = dcsKnown(s) && (isPrimary(s, now) || s.QuorumStandby && isReplica(s, q, now))
	}
	// Tag filters apply to every check except the leader ones.
	return code(ok && tagsMatch(s, q))
}

// liveness is 200 while the HA loop runs: paused, or the last loop ended
// less than TTL (running primary) or 2*TTL (others) ago.
func liveness(s *Snapshot, now time.Time) int {
	limit := 2 * ttlOf(s)
	if s.Role == cluster.RolePrimary && s.State == cluster.StateRunning {
		limit = ttlOf(s)
	}
	return code(s.Pause || !s.LastLoop.IsZero() && now.Sub(s.LastLoop) < limit)
}

// readiness is 200 for the leader, or for a running, streaming replica
// that sees the DCS and lags at most q.lag (default
// maximum_lag_on_failover) behind the leader.
func readiness(s *Snapshot, q *healthQuery, now time.Time) int {
	if isLeader(s, now) {
		return code(true)
	}
	if !isRunning(s, now) || s.ReplicationState != cluster.ReplicationStreaming || !s.DCSReachable {
		return code(false)
	}
	limit := s.MaximumLagOnFailover
	if q.hasLag {
		limit = q.lag
	}
	pos := s.ReplayLSN
	if q.writeMode {
		pos = s.ReceiveLSN
	}
	lag := int64(0)
	if opt := leaderOptime(s); opt != 0 {
		lag = opt - pos
	}
	return code(lag <= limit)
}

func code(ok bool) int {
	if ok {
		return 200
	}
	return 503
}
