package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Role filters of restart and dsn.
const (
	RoleAny = "any"
	// RolePrimary selects the leader.
	RolePrimary = "primary"
	// RoleReplica selects every member but the leader.
	RoleReplica = "replica"
)

// normalizeRole maps the accepted spellings to RoleAny, RolePrimary or
// RoleReplica.
func normalizeRole(role string) (string, error) {
	switch strings.ToLower(role) {
	case "", RoleAny:
		return RoleAny, nil
	case RolePrimary, "leader", "master":
		return RolePrimary, nil
	case RoleReplica, "standby":
		return RoleReplica, nil
	}
	return "", fmt.Errorf("invalid role %q: use primary, replica or any", role)
}

// isPrimary says whether m is the cluster's primary: the leader key holder,
// or, without a leader key, a member reporting the primary role.
func isPrimary(c *cluster.Cluster, m *cluster.Member) bool {
	if l := c.LeaderName(); l != "" {
		return m.Name == l
	}
	return m.Role == cluster.RolePrimary
}

func roleMatches(c *cluster.Cluster, m *cluster.Member, role string) bool {
	switch role {
	case RolePrimary:
		return isPrimary(c, m)
	case RoleReplica:
		return !isPrimary(c, m)
	}
	return true
}

// SelectMembers returns the named members (in the given order), or every
// member by name when names is empty, keeping those with the role (any,
// primary or replica). Unknown names, a named member of another role, and
// an empty selection are errors.
func SelectMembers(c *cluster.Cluster, names []string, role string) ([]*cluster.Member, error) {
	role, err := normalizeRole(role)
	if err != nil {
		return nil, err
	}
	var out []*cluster.Member
	if len(names) == 0 {
		// Replicas first, the leader last: settings such as
		// max_connections must not be lower on a hot standby than on its
		// primary, so the primary takes a raised value last.
		members := c.SortedMembers()
		slices.SortStableFunc(members, func(a, b *cluster.Member) int {
			return boolRank(a.Name == c.LeaderName()) - boolRank(b.Name == c.LeaderName())
		})
		for _, m := range members {
			if roleMatches(c, m, role) {
				out = append(out, m)
			}
		}
		if len(out) == 0 {
			if role == RoleAny {
				return nil, fmt.Errorf("cluster %s has no members", c.Scope)
			}
			return nil, fmt.Errorf("cluster %s has no %s member", c.Scope, role)
		}
		return out, nil
	}
	var unknown []string
	for _, n := range names {
		m := c.Member(n)
		switch {
		case m == nil:
			unknown = append(unknown, n)
		case !roleMatches(c, m, role):
			return nil, fmt.Errorf("member %s is not a %s", n, role)
		case !slices.Contains(out, m):
			out = append(out, m)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("not a member of cluster %s: %s (members: %s)", c.Scope, strings.Join(unknown, ", "), memberNames(c.SortedMembers()))
	}
	return out, nil
}

// RestartOptions are the flags of `regent restart`.
type RestartOptions struct {
	Members []string
	// Role filters the members: any, primary or replica; it is also sent
	// to each member, which checks it again.
	Role string
	// Pending restarts only members whose settings need a restart.
	Pending bool
	// Scheduled is an RFC 3339 time, "now" or "".
	Scheduled string
	// Timeout bounds the restart, seconds (0: the member's default).
	Timeout int
	Force   bool
	// Now is the current time for schedule checks; time.Now when zero.
	Now time.Time
}

// Restart asks each selected member to restart PostgreSQL (POST /restart).
func (s *Session) Restart(ctx context.Context, o RestartOptions) error {
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	members, err := SelectMembers(c, o.Members, o.Role)
	if err != nil {
		return err
	}
	role, _ := normalizeRole(o.Role)
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	at, err := ParseSchedule(o.Scheduled, now)
	if err != nil {
		return err
	}
	if at != "" && c.Config != nil && c.Config.Pause {
		return fmt.Errorf("cluster %s is paused (maintenance mode): a restart cannot be scheduled; restart now or resume first", c.Scope)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("invalid timeout %d: must not be negative", o.Timeout)
	}
	if !o.Force {
		q := fmt.Sprintf("Are you sure you want to restart members %s", memberNames(members))
		if at != "" {
			q += " at " + at
		}
		if err := s.prompt().ConfirmOrAbort(q + "?"); err != nil {
			return err
		}
	}
	body := map[string]any{}
	if role != RoleAny {
		body["role"] = role
	}
	if o.Pending {
		body["restart_pending"] = true
	}
	if at != "" {
		body["schedule"] = at
	}
	if o.Timeout > 0 {
		body["timeout"] = o.Timeout
	}
	var failed []string
	for _, m := range members {
		status, resp, err := s.api().Do(ctx, http.MethodPost, m.APIURL, "/restart", body)
		switch {
		case err != nil:
			fmt.Fprintf(s.out(), "Failed: restart of member %s: %v\n", m.Name, err)
			failed = append(failed, m.Name)
		case status == http.StatusOK:
			fmt.Fprintf(s.out(), "Success: restart of member %s\n", m.Name)
		case status == http.StatusAccepted:
			fmt.Fprintf(s.out(), "Success: restart of member %s scheduled at %s\n", m.Name, at)
		case status == http.StatusConflict:
			fmt.Fprintf(s.out(), "Failed: restart of member %s: another restart is already scheduled (cancel it with regent restart --cancel %s)\n", m.Name, m.Name)
			failed = append(failed, m.Name)
		default:
			fmt.Fprintf(s.out(), "Failed: restart of member %s: %v\n", m.Name, s.api().NewAPIError(http.MethodPost, m.APIURL, "/restart", status, resp))
			failed = append(failed, m.Name)
		}
	}
	return failedError("restart", failed, len(members))
}

// CancelRestart deletes the scheduled restarts of the selected members
// (DELETE /restart). Members without one are reported; it is an error only
// when no restart was cancelled at all.
func (s *Session) CancelRestart(ctx context.Context, names []string, role string) error {
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	members, err := SelectMembers(c, names, role)
	if err != nil {
		return err
	}
	var failed []string
	cancelled := 0
	for _, m := range members {
		status, resp, err := s.api().Do(ctx, http.MethodDelete, m.APIURL, "/restart", nil)
		switch {
		case err != nil:
			fmt.Fprintf(s.out(), "Failed: cancelling the restart of member %s: %v\n", m.Name, err)
			failed = append(failed, m.Name)
		case status == http.StatusOK:
			fmt.Fprintf(s.out(), "Success: scheduled restart of member %s cancelled\n", m.Name)
			cancelled++
		case status == http.StatusNotFound:
			fmt.Fprintf(s.out(), "Member %s has no scheduled restart\n", m.Name)
		default:
			fmt.Fprintf(s.out(), "Failed: cancelling the restart of member %s: %v\n", m.Name, s.api().NewAPIError(http.MethodDelete, m.APIURL, "/restart", status, resp))
			failed = append(failed, m.Name)
		}
	}
	if err := failedError("cancelling the restart", failed, len(members)); err != nil {
		return err
	}
	if cancelled == 0 {
		return fmt.Errorf("no scheduled restart to cancel on %s", memberNames(members))
	}
	return nil
}

// Reload asks each selected member (every member when names is empty) to
// reload its configuration (POST /reload).
func (s *Session) Reload(ctx context.Context, names []string) error {
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	members, err := SelectMembers(c, names, RoleAny)
	if err != nil {
		return err
	}
	var failed []string
	for _, m := range members {
		status, resp, err := s.api().Do(ctx, http.MethodPost, m.APIURL, "/reload", nil)
		switch {
		case err != nil:
			fmt.Fprintf(s.out(), "Failed: reload of member %s: %v\n", m.Name, err)
			failed = append(failed, m.Name)
		case isSuccess(status):
			fmt.Fprintf(s.out(), "Reload request received for member %s; it is processed within one HA loop\n", m.Name)
		default:
			fmt.Fprintf(s.out(), "Failed: reload of member %s: %v\n", m.Name, s.api().NewAPIError(http.MethodPost, m.APIURL, "/reload", status, resp))
			failed = append(failed, m.Name)
		}
	}
	return failedError("reload", failed, len(members))
}

// failedError summarises per-member failures.
func failedError(what string, failed []string, total int) error {
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%s failed on %d of %d members: %s", what, len(failed), total, strings.Join(failed, ", "))
}

// ReinitOptions are the flags of `regent reinit`.
type ReinitOptions struct {
	Members []string
	// Force skips the confirmation and asks the member to cancel an action
	// in progress.
	Force bool
	// FromLeader clones from the leader even when the member has clonefrom
	// peers.
	FromLeader bool
	// Wait polls the cluster view until the members run and stream again.
	Wait bool
}

// Reinit asks replicas to wipe their data directory and clone it again
// (POST /reinitialize), optionally waiting until they stream again.
func (s *Session) Reinit(ctx context.Context, o ReinitOptions) error {
	if len(o.Members) == 0 {
		return errors.New("name the member(s) to reinitialize")
	}
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	members, err := SelectMembers(c, o.Members, RoleAny)
	if err != nil {
		return err
	}
	for _, m := range members {
		if isPrimary(c, m) {
			return fmt.Errorf("member %s is the leader of cluster %s: only replicas can be reinitialized", m.Name, c.Scope)
		}
	}
	if !o.Force {
		q := fmt.Sprintf("Are you sure you want to reinitialize members %s? Their data directories are deleted and cloned again", memberNames(members))
		if err := s.prompt().ConfirmOrAbort(q); err != nil {
			return err
		}
	}
	body := map[string]any{"force": o.Force, "from_leader": o.FromLeader}
	var failed, started []string
	for _, m := range members {
		status, resp, err := s.api().Do(ctx, http.MethodPost, m.APIURL, "/reinitialize", body)
		switch {
		case err != nil:
			fmt.Fprintf(s.out(), "Failed: reinitialize of member %s: %v\n", m.Name, err)
			failed = append(failed, m.Name)
		case isSuccess(status):
			fmt.Fprintf(s.out(), "Success: reinitialize of member %s started\n", m.Name)
			started = append(started, m.Name)
		default:
			fmt.Fprintf(s.out(), "Failed: reinitialize of member %s: %v\n", m.Name, s.api().NewAPIError(http.MethodPost, m.APIURL, "/reinitialize", status, resp))
			failed = append(failed, m.Name)
		}
	}
	var waitErr error
	if o.Wait && len(started) > 0 {
		waitErr = s.waitReinit(ctx, c, started)
	}
	return errors.Join(failedError("reinitialize", failed, len(members)), waitErr)
}

// streamingAgain says whether a reinitialized member is back: running as a
// streaming replica.
func streamingAgain(m *cluster.Member) bool {
	return m != nil && m.State == cluster.StateRunning && m.ReplicationState == cluster.ReplicationStreaming
}

// memberStateText describes a member's state for progress lines.
func memberStateText(m *cluster.Member) string {
	if m == nil {
		return "no member key (agent not reporting)"
	}
	s := m.State
	if m.ReplicationState != "" {
		s += ", " + m.ReplicationState
	}
	if s == "" {
		s = "unknown"
	}
	return s
}

// waitReinit polls until every named member runs and streams again. A
// member counts as done only after it was seen not running (the
// reinitialize stopped PostgreSQL), or once a grace period of three HA
// loops has passed without that (a clone quicker than one poll).
func (s *Session) waitReinit(ctx context.Context, c *cluster.Cluster, names []string) error {
	start := time.Now()
	grace := 3 * time.Second
	if c.Config != nil && c.Config.LoopWait > 0 {
		grace = max(grace, 3*c.Config.LoopWaitDuration())
	}
	type progress struct {
		started bool
		last    string
	}
	pending := map[string]*progress{}
	for _, n := range names {
		pending[n] = &progress{}
	}
	fmt.Fprintf(s.out(), "Waiting for reinitialize to complete on: %s\n", strings.Join(names, ", "))
	ctx, cancel := context.WithTimeout(ctx, s.waitTimeout())
	defer cancel()
	for {
		view, err := s.view(ctx)
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(s.out(), "  cannot read the cluster view (%v); retrying\n", err)
		}
		if err == nil {
			for _, n := range names {
				p := pending[n]
				if p == nil {
					continue
				}
				m := view.Member(n)
				if st := memberStateText(m); st != p.last {
					fmt.Fprintf(s.out(), "  %s: %s (%s)\n", n, st, time.Since(start).Round(time.Second))
					p.last = st
				}
				if m == nil || m.State != cluster.StateRunning {
					p.started = true // PostgreSQL stopped: the reinitialize is under way
				}
				if !streamingAgain(m) {
					continue
				}
				if p.started || time.Since(start) >= grace {
					fmt.Fprintf(s.out(), "Reinitialize is complete on member %s\n", n)
					delete(pending, n)
				}
			}
			if len(pending) == 0 {
				return nil
			}
		}
		if err := sleep(ctx, s.poll()); err != nil {
			return waitTimeoutError(ctx, err, "reinitialize", s.waitTimeout(), pendingNames(pending))
		}
	}
}

func pendingNames[T any](m map[string]T) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// waitTimeoutError explains why a --wait ended early.
func waitTimeoutError(ctx context.Context, err error, what string, limit time.Duration, pending string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("gave up waiting for %s after %v; still waiting for: %s (check with regent list)", what, limit, pending)
	}
	return err
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
