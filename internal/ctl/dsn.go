package ctl

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/regent-ha/regent/internal/cluster"
)

// SelectDSNMember picks the member `regent dsn` connects to: the named
// member when member is set (the role is then not checked); otherwise for
// role primary the leader, for replica the streaming replica with the least
// lag (then by name), and for any the leader or else the best replica.
func SelectDSNMember(c *cluster.Cluster, role, member string) (*cluster.Member, error) {
	if member != "" {
		m := c.Member(member)
		if m == nil {
			return nil, fmt.Errorf("member %s is not in cluster %s (members: %s)", member, c.Scope, memberNames(c.SortedMembers()))
		}
		return m, nil
	}
	role, err := normalizeRole(role)
	if err != nil {
		return nil, err
	}
	if role != RoleReplica {
		if m := c.LeaderMember(); m != nil {
			return m, nil
		}
		if role == RolePrimary {
			return nil, fmt.Errorf("cluster %s has no leader", c.Scope)
		}
	}
	if reps := StreamingReplicas(c); len(reps) > 0 {
		return reps[0], nil
	}
	if role == RoleReplica {
		return nil, fmt.Errorf("cluster %s has no streaming replica", c.Scope)
	}
	return nil, fmt.Errorf("cluster %s has neither a leader nor a streaming replica", c.Scope)
}

// StreamingReplicas are the running, streaming non-leader members, by lag
// behind the leader's last reported position (unknown lag last), then name.
func StreamingReplicas(c *cluster.Cluster) []*cluster.Member {
	var out []*cluster.Member
	for _, m := range c.SortedMembers() {
		if m.Name != c.LeaderName() && m.State == cluster.StateRunning && m.ReplicationState == cluster.ReplicationStreaming {
			out = append(out, m)
		}
	}
	lag := func(m *cluster.Member) int64 {
		if m.XLogLocation == nil {
			return 1<<63 - 1
		}
		pos, _ := c.Position(m)
		return max(c.Status.Optime-pos, 0)
	}
	sort.SliceStable(out, func(i, j int) bool { return lag(out[i]) < lag(out[j]) })
	return out
}

// DSN is the libpq key=value connection string of a member's PostgreSQL:
// host and port from its conn_url, dbname=postgres.
func DSN(m *cluster.Member) (string, error) {
	if m.ConnURL == "" {
		return "", fmt.Errorf("member %s publishes no conn_url", m.Name)
	}
	u, err := url.Parse(m.ConnURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("member %s has an unusable conn_url %q", m.Name, m.ConnURL)
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return fmt.Sprintf("host=%s port=%s dbname=postgres", libpqQuote(u.Hostname()), libpqQuote(port)), nil
}

// libpqQuote quotes a connection-string value when it needs it.
func libpqQuote(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\\t\n") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
