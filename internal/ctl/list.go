// Package ctl implements the operator commands that read or change the
// cluster through etcd and the members' REST APIs.
package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/cluster"
)

// ListRow is one member in `regent list`; JSON keys follow patronictl's.
type ListRow struct {
	Cluster   string `json:"Cluster"`
	Member    string `json:"Member"`
	Host      string `json:"Host"`
	Role      string `json:"Role"`
	State     string `json:"State"`
	Timeline  *int   `json:"TL,omitempty"`
	LagMB     *int64 `json:"Lag in MB,omitempty"`
	LagBytes  *int64 `json:"Lag in bytes,omitempty"`
	Pending   bool   `json:"Pending restart,omitempty"`
	Tags      any    `json:"Tags,omitempty"`
	LSN       string `json:"LSN,omitempty"`
	Following string `json:"Following,omitempty"`
	// NeedsReinit is why the member waits for `regent reinit` ("" when
	// it does not).
	NeedsReinit string `json:"Needs reinit,omitempty"`
}

// Rows turns a cluster view into list rows, sorted by member name.
func Rows(c *cluster.Cluster) []ListRow {
	var rows []ListRow
	leader := c.LeaderName()
	for _, m := range c.SortedMembers() {
		r := ListRow{Cluster: c.Scope, Member: m.Name, Host: hostOf(m.ConnURL), State: m.State, Pending: m.PendingRestart,
			NeedsReinit: m.NeedsReinit}
		if m.State == cluster.StateNeedsReinit && r.NeedsReinit == "" {
			r.NeedsReinit = "a rejoin step failed in a way retrying cannot fix"
		}
		if m.Timeline > 0 {
			tl := m.Timeline
			r.Timeline = &tl
		}
		if m.Tags != nil {
			r.Tags = m.Tags
		}
		syncRole := api.ClusterSyncRole(c, m.Name)
		switch {
		case m.Name == leader:
			r.Role = "Leader"
		case syncRole == "" && m.Role == cluster.RoleUninitialized:
			r.Role = "Uninitialized"
		default:
			// As patronictl: the /cluster role, title-cased.
			switch syncRole {
			case api.ClusterRoleSyncStandby:
				r.Role = "Sync Standby"
			case api.ClusterRoleQuorumStandby:
				r.Role = "Quorum Standby"
			default:
				r.Role = "Replica"
			}
			if m.ReplicationState != "" {
				r.State = m.ReplicationState
			}
			if lag, ok := c.Lag(m); ok && m.XLogLocation != nil {
				mb := lag / (1 << 20)
				r.LagBytes, r.LagMB = &lag, &mb
			}
		}
		if m.XLogLocation != nil {
			r.LSN = cluster.FormatLSN(*m.XLogLocation)
		}
		rows = append(rows, r)
	}
	return rows
}

func hostOf(connURL string) string {
	u, err := url.Parse(connURL)
	if err != nil {
		return connURL
	}
	return u.Host
}

// WriteList prints the rows as a table ("table") or JSON ("json").
func WriteList(w io.Writer, c *cluster.Cluster, format string) error {
	rows := Rows(c)
	switch format {
	case "json":
		if rows == nil {
			rows = []ListRow{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "table", "":
		return writeTable(w, c, rows)
	default:
		return fmt.Errorf("unknown format %q: use table or json", format)
	}
}

func writeTable(w io.Writer, c *cluster.Cluster, rows []ListRow) error {
	fmt.Fprintf(w, "+ Cluster: %s", c.Scope)
	if c.Initialize != nil && c.Initialize.SystemID != "" {
		fmt.Fprintf(w, " (%s)", c.Initialize.SystemID)
	}
	fmt.Fprintln(w, " +")
	pending := slices.ContainsFunc(rows, func(r ListRow) bool { return r.Pending })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "Member\tHost\tRole\tState\tTL\tLag in MB\tLSN"
	if pending {
		header += "\tPending restart"
	}
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		tl, lag := "", ""
		if r.Timeline != nil {
			tl = fmt.Sprint(*r.Timeline)
		}
		if r.LagMB != nil {
			lag = fmt.Sprint(*r.LagMB)
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", r.Member, r.Host, r.Role, r.State, tl, lag, r.LSN)
		if pending && r.Pending {
			line += "\t*"
		} else if pending {
			line += "\t"
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "(no members)")
	}
	for _, r := range rows {
		if r.NeedsReinit != "" {
			fmt.Fprintf(w, "%s needs an operator: run `regent reinit %s` (%s)\n", r.Member, r.Member, r.NeedsReinit)
		}
	}
	if c.Config != nil && c.Config.Pause {
		fmt.Fprintln(w, strings.ToUpper(" maintenance mode: on"))
	}
	if line := scheduledSwitchoverLine(c); line != "" {
		fmt.Fprintln(w, line)
	}
	return nil
}

// scheduledSwitchoverLine describes a switchover waiting in the failover
// key for its scheduled_at time, or returns "".
func scheduledSwitchoverLine(c *cluster.Cluster) string {
	f := c.Failover
	if f == nil || f.ScheduledAt == "" {
		return ""
	}
	line := "Switchover scheduled at: " + f.ScheduledAt
	from := f.Leader
	if from == "" {
		from = c.LeaderName()
	}
	if from != "" {
		line += " from " + from
	}
	if f.Member != "" {
		line += " to " + f.Member
	}
	return line
}
