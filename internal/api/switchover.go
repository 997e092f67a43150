package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/operate"
)

// switchoverRequest is the body of POST /switchover and POST /failover.
// The candidate may be given as "candidate" or, as in the failover key,
// "member".
type switchoverRequest struct {
	Leader      string `json:"leader"`
	Candidate   string `json:"candidate"`
	Member      string `json:"member"`
	ScheduledAt string `json:"scheduled_at"`
}

// candidate returns the requested candidate; ok is false when candidate
// and member name different members.
func (q *switchoverRequest) candidate() (string, bool) {
	switch {
	case q.Candidate == "":
		return q.Member, true
	case q.Member == "" || q.Member == q.Candidate:
		return q.Candidate, true
	}
	return "", false
}

// messageJSON is the body of a success that is not Patroni plain text.
type messageJSON struct {
	Message string `json:"message"`
}

func writeMessage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	writeValue(w, r, code, messageJSON{Message: msg})
}

// writeText writes a plain-text body, as Patroni answers some requests.
func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}

// controlView loads a fresh view for a mutating request, answering 503
// when the store is missing or unreadable.
func (s *Server) controlView(w http.ResponseWriter, r *http.Request) (*cluster.Cluster, bool) {
	if s.Store == nil {
		writeError(w, r, http.StatusServiceUnavailable, errNotAvailable)
		return nil, false
	}
	c, err := s.loadFrom(r.Context(), s.Store)
	if err != nil {
		s.writeOpError(w, r, http.StatusServiceUnavailable, err.Error(), err)
		return nil, false
	}
	return c, true
}

// PositionReader reads the local PostgreSQL's WAL positions on demand.
type PositionReader interface {
	// PrimaryPositions returns pg_current_wal_lsn() and, from the same
	// moment, pg_stat_replication's flush position of every standby (by
	// application_name); ok is false unless PostgreSQL is a running
	// primary that answered.
	PrimaryPositions(ctx context.Context) (optime int64, flush map[string]int64, ok bool)
}

// freshStatus replaces the status key of view c with a reading of this
// member's PostgreSQL taken now, when this member is the leader in c. A
// switchover check then compares the candidate with the leader's position
// and the candidate's flush position of one moment. The keys alone can be
// a loop apart: a replica that has just been cloned publishes, for a whole
// loop, the position where its WAL receiver started, while the optime may
// already count a WAL switch (another member's base backup) that reached
// the replica milliseconds later; comparing the two reports up to a WAL
// segment of lag that does not exist.
func (s *Server) freshStatus(ctx context.Context, c *cluster.Cluster) {
	self := s.src.Snapshot().Name
	if s.Positions == nil || c == nil || self == "" || c.LeaderName() != self {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.loadTimeout())
	defer cancel()
	optime, flush, ok := s.Positions.PrimaryPositions(ctx)
	if !ok || optime < c.Status.Optime {
		return
	}
	retain := c.Status.RetainSlots
	c.Status = cluster.StatusFrom(c, self, optime, flush)
	c.Status.RetainSlots = retain
}

// serveSwitchover handles POST /switchover.
func (s *Server) serveSwitchover(w http.ResponseWriter, r *http.Request) {
	var q switchoverRequest
	if !decodeBody(w, r, &q) {
		return
	}
	candidate, ok := q.candidate()
	if !ok {
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("candidate %q and member %q differ; give one of them", q.Candidate, q.Member))
		return
	}
	var at time.Time
	if q.ScheduledAt != "" {
		var err error
		if at, _, err = parseTimestamp(q.ScheduledAt); err != nil {
			writeError(w, r, http.StatusBadRequest, "scheduled_at: "+err.Error())
			return
		}
	}
	c, ok := s.controlView(w, r)
	if !ok {
		return
	}
	s.freshStatus(r.Context(), c)
	f, err := operate.CheckSwitchover(c, q.Leader, candidate, at, s.now())
	if err != nil {
		writeError(w, r, errorStatus(err, http.StatusPreconditionFailed, http.StatusConflict), err.Error())
		return
	}
	if !s.createFailover(w, r, c, f) {
		return
	}
	if f.ScheduledAt != "" {
		s.log.Info("REST API: switchover scheduled", "leader", f.Leader, "candidate", f.Member, "at", f.ScheduledAt)
		writeMessage(w, r, http.StatusAccepted, "switchover scheduled")
		return
	}
	s.log.Info("REST API: switchover requested", "leader", f.Leader, "candidate", f.Member)
	s.awaitLeaderChange(w, r, "switchover", "switched over", f.Leader, f.Member)
}

