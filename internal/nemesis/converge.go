package nemesis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// The "converged" checker: after the heal, without any operator action,
// the cluster must return to exactly one leader with every other member
// running and streaming from it on the leader's timeline, within the
// bound the scenario states (Scenario.ConvergeWithin). It judges what
// every member's own GET /patroni says, read directly (not through the
// proxies), so a stale DCS view cannot make a member look healthy.

// defaultConvergeBound is the bound of a scenario that states none. The
// normal path after a heal is one HA loop (1 s) to notice, a restart or
// a pg_rewind of a few seconds on these small data directories, and a
// WAL receiver retry (wal_retrieve_retry_interval, 5 s): about 10 s.
// Six times that leaves room for a loaded 2-core machine without hiding
// a member that never comes back.
const defaultConvergeBound = 60 * time.Second

// convergeSettle is how long the converged state must hold, with the same
// leader on the same timeline, before it counts: a leader that keeps
// changing (flapping) has not converged, even if every single probe round
// looks healthy.
const convergeSettle = 2 * time.Second

// convergePoll is the interval between probe rounds.
const convergePoll = 250 * time.Millisecond

// MemberStatus is one member's answer to GET /patroni.
type MemberStatus struct {
	Member string
	// Err is why the member did not answer ("" when it did).
	Err string
	// State, Role, Timeline and ReplicationState are the /patroni fields
	// of the same names (state is typed: "running", "rewind failed", ...).
	State, Role      string
	Timeline         int
	ReplicationState string
	// HoldsLeaderKey and Reason are regent.holds_leader_key and
	// regent.reason: the agent's own account of what it does and why.
	HoldsLeaderKey bool
	Reason         string
	// Streaming lists the application names that the member's
	// pg_stat_replication shows streaming (the "replication" field).
	Streaming []string
}

// ProbeRound is one poll of every member; At is measured from the end of
// the heal.
type ProbeRound struct {
	At      time.Duration
	Members []MemberStatus
}

// Convergence is the verdict of the converged checker for one run.
type Convergence struct {
	// Bound is the scenario's bound; zero means the run never reached
	// the heal (it failed earlier), so nothing was judged.
	Bound time.Duration
	// Converged is true when the cluster converged within Bound; Time is
	// then the time from the end of the heal to the first round of the
	// stable stretch.
	Converged bool
	Time      time.Duration
	// Late is set when the cluster converged, but only after Bound (Time
	// says when): a failure like never converging, reported as such.
	Late bool
	// Stuck describes, from the last round, every member that kept the
	// cluster from converging: state, role, and the agent's reason.
	Stuck []string
	// OperatorRequired is the scenario's documented reason why an
	// operator must act; a run that did not converge then does not fail.
	OperatorRequired string
}

// Problem is why the run fails on this checker, or "".
func (c Convergence) Problem() string {
	if c.Bound == 0 || c.Converged || c.OperatorRequired != "" {
		return ""
	}
	if c.Late {
		return fmt.Sprintf("converged only %s after the heal, beyond the scenario's bound of %s", c.Time.Round(100*time.Millisecond), c.Bound)
	}
	return fmt.Sprintf("did not converge within %s after the heal: %s", c.Bound, strings.Join(c.Stuck, "; "))
}

// Note is what the run's notes say about convergence, or "".
func (c Convergence) Note() string {
	switch {
	case c.Bound == 0 || c.Converged:
		return ""
	case c.OperatorRequired != "":
		s := "operator required: " + c.OperatorRequired
		if len(c.Stuck) > 0 {
			s += " (" + strings.Join(c.Stuck, "; ") + ")"
		}
		return s
	case c.Late:
		return ""
	}
	return "not converged: " + strings.Join(c.Stuck, "; ")
}

// roundLeader judges one round: it returns the leader and its timeline
// when exactly one member leads and every other member runs and streams
// from it on its timeline, and otherwise what is wrong, member by member.
func roundLeader(r ProbeRound) (leader string, timeline int, wrong []string) {
	var leaders, primaries []string
	byName := map[string]MemberStatus{}
	for _, m := range r.Members {
		byName[m.Member] = m
		if m.Err != "" {
			continue
		}
		if m.Role == cluster.RolePrimary {
			primaries = append(primaries, m.Member)
		}
		if m.HoldsLeaderKey && m.Role == cluster.RolePrimary && m.State == cluster.StateRunning {
			leaders = append(leaders, m.Member)
		}
	}
	switch {
	case len(primaries) > 1:
		return "", 0, []string{fmt.Sprintf("%d members report role primary (%s)", len(primaries), strings.Join(primaries, ", "))}
	case len(leaders) == 0:
		wrong = append(wrong, "no running primary holds the leader key")
	}
	var l MemberStatus
	if len(leaders) == 1 {
		l = byName[leaders[0]]
	}
	for _, m := range r.Members {
		if l.Member != "" && m.Member == l.Member {
			continue
		}
		if why := replicaProblem(m, l); why != "" {
			wrong = append(wrong, why)
		}
	}
	if len(wrong) > 0 {
		return "", 0, wrong
	}
	return l.Member, l.Timeline, nil
}

