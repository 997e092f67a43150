package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/regent-ha/regent/internal/cluster"
)

func TestListRows(t *testing.T) {
	lsn := func(v int64) *int64 { return &v }
	c := &cluster.Cluster{
		Scope:  "demo",
		Leader: &cluster.Leader{Name: "n1"},
		Status: cluster.Status{Optime: 3 << 20},
		Members: map[string]*cluster.Member{
			"n2": {Name: "n2", ConnURL: "postgres://127.0.0.1:5442/postgres", State: "running", Role: "replica",
				ReplicationState: "streaming", Timeline: 1, XLogLocation: lsn(1 << 20)},
			"n1": {Name: "n1", ConnURL: "postgres://127.0.0.1:5441/postgres", State: "running", Role: "primary",
				Timeline: 1, XLogLocation: lsn(3 << 20)},
		},
	}
	var buf bytes.Buffer
	if err := WriteList(&buf, c, "json"); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0]["Member"] != "n1" || rows[0]["Role"] != "Leader" {
		t.Fatalf("rows = %v", rows)
	}
	if rows[1]["State"] != "streaming" || rows[1]["Lag in MB"] != float64(2) || rows[1]["Host"] != "127.0.0.1:5442" {
		t.Fatalf("replica row = %v", rows[1])
	}
	buf.Reset()
	if err := WriteList(&buf, c, "table"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Leader") || !strings.Contains(buf.String(), "streaming") {
		t.Fatalf("table:\n%s", buf.String())
	}
	if err := WriteList(&buf, c, "yaml"); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestListSyncRoles(t *testing.T) {
	lsn := func(v int64) *int64 { return &v }
	view := func(mode cluster.SyncMode, listed ...string) *cluster.Cluster {
		c := &cluster.Cluster{
			Scope:  "demo",
			Leader: &cluster.Leader{Name: "n1"},
			Config: &cluster.DynamicConfig{SynchronousMode: mode},
			Status: cluster.Status{Optime: 3 << 20},
			Sync:   &cluster.SyncState{Leader: "n1", Members: listed},
			Members: map[string]*cluster.Member{
				"n1": {Name: "n1", State: "running", Role: "primary", Timeline: 1, XLogLocation: lsn(3 << 20)},
				"n2": {Name: "n2", State: "running", Role: "replica", ReplicationState: "streaming", Timeline: 1, XLogLocation: lsn(1 << 20)},
				"n3": {Name: "n3", State: "running", Role: "replica", ReplicationState: "streaming", Timeline: 1, XLogLocation: lsn(3 << 20)},
			},
		}
		if mode == cluster.SyncQuorum {
			c.Sync.Quorum = 1
		}
		return c
	}
	tests := []struct {
		name string
		c    *cluster.Cluster
		want []string
	}{
		{"synchronous_mode on", view(cluster.SyncOn, "n2"), []string{"Leader", "Sync Standby", "Replica"}},
		{"synchronous_mode quorum", view(cluster.SyncQuorum, "n2", "n3"), []string{"Leader", "Quorum Standby", "Quorum Standby"}},
		{"synchronous_mode off, stale key", view(cluster.SyncOff, "n2"), []string{"Leader", "Replica", "Replica"}},
	}
	for _, tt := range tests {
		rows := Rows(tt.c)
		var got []string
		for _, r := range rows {
			got = append(got, r.Role)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: roles %v, want %v", tt.name, got, tt.want)
		}
		if r := rows[1]; r.State != "streaming" || r.LagMB == nil || *r.LagMB != 2 {
			t.Errorf("%s: n2 row %+v, want streaming with 2 MB of lag", tt.name, r)
		}
	}
	var buf bytes.Buffer
	if err := WriteList(&buf, view(cluster.SyncOn, "n2"), "table"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Sync Standby") {
		t.Fatalf("table:\n%s", buf.String())
	}
}

// TestListNeedsReinit: a member that waits for an operator says so, and
// names the command, in both formats.
func TestListNeedsReinit(t *testing.T) {
	c := &cluster.Cluster{
		Scope:  "demo",
		Leader: &cluster.Leader{Name: "n1"},
		Members: map[string]*cluster.Member{
			"n1": {Name: "n1", State: "running", Role: "primary", Timeline: 2},
			"n2": {Name: "n2", State: cluster.StateNeedsReinit, Role: "replica", Timeline: 1,
				NeedsReinit: "pg_rewind from n1 failed: the target data directory is only partly rewound"},
			"n3": {Name: "n3", State: cluster.StateRewindFailed, Role: "replica", Timeline: 1},
		},
	}
	var buf bytes.Buffer
	if err := WriteList(&buf, c, "table"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "needs reinit") ||
		!strings.Contains(out, "n2 needs an operator: run `regent reinit n2` (pg_rewind from n1 failed: the target data directory is only partly rewound)") {
		t.Fatalf("table does not tell the operator to reinit n2:\n%s", out)
	}
	if strings.Contains(out, "regent reinit n3") {
		t.Fatalf("a member retrying a transient rewind failure is listed as needing reinit:\n%s", out)
	}
	buf.Reset()
	if err := WriteList(&buf, c, "json"); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if rows[1]["State"] != "needs reinit" || !strings.Contains(fmt.Sprint(rows[1]["Needs reinit"]), "partly rewound") || rows[2]["Needs reinit"] != nil {
		t.Fatalf("json rows = %v", rows)
	}
}

// TestListLagUsesLeaderSlot pins the demo's first seconds: a freshly cloned
// replica's key still says 0/3000000 (where its WAL receiver started) while
// the leader is at 0/4000000 after a WAL switch and has seen the replica
// flush up to there. regent list shows no lag, not 16 MB.
func TestListLagUsesLeaderSlot(t *testing.T) {
	lsn := func(v int64) *int64 { return &v }
	c := &cluster.Cluster{
		Scope:  "demo",
		Leader: &cluster.Leader{Name: "n2"},
		Status: cluster.Status{Optime: 0x4000000, Slots: map[string]int64{"n3": 0x4000000}},
		Members: map[string]*cluster.Member{
			"n2": {Name: "n2", State: "running", Role: "primary", Timeline: 1, XLogLocation: lsn(0x4000000)},
			"n3": {Name: "n3", State: "running", Role: "replica", ReplicationState: "streaming", Timeline: 1, XLogLocation: lsn(0x3000000)},
		},
	}
	r := Rows(c)[1]
	if r.LagBytes == nil || *r.LagBytes != 0 || *r.LagMB != 0 {
		t.Fatalf("n3 row %+v, want 0 bytes of lag", r)
	}
	if r.LSN != "0/3000000" {
		t.Errorf("LSN column %q, want the member's own xlog_location 0/3000000", r.LSN)
	}
	delete(c.Status.Slots, "n3")
	if r := Rows(c)[1]; r.LagBytes == nil || *r.LagBytes != 16<<20 {
		t.Fatalf("without the slot: n3 row %+v, want 16 MB of lag", r)
	}
}