// serveFailover handles POST /failover. With a leader in the cluster (or
// named in the request) it is a switchover to the candidate; without one
// the candidate is promoted whatever its lag.
func (s *Server) serveFailover(w http.ResponseWriter, r *http.Request) {
	var q switchoverRequest
	if !decodeBody(w, r, &q) {
		return
	}
	candidate, ok := q.candidate()
	switch {
	case !ok:
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("candidate %q and member %q differ; give one of them", q.Candidate, q.Member))
		return
	case q.ScheduledAt != "":
		writeError(w, r, http.StatusBadRequest, "a failover cannot be scheduled; schedule a switchover (POST /switchover) instead")
		return
	case candidate == "":
		writeError(w, r, http.StatusBadRequest, "failover could be performed only to a specific candidate")
		return
	}
	c, ok := s.controlView(w, r)
	if !ok {
		return
	}
	s.freshStatus(r.Context(), c)
	leader := q.Leader
	if leader == "" {
		leader = c.LeaderName()
	}
	var f cluster.Failover
	var err error
	if leader != "" {
		f, err = operate.CheckSwitchover(c, leader, candidate, time.Time{}, s.now())
	} else {
		var loss int64
		f, loss, err = operate.CheckFailover(c, candidate)
		if err == nil {
			s.log.Warn("REST API: manual failover in a leaderless cluster", "candidate", candidate, "possible_loss_bytes", loss)
		}
	}
	if err != nil {
		writeError(w, r, errorStatus(err, http.StatusPreconditionFailed, http.StatusConflict), err.Error())
		return
	}
	if !s.createFailover(w, r, c, f) {
		return
	}
	s.log.Info("REST API: failover requested", "leader", f.Leader, "candidate", f.Member)
	s.awaitLeaderChange(w, r, "failover", "failed over", f.Leader, f.Member)
}

// createFailover writes f unless a request is pending; it answers the
// request and returns false when it did not write.
func (s *Server) createFailover(w http.ResponseWriter, r *http.Request, c *cluster.Cluster, f cluster.Failover) bool {
	const busy = "a switchover or failover is already in progress"
	if c.Failover != nil {
		writeError(w, r, http.StatusConflict, busy)
		return false
	}
	ctx, cancel := s.storeContext(r.Context())
	defer cancel()
	created, err := s.Store.CreateFailover(ctx, f)
	switch {
	case err != nil:
		s.writeOpError(w, r, http.StatusServiceUnavailable, "failed to write the failover key into the DCS: "+err.Error(), err)
		return false
	case !created:
		writeError(w, r, http.StatusConflict, busy)
		return false
	}
	return true
}

// awaitLeaderChange polls the DCS until another member than oldLeader
// holds the leader key and runs as primary (200), the request was dropped
// with the leader unchanged (503), or SwitchoverTimeout passes (503).
// kind names the operation in errors, done in the success message.
func (s *Server) awaitLeaderChange(w http.ResponseWriter, r *http.Request, kind, done, oldLeader, candidate string) {
	timeout := s.switchoverTimeout()
	extendWriteDeadline(w, timeout+10*time.Second)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(s.pollEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if r.Context().Err() != nil {
				return // the client went away
			}
			s.log.Warn("REST API: "+kind+" did not complete in time", "timeout", timeout, "candidate", candidate)
			writeError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("%s status unknown after %v", kind, timeout))
			return
		case <-tick.C:
		}
		c, err := s.loadFrom(ctx, s.Store)
		if err != nil {
			continue // transient; the deadline bounds the wait
		}
		leader := c.LeaderName()
		if leader != "" && leader != oldLeader {
			m := c.Member(leader)
			if m == nil || m.Role != cluster.RolePrimary || m.State != cluster.StateRunning {
				continue
			}
			if candidate != "" && leader != candidate {
				writeText(w, http.StatusOK, fmt.Sprintf("%s to %q instead of %q", capitalize(done), leader, candidate))
				return
			}
			writeText(w, http.StatusOK, fmt.Sprintf("Successfully %s to %q", done, leader))
			return
		}
		if c.Failover == nil && leader == oldLeader {
			msg := kind + " failed"
			if oldLeader != "" {
				msg += fmt.Sprintf(": %s cancelled it and remains the leader; GET /patroni on %s tells why", oldLeader, oldLeader)
			} else {
				msg += ": the request was dropped and the cluster has no leader"
			}
			writeError(w, r, http.StatusServiceUnavailable, msg)
			return
		}
	}
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// serveDeleteSwitchover handles DELETE /switchover: it drops a scheduled
// switchover.
func (s *Server) serveDeleteSwitchover(w http.ResponseWriter, r *http.Request) {
	c, ok := s.controlView(w, r)
	if !ok {
		return
	}
	f := c.Failover
	if f == nil || f.ScheduledAt == "" {
		writeError(w, r, http.StatusNotFound, "no switchover is scheduled")
		return
	}
	ctx, cancel := s.storeContext(r.Context())
	defer cancel()
	cleared, err := s.Store.ClearFailover(ctx, f.Revision)
	switch {
	case err != nil:
		s.writeOpError(w, r, http.StatusServiceUnavailable, "failed to delete the failover key: "+err.Error(), err)
	case !cleared:
		writeError(w, r, http.StatusConflict, "the scheduled switchover changed concurrently; retry")
	default:
		s.log.Info("REST API: scheduled switchover deleted", "leader", f.Leader, "candidate", f.Member, "at", f.ScheduledAt)
		writeMessage(w, r, http.StatusOK, "scheduled switchover deleted")
	}
}
