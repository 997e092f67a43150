package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// restartBody is the body of POST /restart, as Patroni takes it.
type restartBody struct {
	RestartPending  bool            `json:"restart_pending"`
	Role            string          `json:"role"`
	PostgresVersion string          `json:"postgres_version"`
	Timeout         json.RawMessage `json:"timeout"`
	Schedule        string          `json:"schedule"`
}

// restartRoles maps the accepted role filters to RestartRequest.Role.
var restartRoles = map[string]string{
	"": "", "any": "",
	"primary": "primary", "master": "primary", "leader": "primary",
	"replica":        "replica",
	"standby_leader": "standby_leader", "standby-leader": "standby_leader",
}

// parseSeconds parses a timeout given as a number of seconds or a string:
// "30", "30s", "2m".
func parseSeconds(raw json.RawMessage) (time.Duration, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, err
	}
	var d time.Duration
	switch v := v.(type) {
	case nil:
		return 0, nil
	case float64:
		d = time.Duration(v * float64(time.Second))
	case string:
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			d = time.Duration(n * float64(time.Second))
		} else if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("%q is not a duration; give seconds (30) or a duration (\"30s\")", v)
		}
	default:
		return 0, errors.New("give seconds (30) or a duration (\"30s\")")
	}
	if d <= 0 {
		return 0, errors.New("must be positive")
	}
	return d, nil
}

// serveRestart handles POST /restart.
func (s *Server) serveRestart(w http.ResponseWriter, r *http.Request) {
	if s.Operator == nil {
		writeError(w, r, http.StatusServiceUnavailable, errNotAvailable)
		return
	}
	var b restartBody
	if !decodeBody(w, r, &b) {
		return
	}
	role, ok := restartRoles[strings.ToLower(b.Role)]
	if !ok {
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("role %q is not a role; use primary, replica or standby_leader", b.Role))
		return
	}
	if b.PostgresVersion != "" {
		writeError(w, r, http.StatusBadRequest, "the postgres_version filter is not supported; restart without it")
		return
	}
	req := RestartRequest{Role: role, PendingOnly: b.RestartPending}
	if len(b.Timeout) > 0 {
		d, err := parseSeconds(b.Timeout)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "timeout: "+err.Error())
			return
		}
		req.Timeout = d
	}
	if b.Schedule != "" {
		at, noZone, err := parseTimestamp(b.Schedule)
		switch {
		case noZone:
			writeError(w, r, http.StatusBadRequest, "schedule: "+err.Error())
			return
		case err != nil:
			writeError(w, r, http.StatusUnprocessableEntity, "schedule: "+err.Error())
			return
		case !at.After(s.now()):
			writeError(w, r, http.StatusUnprocessableEntity, "schedule: "+b.Schedule+" is not in the future")
			return
		case s.current().snap.Pause:
			// Patroni's code for this case.
			writeError(w, r, http.StatusInternalServerError, "cannot schedule a restart while paused")
			return
		}
		req.ScheduledAt = at
	}
	wait := max(s.switchoverTimeout(), req.Timeout+10*time.Second)
	extendWriteDeadline(w, wait+10*time.Second)
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	res, err := s.Operator.Restart(ctx, req)
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		s.writeOpError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("restart status unknown after %v; check GET /patroni", wait), err)
	case err != nil:
		s.writeOpError(w, r, errorStatus(err, http.StatusServiceUnavailable, http.StatusConflict), err.Error(), err)
	case res.Skipped != "":
		writeError(w, r, http.StatusServiceUnavailable, res.Skipped)
	case res.Scheduled:
		s.log.Info("REST API: restart scheduled", "at", req.ScheduledAt, "role", req.Role, "pending_only", req.PendingOnly)
		writeMessage(w, r, http.StatusAccepted, "restart scheduled")
	default:
		s.log.Info("REST API: restarted", "role", req.Role, "pending_only", req.PendingOnly)
		writeText(w, http.StatusOK, "restarted successfully")
	}
}

// serveCancelRestart handles DELETE /restart.
func (s *Server) serveCancelRestart(w http.ResponseWriter, r *http.Request) {
	if s.Operator == nil {
		writeError(w, r, http.StatusServiceUnavailable, errNotAvailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.loadTimeout())
	defer cancel()
	cancelled, err := s.Operator.CancelRestart(ctx)
	switch {
	case err != nil:
		s.writeOpError(w, r, errorStatus(err, http.StatusServiceUnavailable, http.StatusConflict), err.Error(), err)
	case !cancelled:
		writeError(w, r, http.StatusNotFound, "no restart is scheduled")
	default:
		s.log.Info("REST API: scheduled restart deleted")
		writeMessage(w, r, http.StatusOK, "scheduled restart deleted")
	}
}

// serveReload handles POST /reload.
func (s *Server) serveReload(w http.ResponseWriter, r *http.Request) {
	if s.Operator == nil {
		writeError(w, r, http.StatusServiceUnavailable, errNotAvailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.loadTimeout())
	defer cancel()
	if err := s.Operator.Reload(ctx); err != nil {
		s.writeOpError(w, r, errorStatus(err, http.StatusServiceUnavailable, http.StatusConflict), err.Error(), err)
		return
	}
	s.log.Info("REST API: reload scheduled")
	writeMessage(w, r, http.StatusAccepted, "reload scheduled")
}

// reinitBody is the body of POST /reinitialize.
type reinitBody struct {
	Force      bool `json:"force"`
	FromLeader bool `json:"from_leader"`
}

// serveReinitialize handles POST /reinitialize. As in Patroni every
// refusal, the leader's included, answers 503.
func (s *Server) serveReinitialize(w http.ResponseWriter, r *http.Request) {
	if s.Operator == nil {
		writeError(w, r, http.StatusServiceUnavailable, errNotAvailable)
		return
	}
	var b reinitBody
	if !decodeBody(w, r, &b) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.loadTimeout())
	defer cancel()
	if err := s.Operator.Reinitialize(ctx, ReinitRequest{FromLeader: b.FromLeader, Force: b.Force}); err != nil {
		s.writeOpError(w, r, errorStatus(err, http.StatusServiceUnavailable, http.StatusServiceUnavailable), err.Error(), err)
		return
	}
	s.log.Info("REST API: reinitialize started", "from_leader", b.FromLeader, "force", b.Force)
	writeText(w, http.StatusOK, "reinitialize started")
}
