package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/regent-ha/regent/internal/cluster"
)

// clusterJSON is the /cluster body (Patroni's cluster_as_json).
type clusterJSON struct {
	Members             []memberJSON    `json:"members"`
	Scope               string          `json:"scope"`
	Pause               bool            `json:"pause,omitempty"`
	ScheduledSwitchover *switchoverJSON `json:"scheduled_switchover,omitempty"`
}

type switchoverJSON struct {
	At   string `json:"at"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// memberJSON is one member of /cluster. LSN and lag fields hold an "X/Y"
// string or "unknown", and a byte count or "unknown"; they are absent for
// the leader.
type memberJSON struct {
	Name           string        `json:"name"`
	Role           string        `json:"role"`
	State          string        `json:"state"`
	APIURL         string        `json:"api_url"`
	Host           string        `json:"host,omitempty"`
	Port           int           `json:"port,omitempty"`
	Timeline       int           `json:"timeline,omitempty"`
	PendingRestart bool          `json:"pending_restart,omitempty"`
	Tags           *cluster.Tags `json:"tags,omitempty"`
	ReceiveLSN     any           `json:"receive_lsn,omitempty"`
	ReceiveLag     any           `json:"receive_lag,omitempty"`
	ReplayLSN      any           `json:"replay_lsn,omitempty"`
	ReplayLag      any           `json:"replay_lag,omitempty"`
	LSN            any           `json:"lsn,omitempty"`
	Lag            any           `json:"lag,omitempty"`
}

// Roles in /cluster.
const (
	clusterRoleLeader  = "leader"
	clusterRoleReplica = "replica"
)

// loadCluster reads a fresh DCS view, giving up after LoadTimeout even if
// the reader ignores its context.
func (s *Server) loadCluster(ctx context.Context) (*cluster.Cluster, error) {
	if s.dcs == nil {
		if c := s.current().snap.Cluster; c != nil {
			return c, nil
		}
		return nil, errors.New("no DCS view available yet")
	}
	return s.loadFrom(ctx, s.dcs)
}

// loadFrom reads a fresh view from reader, giving up after LoadTimeout even
// if the reader ignores its context.
func (s *Server) loadFrom(ctx context.Context, reader ClusterReader) (*cluster.Cluster, error) {
	timeout := s.loadTimeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		c   *cluster.Cluster
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- result{err: fmt.Errorf("DCS read panicked: %v", p)}
			}
		}()
		c, err := reader.Load(ctx)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("reading the DCS: %w", r.err)
		}
		if r.c == nil {
			return nil, errors.New("reading the DCS: no cluster view returned")
		}
		return r.c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("reading the DCS did not finish within %v: %w", timeout, ctx.Err())
	}
}

// loadOrFail loads the view or answers 503.
func (s *Server) loadOrFail(w http.ResponseWriter, r *http.Request) (*cluster.Cluster, bool) {
	c, err := s.loadCluster(r.Context())
	if err != nil {
		s.log.Warn("REST API: DCS read failed", "path", r.URL.Path, "err", err)
		writeError(w, r, http.StatusServiceUnavailable, err.Error())
		return nil, false
	}
	return c, true
}

func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request) {
	c, ok := s.loadOrFail(w, r)
	if !ok {
		return
	}
	scope := s.current().snap.Scope
	if scope == "" {
		scope = c.Scope
	}
	writeValue(w, r, http.StatusOK, clusterView(c, scope))
}

func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request) {
	c, ok := s.loadOrFail(w, r)
	if !ok {
		return
	}
	h := c.History
	if h == nil {
		h = []cluster.HistoryEntry{}
	}
	writeValue(w, r, http.StatusOK, h)
}

// serveEvents answers GET /events: the decisions agents recorded in the
// DCS (Regent only), such as why a replica refused to promote.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	c, ok := s.loadOrFail(w, r)
	if !ok {
		return
	}
	ev := c.Events
	if ev == nil {
		ev = []cluster.Event{}
	}
	writeValue(w, r, http.StatusOK, ev)
}

func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request) {
	c, ok := s.loadOrFail(w, r)
	if !ok {
		return
	}
	if c.Config == nil {
		if c.ConfigProblem != "" {
			writeError(w, r, http.StatusBadGateway, c.ConfigProblem+"; replace it with PUT /config (regent edit-config --replace)")
			return
		}
		writeError(w, r, http.StatusBadGateway, "no configuration in the DCS")
		return
	}
	if c.ConfigRevision > 0 {
		// For PATCH or PUT /config with If-Match.
		w.Header().Set("ETag", configETag(c.ConfigRevision))
	}
	writeValue(w, r, http.StatusOK, c.Config)
}

// clusterView renders c as Patroni's /cluster body: members sorted by name,
// lags in bytes behind the status key's optime.
func clusterView(c *cluster.Cluster, scope string) clusterJSON {
	out := clusterJSON{Members: []memberJSON{}, Scope: scope}
	leader := c.LeaderName()
	optime := c.Status.Optime
	for _, m := range c.SortedMembers() {
		j := memberJSON{Name: m.Name, Role: clusterRoleReplica, State: m.State, APIURL: m.APIURL,
			Timeline: m.Timeline, PendingRestart: m.PendingRestart}
		if m.Name == leader {
			j.Role = clusterRoleLeader
		} else {
			if role := ClusterSyncRole(c, m.Name); role != "" {
				j.Role = role
			}
			if m.ReplicationState != "" {
				j.State = m.ReplicationState
			}
		}
		j.Host, j.Port = connHostPort(m.ConnURL)
		if m.Tags != nil && tagsSet(*m.Tags) {
			t := *m.Tags
			j.Tags = &t
		}
		if m.Name != leader {
			j.ReceiveLSN, j.ReceiveLag = lsnAndLag(m.ReceiveLSN, optime)
			j.ReplayLSN, j.ReplayLag = lsnAndLag(m.ReplayLSN, optime)
			j.LSN, j.Lag = lsnAndLag(m.XLogLocation, optime)
			if lag, ok := c.Lag(m); ok && m.XLogLocation != nil && *m.XLogLocation != 0 {
				// The leader's view of what m flushed, taken with the
				// optime, beats m's own key from an earlier moment.
				j.Lag = lag
			}
		}
		out.Members = append(out.Members, j)
	}
	if c.Config != nil && c.Config.Pause {
		out.Pause = true
	}
	if f := c.Failover; f != nil && f.ScheduledAt != "" {
		out.ScheduledSwitchover = &switchoverJSON{At: f.ScheduledAt, From: f.Leader, To: f.Member}
	}
	return out
}

// lsnAndLag renders a member LSN and its lag behind optime as Patroni does:
// "unknown" for a missing LSN, 0 when the LSN is ahead of optime.
func lsnAndLag(lsn *int64, optime int64) (any, any) {
	if lsn == nil || *lsn == 0 {
		return "unknown", "unknown"
	}
	return formatLSN(*lsn), max(optime-*lsn, 0)
}

// formatLSN renders an LSN as PostgreSQL and Patroni do: upper-case hex X/Y.
func formatLSN(lsn int64) string { return strings.ToUpper(cluster.FormatLSN(lsn)) }

// connHostPort extracts host and port from a postgres:// URL or a
// key=value connection string.
func connHostPort(conn string) (string, int) {
	if conn == "" {
		return "", 0
	}
	if strings.Contains(conn, "://") {
		u, err := url.Parse(conn)
		if err != nil {
			return "", 0
		}
		if u.Hostname() == "" {
			return "", 0
		}
		port, _ := strconv.Atoi(u.Port())
		return u.Hostname(), port
	}
	var host string
	var port int
	for _, kv := range strings.Fields(conn) {
		k, v, _ := strings.Cut(kv, "=")
		v = strings.Trim(v, "'")
		switch k {
		case "host":
			host = v
		case "port":
			port, _ = strconv.Atoi(v)
		}
	}
	if host == "" {
		return "", 0
	}
	return host, port
}
