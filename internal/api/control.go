package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/operate"
)

// DefaultSwitchoverTimeout bounds the wait for a switchover or failover to
// complete when Server.SwitchoverTimeout is zero.
const DefaultSwitchoverTimeout = 30 * time.Second

// defaultPollInterval is how often the switchover wait re-reads the DCS.
const defaultPollInterval = 100 * time.Millisecond

// maxBody bounds a request body.
const maxBody = 1 << 20

// ControlStore is the DCS access of the mutating endpoints; *dcs.Client
// implements it.
type ControlStore interface {
	ClusterReader
	// CreateFailover stores a switchover or failover request unless one is
	// pending, and reports whether it did; of concurrent callers exactly
	// one wins.
	CreateFailover(ctx context.Context, f cluster.Failover) (bool, error)
	// ClearFailover deletes the failover key if its mod revision still is
	// modRevision, and reports whether it did.
	ClearFailover(ctx context.Context, modRevision int64) (bool, error)
	// SetConfig writes the configuration if the config key's mod revision
	// still is modRevision (0: only if it does not exist), and reports
	// whether it did.
	SetConfig(ctx context.Context, cfg cluster.DynamicConfig, modRevision int64) (bool, error)
	// PutConfig writes the configuration unconditionally.
	PutConfig(ctx context.Context, cfg cluster.DynamicConfig) error
}

// Operator carries out the requests that act on the local PostgreSQL; the
// agent implements it. Every method must return promptly or when ctx ends
// (the client went away or the API stopped waiting); an operation already
// under way should carry on regardless. Errors of type
// *operate.BadRequestError answer 400, *operate.ConflictError 409 (503 for
// reinitialize) and *operate.PreconditionError as Patroni answers a refused
// request of that endpoint (503); any other error answers 503.
type Operator interface {
	// Restart restarts PostgreSQL now, or schedules the restart when
	// r.ScheduledAt is set.
	Restart(ctx context.Context, r RestartRequest) (RestartResult, error)
	// CancelRestart drops a scheduled restart; false when none was
	// scheduled.
	CancelRestart(ctx context.Context) (bool, error)
	// Reload makes PostgreSQL and the agent re-read their configuration.
	Reload(ctx context.Context) error
	// Reinitialize throws the data directory away and clones it again from
	// a replica or the leader. It returns once the operation has started;
	// on the leader it returns a *operate.PreconditionError.
	Reinitialize(ctx context.Context, r ReinitRequest) error
}

// RestartRequest is a POST /restart.
type RestartRequest struct {
	// Role, when set, restarts only a member of that role: "primary",
	// "replica" or "standby_leader".
	Role string
	// PendingOnly restarts only when a restart is pending (a changed
	// parameter needs one).
	PendingOnly bool
	// Timeout, when set, overrides primary_start_timeout for this restart.
	Timeout time.Duration
	// ScheduledAt, when set, schedules the restart instead of restarting now.
	ScheduledAt time.Time
}

// RestartResult is what Restart did.
type RestartResult struct {
	// Scheduled is true when the restart was scheduled for later.
	Scheduled bool
	// Skipped, when set, says why nothing was done (for example "role does
	// not match"); the API answers 503 with it.
	Skipped string
}

// ReinitRequest is a POST /reinitialize.
type ReinitRequest struct {
	// FromLeader clones from the leader rather than any replica.
	FromLeader bool
	// Force cancels an operation in progress first.
	Force bool
}

// errNotAvailable answers requests whose back end the server lacks.
const errNotAvailable = "not available: this REST API has no access to the DCS or the agent"

func (s *Server) switchoverTimeout() time.Duration {
	if s.SwitchoverTimeout > 0 {
		return s.SwitchoverTimeout
	}
	return DefaultSwitchoverTimeout
}

func (s *Server) pollEvery() time.Duration {
	if s.pollInterval > 0 {
		return s.pollInterval
	}
	return defaultPollInterval
}

// extendWriteDeadline lets a handler that waits longer than the server's
// write timeout still answer.
func extendWriteDeadline(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}

// errorStatus maps an operation's error to an HTTP status.
func errorStatus(err error, precondition, conflict int) int {
	var b *operate.BadRequestError
	var p *operate.PreconditionError
	var c *operate.ConflictError
	switch {
	case errors.As(err, &b):
		return http.StatusBadRequest
	case errors.As(err, &p):
		return precondition
	case errors.As(err, &c):
		return conflict
	}
	return http.StatusServiceUnavailable
}

// readBody reads a request body of at most maxBody bytes; it answers the
// request and returns false on failure.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody))
		} else {
			writeError(w, r, http.StatusBadRequest, "reading the request body: "+err.Error())
		}
		return nil, false
	}
	return b, true
}

// decodeBody decodes an optional JSON object body into v, rejecting unknown
// fields; it answers the request and returns false on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(w, r)
	if !ok {
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid request body: "+strings.TrimPrefix(err.Error(), "json: "))
		return false
	}
	if dec.More() {
		writeError(w, r, http.StatusBadRequest, "invalid request body: unexpected data after the JSON object")
		return false
	}
	return true
}

// parseTimestamp parses an ISO 8601 timestamp with a time zone, as Patroni
// accepts it ("2026-01-02T03:04:05+00:00", also with a space for the "T"
// and fractional seconds). noZone reports a timestamp that parsed only
// without a zone.
func parseTimestamp(s string) (t time.Time, noZone bool, err error) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, false, nil
	}
	if _, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return time.Time{}, true, fmt.Errorf("timestamp %q has no time zone; add one, for example %q", s, s+"+00:00")
	}
	return time.Time{}, false, fmt.Errorf("timestamp %q is not ISO 8601; write it like \"2026-01-02T03:04:05+00:00\"", s)
}

// parseRevision parses an If-Match header: a config revision, optionally
// quoted like an ETag.
func parseRevision(h string) (int64, error) {
	v := strings.TrimPrefix(strings.TrimSpace(h), "W/")
	v = strings.Trim(v, `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("If-Match %q is not a configuration revision; send the ETag of GET /config", h)
	}
	return n, nil
}

// writeOpError answers a failed store or operator call.
func (s *Server) writeOpError(w http.ResponseWriter, r *http.Request, code int, msg string, err error) {
	if code >= 500 {
		s.log.Warn("REST API: request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	writeError(w, r, code, msg)
}

// storeContext bounds one DCS write.
func (s *Server) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.loadTimeout())
}
