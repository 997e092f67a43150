package ctl

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// SwitchoverOptions are the flags of `regent switchover`.
type SwitchoverOptions struct {
	// Leader is the member to demote; it must be the current leader.
	// Default: the current leader.
	Leader string
	// Candidate is the member to promote; "" lets the cluster choose (with
	// Force) or asks the operator.
	Candidate string
	// Scheduled is an RFC 3339 time, "now" or "" (now).
	Scheduled string
	// Force skips the candidate prompt and the confirmation.
	Force bool
	// Now is the current time for schedule checks; time.Now when zero.
	Now time.Time
}

// SwitchoverCandidates are the members a switchover away from leader may
// promote: every other member without nofailover or failover_priority 0,
// by name. The leader's REST API makes the final health and lag checks.
func SwitchoverCandidates(c *cluster.Cluster, leader string) []string {
	var out []string
	for _, m := range c.SortedMembers() {
		if m.Name == leader || m.EffectiveTags().Priority() <= 0 || m.Role == cluster.RoleUninitialized {
			continue
		}
		out = append(out, m.Name)
	}
	return out
}

// scheduleLayouts are accepted besides RFC 3339; they are read in the local
// time zone.
var scheduleLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"}

// ParseSchedule turns a --scheduled value into the RFC 3339 timestamp sent
// to the API: "" and "now" give "" (immediately); RFC 3339 is taken as is;
// "YYYY-MM-DD HH:MM[:SS]" (or with T) is local time. A time in the past is
// an error.
func ParseSchedule(v string, now time.Time) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "now") {
		return "", nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		ok := false
		for _, layout := range scheduleLayouts {
			if lt, lerr := time.ParseInLocation(layout, v, time.Local); lerr == nil {
				t, ok = lt, true
				break
			}
		}
		if !ok {
			return "", fmt.Errorf("invalid schedule %q: use an RFC 3339 time such as %s, or \"now\"", v, now.Add(time.Hour).Truncate(time.Minute).Format(time.RFC3339))
		}
	}
	if !now.IsZero() && t.Before(now) {
		return "", fmt.Errorf("schedule %s is in the past", t.Format(time.RFC3339))
	}
	return t.Format(time.RFC3339), nil
}

// Switchover asks the leader to hand over to a candidate (POST /switchover),
// falling back to other members when the leader's API is unreachable.
func (s *Session) Switchover(ctx context.Context, o SwitchoverOptions) error {
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	leader := c.LeaderName()
	if leader == "" {
		return fmt.Errorf("cluster %s has no leader, so there is nothing to switch over from: use regent failover --candidate NAME", c.Scope)
	}
	if o.Leader != "" && o.Leader != leader {
		return fmt.Errorf("member %s is not the leader of cluster %s (the leader is %s)", o.Leader, c.Scope, leader)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	at, err := ParseSchedule(o.Scheduled, now)
	if err != nil {
		return err
	}
	paused := c.Config != nil && c.Config.Pause
	if at != "" && paused {
		return fmt.Errorf("cluster %s is paused (maintenance mode): a switchover cannot be scheduled; resume first or switch over now", c.Scope)
	}
	candidates := SwitchoverCandidates(c, leader)
	cand := o.Candidate
	switch {
	case cand != "":
		if cand == leader {
			return fmt.Errorf("member %s is already the leader: choose another candidate", cand)
		}
		if c.Member(cand) == nil {
			return fmt.Errorf("member %s is not in cluster %s (members: %s)", cand, c.Scope, memberNames(c.SortedMembers()))
		}
	case !o.Force:
		if cand, err = s.prompt().ChooseCandidate(candidates); err != nil {
			return err
		}
	case len(candidates) == 0:
		return fmt.Errorf("cluster %s has no member besides the leader that may be promoted", c.Scope)
	}
	if cand == "" && paused {
		return fmt.Errorf("cluster %s is paused (maintenance mode): a switchover needs --candidate", c.Scope)
	}
	if !o.Force {
		q := fmt.Sprintf("Are you sure you want to switchover cluster %s, demoting current leader %s", c.Scope, leader)
		if cand != "" {
			q += " in favour of " + cand
		}
		if at != "" {
			q += " at " + at
		}
		if err := s.prompt().ConfirmOrAbort(q + "?"); err != nil {
			return err
		}
	}
	body := map[string]any{"leader": leader}
	if cand != "" {
		body["candidate"] = cand
	}
	if at != "" {
		body["scheduled_at"] = at
	}
	m, status, resp, err := s.sendToAny(ctx, orderedMembers(c, leader), http.MethodPost, "/switchover", body, nil)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusOK:
		fmt.Fprintln(s.out(), orDefault(ResponseMessage(resp), "Switched over"))
		return nil
	case http.StatusAccepted:
		fmt.Fprintln(s.out(), orDefault(ResponseMessage(resp), "Switchover scheduled at "+at))
		return nil
	}
	return s.api().NewAPIError(http.MethodPost, m.APIURL, "/switchover", status, resp)
}

