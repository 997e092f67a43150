// Package operate validates operator requests (switchover, failover, configuration changes) against a cluster view.
package operate

import (
	"fmt"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// PreconditionError refuses a request the cluster cannot carry out in its
// current state: a wrong leader name, an ineligible candidate, ... The REST
// API answers it with 412 (503 for restart and reinitialize, as Patroni
// does); the CLI reports it as an error.
type PreconditionError struct{ Reason string }

func (e *PreconditionError) Error() string { return e.Reason }

// BadRequestError refuses a malformed request: a missing field, an unknown
// configuration key, a value of the wrong type. The REST API answers 400.
type BadRequestError struct{ Reason string }

func (e *BadRequestError) Error() string { return e.Reason }

// ConflictError refuses a request that collides with another one in
// progress (a restart already scheduled, a concurrent change). The REST API
// answers 409 (503 for reinitialize).
type ConflictError struct{ Reason string }

func (e *ConflictError) Error() string { return e.Reason }

func precondition(format string, args ...any) error {
	return &PreconditionError{Reason: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return &BadRequestError{Reason: fmt.Sprintf(format, args...)}
}

// CheckSwitchover validates a switchover from leader to candidate (empty:
// the leader picks the best replica), at scheduledAt (zero: now), and
// returns the failover key to write. Malformed requests give a
// *BadRequestError, requests the cluster cannot carry out a
// *PreconditionError.
func CheckSwitchover(c *cluster.Cluster, leader, candidate string, scheduledAt time.Time, now time.Time) (cluster.Failover, error) {
	var none cluster.Failover
	paused := c != nil && c.Config != nil && c.Config.Pause
	switch {
	case leader == "":
		return none, badRequest("leader name is required")
	case candidate == leader:
		return none, precondition("candidate %q is already the leader", candidate)
	case paused && candidate == "":
		return none, badRequest("switchover is possible only to a specific candidate while paused; name a candidate")
	case paused && !scheduledAt.IsZero():
		return none, badRequest("cannot schedule a switchover while paused")
	case !scheduledAt.IsZero() && !scheduledAt.After(now):
		return none, badRequest("scheduled_at %s is not in the future", scheduledAt.Format(time.RFC3339))
	}
	switch cur := c.LeaderName(); {
	case cur == "":
		return none, precondition("cluster has no leader; use a failover to a specific candidate instead")
	case cur != leader:
		return none, precondition("leader name does not match: the leader is %s", cur)
	}
	if candidate != "" {
		m := c.Member(candidate)
		if m == nil {
			return none, precondition("candidate %q does not exist", candidate)
		}
		if why := candidateProblem(c, m); why != "" {
			return none, &PreconditionError{Reason: why}
		}
	} else if err := anyEligible(c); err != nil {
		return none, err
	}
	f := cluster.Failover{Leader: leader, Member: candidate}
	if !scheduledAt.IsZero() {
		f.ScheduledAt = scheduledAt.Format(time.RFC3339)
	}
	return f, nil
}

// anyEligible fails unless some replica could take over.
func anyEligible(c *cluster.Cluster) error {
	leader := c.LeaderName()
	var problems []string
	for _, m := range c.SortedMembers() {
		if m.Name == leader {
			continue
		}
		why := candidateProblem(c, m)
		if why == "" {
			return nil
		}
		problems = append(problems, why)
	}
	if len(problems) == 0 {
		return precondition("cluster does not have members except leader")
	}
	return precondition("cluster has no eligible replica: %s", strings.Join(problems, "; "))
}

// BestCandidate returns the eligible replica with the most WAL, ties broken
// by the higher failover_priority and then by name; "" when none is
// eligible.
func BestCandidate(c *cluster.Cluster) string {
	best, bestLSN, bestPrio := "", int64(0), 0
	leader := c.LeaderName()
	for _, m := range c.SortedMembers() {
		if m.Name == leader || candidateProblem(c, m) != "" {
			continue
		}
		lsn, _ := c.Position(m)
		prio := m.EffectiveTags().Priority()
		if best == "" || lsn > bestLSN || lsn == bestLSN && prio > bestPrio {
			best, bestLSN, bestPrio = m.Name, lsn, prio
		}
	}
	return best
}

// CheckFailover validates a manual failover to candidate and returns the
// failover key to write and how many bytes of WAL the promotion may lose:
// how far the candidate is behind the last known leader position, or -1
// when the candidate has not reported its position.
func CheckFailover(c *cluster.Cluster, candidate string) (cluster.Failover, int64, error) {
	var none cluster.Failover
	if candidate == "" {
		return none, 0, badRequest("failover could be performed only to a specific candidate")
	}
	m := c.Member(candidate)
	switch {
	case m == nil:
		return none, 0, precondition("candidate %q does not exist", candidate)
	case candidate == c.LeaderName():
		return none, 0, precondition("candidate %q is already the leader", candidate)
	case m.State != cluster.StateRunning:
		return none, 0, precondition("candidate %q is not running (state %q)", candidate, m.State)
	}
	if why := tagProblem(m); why != "" {
		return none, 0, &PreconditionError{Reason: why}
	}
	loss := int64(-1)
	if pos, ok := c.Position(m); ok {
		loss = max(0, optime(c)-pos)
	}
	return cluster.Failover{Member: candidate}, loss, nil
}

// optime is the last known leader WAL position: the status key's optime,
// or the leader's own report when that is further. Replicas are compared
// with it through Cluster.Position, which includes the position the leader
// saw them flush when it wrote the optime.
func optime(c *cluster.Cluster) int64 {
	opt := c.Status.Optime
	if lm := c.LeaderMember(); lm != nil && lm.XLogLocation != nil && *lm.XLogLocation > opt {
		opt = *lm.XLogLocation
	}
	return opt
}

// maxLag is maximum_lag_on_failover of the view, or the default.
func maxLag(c *cluster.Cluster) int64 {
	if c.Config != nil {
		return c.Config.MaximumLagOnFailover
	}
	return cluster.DefaultDynamicConfig().MaximumLagOnFailover
}

// tagProblem says why m's tags forbid promoting it, or "".
func tagProblem(m *cluster.Member) string {
	t := m.EffectiveTags()
	switch {
	case t.NoFailover:
		return fmt.Sprintf("candidate %q has tag nofailover", m.Name)
	case t.Priority() <= 0:
		return fmt.Sprintf("candidate %q has tag failover_priority %d", m.Name, t.Priority())
	}
	return ""
}

// candidateProblem says why m cannot take over in a switchover now, or "".
func candidateProblem(c *cluster.Cluster, m *cluster.Member) string {
	switch {
	case m.State != cluster.StateRunning:
		return fmt.Sprintf("candidate %q is not running (state %q)", m.Name, m.State)
	case m.ReplicationState != cluster.ReplicationStreaming:
		return fmt.Sprintf("candidate %q is not streaming (replication_state %q)", m.Name, m.ReplicationState)
	}
	if why := tagProblem(m); why != "" {
		return why
	}
	pos, ok := c.Position(m)
	if m.XLogLocation == nil || !ok {
		return fmt.Sprintf("candidate %q has not reported its WAL position", m.Name)
	}
	if lag, limit := optime(c)-pos, maxLag(c); lag > limit {
		return fmt.Sprintf("candidate %q lags %d bytes behind (maximum_lag_on_failover %d)", m.Name, lag, limit)
	}
	if c.Config != nil && c.Config.SynchronousMode.Enabled() && !c.Sync.Has(m.Name) {
		return fmt.Sprintf("candidate %q is not a synchronous standby (synchronous_mode is %s; sync set: %v)", m.Name, c.Config.SynchronousMode, syncMembers(c))
	}
	return ""
}

func syncMembers(c *cluster.Cluster) []string {
	if c.Sync == nil {
		return nil
	}
	return c.Sync.Members
}