// replicaProblem says why m is not a replica streaming from the leader l
// (l is zero when there is no leader), or "".
func replicaProblem(m, l MemberStatus) string {
	if m.Err != "" {
		return fmt.Sprintf("%s: no answer from GET /patroni (%s)", m.Member, m.Err)
	}
	desc := fmt.Sprintf("%s: state %q, role %s", m.Member, m.State, m.Role)
	if m.ReplicationState != "" {
		desc += ", replication " + m.ReplicationState
	}
	if m.Timeline > 0 {
		desc += fmt.Sprintf(", timeline %d", m.Timeline)
	}
	if m.Reason != "" {
		desc += fmt.Sprintf(", reason %q", m.Reason)
	}
	switch {
	case m.State != cluster.StateRunning || m.Role != cluster.RoleReplica || m.ReplicationState != cluster.ReplicationStreaming:
		return desc
	case l.Member == "":
		return "" // streaming, but there is no leader to judge it by
	case m.Timeline != l.Timeline:
		return fmt.Sprintf("%s (leader %s is on timeline %d)", desc, l.Member, l.Timeline)
	case !slices.Contains(l.Streaming, m.Member):
		return fmt.Sprintf("%s: not streaming from the leader %s (not in its pg_stat_replication)", m.Member, l.Member)
	}
	return ""
}

// judgeConvergence applies the checker to the rounds observed since the
// end of the heal (sorted by At). The cluster converged at the first round
// from which every round for settle judges converged with the same leader
// and timeline, provided a round at or after that stretch's end was
// observed; it converged in time when that first round is within bound.
func judgeConvergence(rounds []ProbeRound, bound, settle time.Duration) Convergence {
	c := Convergence{Bound: bound}
	type judged struct {
		leader   string
		timeline int
	}
	js := make([]judged, len(rounds))
	for i, r := range rounds {
		js[i].leader, js[i].timeline, _ = roundLeader(r)
	}
	for i := range rounds {
		if js[i].leader == "" {
			continue
		}
		stable, complete := true, false
		for j := i + 1; j < len(rounds) && stable; j++ {
			if js[j] != js[i] {
				stable = false
			} else if rounds[j].At-rounds[i].At >= settle {
				complete = true
				break
			}
		}
		if !stable || !complete {
			continue
		}
		c.Time = rounds[i].At
		c.Converged = c.Time <= bound
		c.Late = !c.Converged
		return c
	}
	if n := len(rounds); n > 0 {
		_, _, c.Stuck = roundLeader(rounds[n-1])
		if len(c.Stuck) == 0 {
			c.Stuck = []string{"converged only in the last rounds, without holding for " + settle.String()}
		}
	} else {
		c.Stuck = []string{"no probe round"}
	}
	return c
}

// watchConvergence polls probe every poll, from the end of the heal
// (healEnd), until the checker has a verdict. It keeps polling past the
// bound, up to one and a half times it plus settle, so that a cluster
// that converges late is told apart from one that never does.
func watchConvergence(ctx context.Context, probe func(context.Context) []MemberStatus, healEnd time.Time, bound, settle, poll time.Duration) Convergence {
	var rounds []ProbeRound
	for {
		members := probe(ctx)
		rounds = append(rounds, ProbeRound{At: time.Since(healEnd), Members: members})
		c := judgeConvergence(rounds, bound, settle)
		if c.Converged || c.Late || time.Since(healEnd) > bound*3/2+settle || ctx.Err() != nil {
			return c
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

// patroniStatus is the part of GET /patroni the checker reads.
type patroniStatus struct {
	State            string `json:"state"`
	Role             string `json:"role"`
	Timeline         int    `json:"timeline"`
	ReplicationState string `json:"replication_state"`
	Replication      []struct {
		ApplicationName string `json:"application_name"`
		State           string `json:"state"`
	} `json:"replication"`
	Regent struct {
		Reason         string `json:"reason"`
		HoldsLeaderKey bool   `json:"holds_leader_key"`
	} `json:"regent"`
}

// ProbeMembers asks every member's REST API (directly, bypassing the
// proxies) for GET /patroni, in parallel.
func (e *Env) ProbeMembers(ctx context.Context) []MemberStatus {
	out := make([]MemberStatus, len(e.Members))
	client := &http.Client{Timeout: 2 * time.Second}
	var wg sync.WaitGroup
	for i, m := range e.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = probePatroni(ctx, client, m, e.Cluster.APIURL(m))
		}()
	}
	wg.Wait()
	return out
}

func probePatroni(ctx context.Context, client *http.Client, member, baseURL string) MemberStatus {
	st := MemberStatus{Member: member}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/patroni", nil)
	if err != nil {
		st.Err = err.Error()
		return st
	}
	resp, err := client.Do(req)
	if err != nil {
		st.Err = err.Error()
		return st
	}
	defer resp.Body.Close()
	var p patroniStatus
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		st.Err = fmt.Sprintf("HTTP %d, undecodable body: %v", resp.StatusCode, err)
		return st
	}
	st.State, st.Role, st.Timeline, st.ReplicationState = p.State, p.Role, p.Timeline, p.ReplicationState
	st.HoldsLeaderKey, st.Reason = p.Regent.HoldsLeaderKey, p.Regent.Reason
	for _, r := range p.Replication {
		if r.State == "streaming" {
			st.Streaming = append(st.Streaming, r.ApplicationName)
		}
	}
	return st
}
