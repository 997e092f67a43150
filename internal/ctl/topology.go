package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/regent-ha/regent/internal/cluster"
)

// TopologyRow is a list row placed in the replication tree: Level 0 is the
// leader (or a member without an upstream), Level 1 its replicas, deeper
// levels cascading replicas. Following names the upstream member.
type TopologyRow struct {
	ListRow
	Level int `json:"Level"`
}

// upstreamOf is the member m replicates from: its replicatefrom tag when
// that names another member, else the leader; "" for the leader itself, or
// for any member when there is no leader.
func upstreamOf(c *cluster.Cluster, m *cluster.Member) string {
	leader := c.LeaderName()
	if m.Name == leader {
		return ""
	}
	if rf := m.EffectiveTags().ReplicateFrom; rf != "" && rf != m.Name && c.Member(rf) != nil {
		return rf
	}
	if c.Member(leader) != nil {
		return leader
	}
	return ""
}

// TopologyRows orders the members as a replication tree: the leader first,
// each member followed by its downstream replicas (by name). Members whose
// replicatefrom chain loops are placed under the leader.
func TopologyRows(c *cluster.Cluster) []TopologyRow {
	rows := map[string]ListRow{}
	for _, r := range Rows(c) {
		rows[r.Member] = r
	}
	parent := map[string]string{}
	for _, m := range c.SortedMembers() {
		parent[m.Name] = upstreamOf(c, m)
	}
	// Break loops: walk up from every member; a member reached again is
	// attached to the leader (or made a root).
	leader := c.LeaderName()
	if c.Member(leader) == nil {
		leader = ""
	}
	for _, m := range c.SortedMembers() {
		seen := map[string]bool{m.Name: true}
		for p := parent[m.Name]; p != ""; p = parent[p] {
			if seen[p] {
				parent[m.Name] = leader
				break
			}
			seen[p] = true
		}
	}
	children := map[string][]string{}
	var roots []string
	if leader != "" {
		roots = append(roots, leader)
	}
	for _, m := range c.SortedMembers() {
		switch p := parent[m.Name]; {
		case m.Name == leader:
		case p == "":
			roots = append(roots, m.Name)
		default:
			children[p] = append(children[p], m.Name)
		}
	}
	var out []TopologyRow
	done := map[string]bool{}
	var walk func(name string, level int)
	walk = func(name string, level int) {
		if done[name] {
			return
		}
		done[name] = true
		r := rows[name]
		r.Following = parent[name]
		out = append(out, TopologyRow{ListRow: r, Level: level})
		for _, ch := range children[name] {
			walk(ch, level+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	for _, m := range c.SortedMembers() { // anything left (defensive)
		walk(m.Name, 0)
	}
	return out
}

// treeName indents a member name for its level: "n1", "+ n2", "  + n3".
func treeName(name string, level int) string {
	if level == 0 {
		return name
	}
	return strings.Repeat("  ", level-1) + "+ " + name
}

// WriteTopology prints the replication tree as a table ("table") or JSON
// ("json").
func WriteTopology(w io.Writer, c *cluster.Cluster, format string) error {
	rows := TopologyRows(c)
	switch format {
	case "json":
		if rows == nil {
			rows = []TopologyRow{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "table", "":
	default:
		return fmt.Errorf("unknown format %q: use table or json", format)
	}
	fmt.Fprintf(w, "+ Cluster: %s", c.Scope)
	if c.Initialize != nil && c.Initialize.SystemID != "" {
		fmt.Fprintf(w, " (%s)", c.Initialize.SystemID)
	}
	fmt.Fprintln(w, " +")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Member\tHost\tRole\tState\tTL\tLag in MB")
	for _, r := range rows {
		tl, lag := "", ""
		if r.Timeline != nil {
			tl = fmt.Sprint(*r.Timeline)
		}
		if r.LagMB != nil {
			lag = fmt.Sprint(*r.LagMB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", treeName(r.Member, r.Level), r.Host, r.Role, r.State, tl, lag)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "(no members)")
	}
	return nil
}
