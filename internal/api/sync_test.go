package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/regent-ha/regent/internal/cluster"
)

func TestSyncStandbyOf(t *testing.T) {
	on, quorum := cluster.SyncOn, cluster.SyncQuorum
	tests := []struct {
		name       string
		c          func() *cluster.Cluster
		mode       cluster.SyncMode
		member     string
		sync, quor bool
	}{
		{"listed, mode on", func() *cluster.Cluster { return syncCluster(on) }, on, "pg2", true, false},
		{"listed, mode quorum", func() *cluster.Cluster { return syncCluster(quorum) }, quorum, "pg3", false, true},
		{"not listed", func() *cluster.Cluster { return syncCluster(on) }, on, "pg3", false, false},
		{"the leader itself", func() *cluster.Cluster { return syncCluster(on) }, on, "pg1", false, false},
		{"mode off, stale key", func() *cluster.Cluster { return syncCluster(on) }, cluster.SyncOff, "pg2", false, false},
		{"mode unset", func() *cluster.Cluster { return syncCluster(on) }, "", "pg2", false, false},
		{"no sync key", testCluster, on, "pg2", false, false},
		{"no view", func() *cluster.Cluster { return nil }, on, "pg2", false, false},
		{"empty name", func() *cluster.Cluster { return syncCluster(on) }, on, "", false, false},
		{"key without a leader", func() *cluster.Cluster {
			c := syncCluster(on)
			c.Sync.Leader = ""
			return c
		}, on, "pg2", false, false},
		{"key claimed empty by a new leader", func() *cluster.Cluster {
			c := syncCluster(on)
			c.Leader.Name, c.Sync.Leader, c.Sync.Members = "pg2", "pg2", nil
			return c
		}, on, "pg3", false, false},
		{"key of the previous leader", func() *cluster.Cluster {
			c := syncCluster(quorum)
			c.Leader.Name = "pg2" // took the leader key, has not claimed the sync key yet
			return c
		}, quorum, "pg3", false, false},
		{"no leader key: the last key stands", func() *cluster.Cluster {
			c := syncCluster(on)
			c.Leader = nil
			return c
		}, on, "pg2", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sync, quor := SyncStandbyOf(tt.c(), tt.mode, tt.member)
			if sync != tt.sync || quor != tt.quor {
				t.Errorf("SyncStandbyOf = %v, %v, want %v, %v", sync, quor, tt.sync, tt.quor)
			}
		})
	}
}

func TestClusterViewSyncRoles(t *testing.T) {
	roles := func(c *cluster.Cluster) map[string]string {
		t.Helper()
		rec := do(t, New(fakeSource{replicaSnap()}, &fakeReader{c: c}, nil).Handler(), http.MethodGet, "/cluster")
		var got struct {
			Members []struct{ Name, Role, State string } `json:"members"`
		}
		if rec.Code != 200 {
			t.Fatalf("GET /cluster = %d %s", rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, m := range got.Members {
			out[m.Name] = m.Role
			if m.Name == "pg3" && m.Role != "leader" && m.State != "streaming" {
				t.Errorf("pg3 state = %q, want its replication state", m.State)
			}
		}
		return out
	}
	check := func(what string, got map[string]string, want map[string]string) {
		t.Helper()
		for name, role := range want {
			if got[name] != role {
				t.Errorf("%s: %s role = %q, want %q (all: %v)", what, name, got[name], role, got)
			}
		}
	}
	check("mode on", roles(syncCluster(cluster.SyncOn)),
		map[string]string{"pg1": "leader", "pg2": "sync_standby", "pg3": "replica"})
	check("quorum", roles(syncCluster(cluster.SyncQuorum)),
		map[string]string{"pg1": "leader", "pg2": "quorum_standby", "pg3": "quorum_standby"})
	off := syncCluster(cluster.SyncOn)
	off.Config.SynchronousMode = cluster.SyncOff
	check("mode off, stale key", roles(off), map[string]string{"pg1": "leader", "pg2": "replica", "pg3": "replica"})
	noConfig := syncCluster(cluster.SyncOn)
	noConfig.Config = nil
	check("no config key", roles(noConfig), map[string]string{"pg2": "replica"})
	stale := syncCluster(cluster.SyncOn)
	stale.Leader.Name = "pg3"
	check("key of the previous leader", roles(stale), map[string]string{"pg1": "replica", "pg2": "replica", "pg3": "leader"})
}

func TestPatroniSyncFlags(t *testing.T) {
	body := func(s Snapshot) map[string]any {
		t.Helper()
		return decode(t, do(t, New(fakeSource{s}, nil, nil).Handler(), http.MethodGet, "/patroni"))
	}
	got := body(syncSnap())
	if got["sync_standby"] != true {
		t.Errorf("sync standby body has sync_standby = %v", got["sync_standby"])
	}
	if _, ok := got["quorum_standby"]; ok {
		t.Errorf("sync standby body has quorum_standby")
	}
	got = body(quorumSnap())
	if got["quorum_standby"] != true {
		t.Errorf("quorum standby body has quorum_standby = %v", got["quorum_standby"])
	}
	if _, ok := got["sync_standby"]; ok {
		t.Errorf("quorum standby body has sync_standby")
	}
	for name, s := range map[string]Snapshot{
		"replica": replicaSnap(), "leader": syncPrimarySnap(cluster.SyncOn)(),
		"flag on a primary": func() Snapshot {
			s := syncPrimarySnap(cluster.SyncOn)()
			s.SyncStandby, s.QuorumStandby = true, true
			return s
		}(),
		"stopped standby": func() Snapshot {
			s := syncSnap()
			s.State = cluster.StateStopped
			return s
		}(),
	} {
		got := body(s)
		for _, k := range []string{"sync_standby", "quorum_standby"} {
			if _, ok := got[k]; ok {
				t.Errorf("%s: body has %s", name, k)
			}
		}
	}
}