// CancelSwitchover deletes a scheduled switchover (DELETE /switchover).
func (s *Session) CancelSwitchover(ctx context.Context) error {
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	m, status, resp, err := s.sendToAny(ctx, orderedMembers(c, c.LeaderName()), http.MethodDelete, "/switchover", nil, nil)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusOK:
		fmt.Fprintln(s.out(), orDefault(ResponseMessage(resp), "Scheduled switchover cancelled"))
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("no switchover is scheduled in cluster %s", c.Scope)
	}
	return s.api().NewAPIError(http.MethodDelete, m.APIURL, "/switchover", status, resp)
}

// FailoverOptions are the flags of `regent failover`.
type FailoverOptions struct {
	// Candidate is the member to promote. Required.
	Candidate string
	// Force skips the confirmation.
	Force bool
}

// Failover promotes a named candidate (POST /failover to the candidate's
// API, falling back to the other members), after showing how much WAL may
// be lost and asking for confirmation.
func (s *Session) Failover(ctx context.Context, o FailoverOptions) error {
	if o.Candidate == "" {
		return fmt.Errorf("a failover needs --candidate NAME (for a planned change with a healthy leader use regent switchover)")
	}
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	m := c.Member(o.Candidate)
	if m == nil {
		return fmt.Errorf("member %s is not in cluster %s (members: %s)", o.Candidate, c.Scope, memberNames(c.SortedMembers()))
	}
	leader := c.LeaderName()
	if o.Candidate == leader {
		return fmt.Errorf("member %s is already the leader", o.Candidate)
	}
	if leader != "" {
		fmt.Fprintf(s.out(), "Warning: cluster %s has a leader (%s); a failover does not wait for replicas to catch up, a switchover does (regent switchover --candidate %s).\n", c.Scope, leader, o.Candidate)
	}
	fmt.Fprintln(s.out(), "Note: "+DataLossMessage(c, m))
	if !o.Force {
		if err := s.prompt().ConfirmOrAbort(fmt.Sprintf("Are you sure you want to failover cluster %s to member %s?", c.Scope, o.Candidate)); err != nil {
			return err
		}
	}
	body := map[string]any{"candidate": o.Candidate}
	target, status, resp, err := s.sendToAny(ctx, orderedMembers(c, o.Candidate), http.MethodPost, "/failover", body, nil)
	if err != nil {
		return err
	}
	if status == http.StatusOK {
		fmt.Fprintln(s.out(), orDefault(ResponseMessage(resp), "Failed over to "+o.Candidate))
		return nil
	}
	return s.api().NewAPIError(http.MethodPost, target.APIURL, "/failover", status, resp)
}

// DataLossMessage says how much WAL the old leader had reported (the status
// key's optime) that the candidate has not received.
func DataLossMessage(c *cluster.Cluster, candidate *cluster.Member) string {
	switch {
	case candidate.XLogLocation == nil:
		return fmt.Sprintf("the WAL position of %s is unknown: WAL acknowledged by the old leader may be lost", candidate.Name)
	case c.Status.Optime <= 0:
		return fmt.Sprintf("the old leader's last WAL position is unknown: WAL it acknowledged beyond %s (the position of %s) may be lost",
			cluster.FormatLSN(*candidate.XLogLocation), candidate.Name)
	}
	pos, _ := c.Position(candidate)
	lag := c.Status.Optime - pos
	if lag <= 0 {
		return fmt.Sprintf("%s has received all WAL up to the old leader's last reported position %s: no acknowledged WAL is expected to be lost",
			candidate.Name, cluster.FormatLSN(c.Status.Optime))
	}
	return fmt.Sprintf("up to %s of WAL acknowledged by the old leader may be lost (%s is at %s, the old leader last reported %s)",
		HumanBytes(lag), candidate.Name, cluster.FormatLSN(pos), cluster.FormatLSN(c.Status.Optime))
}

// HumanBytes renders a byte count with a binary unit: "512 bytes",
// "1.5 kB", "1.2 MB", "3.0 GB".
func HumanBytes(n int64) string {
	if n < 1024 {
		if n == 1 {
			return "1 byte"
		}
		return fmt.Sprintf("%d bytes", n)
	}
	v := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB"} {
		v /= 1024
		if v < 1024 || unit == "TB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
