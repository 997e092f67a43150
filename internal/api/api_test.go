package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

type fakeSource struct{ snap Snapshot }

func (f fakeSource) Snapshot() Snapshot { return f.snap }

// fakeReader returns c/err, or blocks until release is closed (honouring
// ctx unless ignoreCtx).
type fakeReader struct {
	c         *cluster.Cluster
	err       error
	block     bool
	ignoreCtx bool
	release   chan struct{}
}

func (f *fakeReader) Load(ctx context.Context) (*cluster.Cluster, error) {
	if f.block {
		if f.ignoreCtx {
			<-f.release
		} else {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-f.release:
			}
		}
	}
	return f.c, f.err
}

func i64(v int64) *int64 { return &v }

const (
	optime = 0x3000000
	mb     = 1 << 20
)

func testCluster() *cluster.Cluster {
	return &cluster.Cluster{
		Scope:  "demo",
		Leader: &cluster.Leader{Name: "pg1"},
		Config: &cluster.DynamicConfig{TTL: 5, LoopWait: 1},
		Status: cluster.Status{Optime: optime},
		Members: map[string]*cluster.Member{
			"pg3": {Name: "pg3", State: "running", Role: "replica", APIURL: "http://10.0.0.3:8008/patroni",
				ConnURL: "postgres://10.0.0.3:5432/postgres", ReplicationState: "streaming", Timeline: 2,
				XLogLocation: i64(optime - 2*mb), ReceiveLSN: i64(optime - mb), ReplayLSN: i64(optime - 2*mb),
				Tags: &cluster.Tags{NoFailover: true}},
			"pg1": {Name: "pg1", State: "running", Role: "primary", APIURL: "http://10.0.0.1:8008/patroni",
				ConnURL: "postgres://10.0.0.1:5432/postgres", Timeline: 2, XLogLocation: i64(optime)},
			"pg2": {Name: "pg2", State: "running", Role: "replica", APIURL: "http://10.0.0.2:8008/patroni",
				ConnURL: "host=10.0.0.2 port=5433", Timeline: 2},
		},
		History: []cluster.HistoryEntry{{Timeline: 1, SwitchLSN: 0x1000000, Reason: "no recovery target specified",
			Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), NewLeader: "pg1"}},
	}
}

func primarySnap() Snapshot {
	now := time.Now()
	return Snapshot{
		Scope: "demo", Name: "pg1", Version: "0.1.0",
		Taken: now, LastLoop: now,
		Role: cluster.RolePrimary, State: cluster.StateRunning,
		HoldsLeaderKey: true, Writable: true,
		PostmasterStartTime: time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC),
		ServerVersion:       170002, Timeline: 2, XLogLocation: optime,
		Replication: []Replica{{Usename: "replicator", ApplicationName: "pg2", ClientAddr: "10.0.0.2",
			State: "streaming", SyncState: "async"}},
		SystemIdentifier: "7312345678901234567",
		DCSLastSeen:      time.Unix(1700000000, 0), DCSReachable: true,
		Cluster: testCluster(), LoopWait: time.Second, TTL: 5 * time.Second,
		MaximumLagOnFailover: mb, Action: "renew", Reason: "leader lease renewed",
	}
}

func replicaSnap() Snapshot {
	s := primarySnap()
	s.Name = "pg2"
	s.Role, s.HoldsLeaderKey, s.Writable = cluster.RoleReplica, false, false
	s.XLogLocation, s.ReceiveLSN, s.ReplayLSN = 0, optime, optime-1024
	s.ReplicationState = cluster.ReplicationStreaming
	s.Replication = nil
	s.Action, s.Reason = "follow", "following pg1"
	return s
}

// syncCluster is testCluster with synchronous_mode mode and pg1's sync
// key listing pg2 (quorum 1 in quorum mode).
func syncCluster(mode cluster.SyncMode) *cluster.Cluster {
	c := testCluster()
	c.Config.SynchronousMode = mode
	c.Sync = &cluster.SyncState{Leader: "pg1", Members: []string{"pg2"}, Revision: 7}
	if mode == cluster.SyncQuorum {
		c.Sync.Members, c.Sync.Quorum = []string{"pg2", "pg3"}, 1
	}
	return c
}

// syncSnap is pg2, the published synchronous standby (synchronous_mode on).
func syncSnap() Snapshot {
	s := replicaSnap()
	s.Cluster = syncCluster(cluster.SyncOn)
	s.SyncStandby = true
	return s
}

// quorumSnap is pg2, a published quorum standby (synchronous_mode quorum).
func quorumSnap() Snapshot {
	s := replicaSnap()
	s.Cluster = syncCluster(cluster.SyncQuorum)
	s.QuorumStandby = true
	return s
}

// syncPrimarySnap is pg1, the leader that published the sync key.
func syncPrimarySnap(mode cluster.SyncMode) func() Snapshot {
	return func() Snapshot {
		s := primarySnap()
		s.Cluster = syncCluster(mode)
		return s
	}
}

// asyncSnap is pg3, a replica the sync key does not list (mode on).
func asyncSnap() Snapshot {
	s := replicaSnap()
	s.Name = "pg3"
	s.Cluster = syncCluster(cluster.SyncOn)
	return s
}

// dcSnap adds custom tags (dc east, ssd true, rack 3, weight 1.5) to a
// snapshot.
func dcSnap(snap func() Snapshot) func() Snapshot {
	return func() Snapshot {
		s := snap()
		s.Tags.Custom = map[string]any{"dc": "east", "ssd": true, "rack": 3, "weight": 1.5}
		return s
	}
}

func do(t testing.TB, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestHealthChecks(t *testing.T) {
	prio := 3
	tests := []struct {
		name string
		snap func() Snapshot
		path string
		want int
	}{
		{"primary /", primarySnap, "/", 200},
		{"primary /primary", primarySnap, "/primary", 200},
		{"primary /read-write", primarySnap, "/read-write", 200},
		{"primary /master", primarySnap, "/master", 200},
		{"primary /leader", primarySnap, "/leader", 200},
		{"primary /read-only", primarySnap, "/read-only", 200},
		{"primary /replica", primarySnap, "/replica", 503},
		{"primary /standby-leader", primarySnap, "/standby-leader", 503},
		{"primary /standby_leader", primarySnap, "/standby_leader", 503},
		{"primary /health", primarySnap, "/health", 200},
		{"primary /read-only-sync", primarySnap, "/read-only-sync", 200},
		{"primary /sync", primarySnap, "/sync", 503},
		{"primary ignores tag filters", primarySnap, "/primary?tag_nofailover=true", 200},
		{"dead postmaster, key held", func() Snapshot {
			s := primarySnap()
			s.Writable = false
			return s
		}, "/primary", 503},
		{"crashed primary", func() Snapshot {
			s := primarySnap()
			s.State, s.Writable = cluster.StateCrashed, false
			return s
		}, "/primary", 503},
		{"crashed primary /leader", func() Snapshot {
			s := primarySnap()
			s.State, s.Writable = cluster.StateCrashed, false
			return s
		}, "/leader", 503},
		{"crashed primary /health", func() Snapshot {
			s := primarySnap()
			s.State = cluster.StateCrashed
			return s
		}, "/health", 503},
		{"lease not confirmed", func() Snapshot {
			s := primarySnap()
			s.HoldsLeaderKey = false
			return s
		}, "/primary", 503},
		{"lease not confirmed /leader", func() Snapshot {
			s := primarySnap()
			s.HoldsLeaderKey = false
			return s
		}, "/leader", 503},
		{"lease deadline passed", func() Snapshot {
			s := primarySnap()
			s.LeaseDeadline = time.Now().Add(-time.Millisecond)
			return s
		}, "/primary", 503},
		{"lease deadline ahead", func() Snapshot {
			s := primarySnap()
			s.LeaseDeadline = time.Now().Add(time.Second)
			return s
		}, "/primary", 200},
		{"stale snapshot (agent stalled)", func() Snapshot {
			s := primarySnap()
			s.Taken = time.Now().Add(-6 * time.Second)
			return s
		}, "/primary", 503},
		{"no snapshot yet", func() Snapshot { return Snapshot{} }, "/primary", 503},
		{"no snapshot yet /health", func() Snapshot { return Snapshot{} }, "/health", 503},
		{"writable replica-role mismatch", func() Snapshot {
			s := primarySnap()
			s.Role = cluster.RoleReplica
			return s
		}, "/primary", 503},
		{"replica /primary", replicaSnap, "/primary", 503},
		{"replica /leader", replicaSnap, "/leader", 503},
		{"replica /replica", replicaSnap, "/replica", 200},
		{"replica /read-only", replicaSnap, "/read-only", 200},
		{"replica /health", replicaSnap, "/health", 200},
		{"replica /async", replicaSnap, "/async", 200},
		{"replica /asynchronous", replicaSnap, "/asynchronous", 200},
		{"replica /sync", replicaSnap, "/sync", 503},
		{"replica /read-only-sync", replicaSnap, "/read-only-sync", 503},
		{"replica within lag", replicaSnap, "/replica?lag=1MB", 200},
		{"replica lagging", func() Snapshot {
			s := replicaSnap()
			s.ReplayLSN = optime - 2*mb
			return s
		}, "/replica?lag=1MB", 503},
		{"replica lagging, no lag param", func() Snapshot {
			s := replicaSnap()
			s.ReplayLSN = optime - 2*mb
			return s
		}, "/replica", 200},
		{"replica lagging /read-only", func() Snapshot {
			s := replicaSnap()
			s.ReplayLSN = optime - 2*mb
			return s
		}, "/read-only?lag=1MB", 503},
		{"lag vs leader member xlog_location", func() Snapshot {
			s := replicaSnap()
			s.Cluster = testCluster()
			s.Cluster.Status.Optime = 0
			s.Cluster.Members["pg1"].XLogLocation = i64(optime + 4*mb)
			return s
		}, "/replica?lag=1MB", 503},
		{"lag vs received location", func() Snapshot {
			s := replicaSnap()
			s.Cluster = nil
			s.ReceiveLSN, s.ReplayLSN = optime, optime-2*mb
			return s
		}, "/replica?lag=1MB", 503},
		{"unknown optime counts as no lag", func() Snapshot {
			s := replicaSnap()
			s.Cluster, s.ReceiveLSN = nil, 0
			return s
		}, "/replica?lag=0", 200},
		{"bad lag", replicaSnap, "/replica?lag=lots", 400},
		{"replication_state match", replicaSnap, "/replica?replication_state=streaming", 200},
		{"replication_state mismatch", replicaSnap, "/replica?replication_state=in%20archive%20recovery", 503},
		{"noloadbalance", func() Snapshot {
			s := replicaSnap()
			s.Tags.NoLoadBalance = true
			return s
		}, "/replica", 503},
		{"noloadbalance /read-only", func() Snapshot {
			s := replicaSnap()
			s.Tags.NoLoadBalance = true
			return s
		}, "/read-only", 503},
		{"tag bool match", func() Snapshot {
			s := replicaSnap()
			s.Tags.NoFailover = true
			return s
		}, "/replica?tag_nofailover=true", 200},
		{"tag bool false", replicaSnap, "/replica?tag_nofailover=false", 200},
		{"tag bool mismatch", replicaSnap, "/replica?tag_nofailover=true", 503},
		{"tag priority match", func() Snapshot {
			s := replicaSnap()
			s.Tags.FailoverPriority = &prio
			return s
		}, "/replica?tag_failover_priority=3", 200},
		{"tag priority default", replicaSnap, "/replica?tag_failover_priority=1", 200},
		{"tag string match", func() Snapshot {
			s := replicaSnap()
			s.Tags.ReplicateFrom = "pg3"
			return s
		}, "/replica?tag_replicatefrom=pg3&tag_nosync=false", 200},
		{"tag string mismatch", func() Snapshot {
			s := replicaSnap()
			s.Tags.ReplicateFrom = "pg3"
			return s
		}, "/replica?tag_replicatefrom=pg1", 503},
		{"unknown tag", replicaSnap, "/replica?tag_zone=a", 503},
		{"custom tag match", dcSnap(replicaSnap), "/replica?tag_dc=east", 200},
		{"custom tags all match", dcSnap(replicaSnap), "/replica?tag_dc=east&tag_ssd=true&tag_rack=3&tag_weight=1.5", 200},
		{"custom tag mismatch", dcSnap(replicaSnap), "/replica?tag_dc=west", 503},
		{"custom tag case matters for strings", dcSnap(replicaSnap), "/replica?tag_dc=East", 503},
		{"custom bool tag as Python prints it", dcSnap(replicaSnap), "/replica?tag_ssd=True", 503},
		{"custom tag one of two mismatches", dcSnap(replicaSnap), "/replica?tag_dc=east&tag_rack=4", 503},
		{"custom tag /read-only replica", dcSnap(replicaSnap), "/read-only?tag_dc=east", 200},
		{"custom tag /read-only replica mismatch", dcSnap(replicaSnap), "/read-only?tag_dc=west", 503},
		{"custom tag /read-only primary", dcSnap(primarySnap), "/read-only?tag_dc=east", 200},
		{"custom tag /read-only primary mismatch", dcSnap(primarySnap), "/read-only?tag_dc=west", 503},
		{"custom tag ignored on /primary", dcSnap(primarySnap), "/primary?tag_dc=west", 200},
		{"custom tag ignored on /leader", dcSnap(primarySnap), "/leader?tag_dc=west", 200},
		{"custom tag /asynchronous", dcSnap(asyncSnap), "/asynchronous?tag_dc=east", 200},
		{"custom tag /asynchronous mismatch", dcSnap(asyncSnap), "/asynchronous?tag_dc=west", 503},
		{"custom tag /sync", dcSnap(syncSnap), "/sync?tag_dc=east", 200},
		{"custom tag /sync mismatch", dcSnap(syncSnap), "/sync?tag_dc=west", 503},
		{"custom tag /health", dcSnap(replicaSnap), "/health?tag_dc=east", 200},
		{"sync_priority tag", dcSnap(replicaSnap), "/replica?tag_sync_priority=1", 200},
		{"nostream tag", dcSnap(replicaSnap), "/replica?tag_nostream=false", 200},
		{"tag filter on /health", replicaSnap, "/health?tag_zone=a", 503},
		{"stopped replica", func() Snapshot {
			s := replicaSnap()
			s.State = cluster.StateStopped
			return s
		}, "/replica", 503},
		{"stale replica snapshot", func() Snapshot {
			s := replicaSnap()
			s.Taken = time.Now().Add(-11 * time.Second)
			return s
		}, "/replica", 503},
		{"uninitialized /replica", func() Snapshot {
			s := replicaSnap()
			s.Role = cluster.RoleUninitialized
			return s
		}, "/replica", 503},
		{"async without DCS view", func() Snapshot {
			s := replicaSnap()
			s.Cluster = nil
			return s
		}, "/async", 503},
		{"async, DCS unreachable this loop", func() Snapshot {
			s := replicaSnap()
			s.DCSReachable = false
			return s
		}, "/async", 503},

		// synchronous_mode on: pg1 leads, pg2 is the published standby.
		{"sync standby /sync", syncSnap, "/sync", 200},
		{"sync standby /synchronous", syncSnap, "/synchronous", 200},
		{"sync standby /read-only-sync", syncSnap, "/read-only-sync", 200},
		{"sync standby /read-only-synchronous", syncSnap, "/read-only-synchronous", 200},
		{"sync standby /async", syncSnap, "/async", 503},
		{"sync standby /asynchronous", syncSnap, "/asynchronous", 503},
		{"sync standby /quorum", syncSnap, "/quorum", 503},
		{"sync standby /read-only-quorum", syncSnap, "/read-only-quorum", 503},
		{"sync standby /replica", syncSnap, "/replica", 200},
		{"sync standby /read-only", syncSnap, "/read-only", 200},
		{"sync standby /primary", syncSnap, "/primary", 503},
		{"sync standby within lag", syncSnap, "/sync?lag=1MB", 200},
		{"sync standby lagging", func() Snapshot {
			s := syncSnap()
			s.ReplayLSN = optime - 2*mb
			return s
		}, "/sync?lag=1MB", 503},
		{"sync standby lagging /read-only-sync", func() Snapshot {
			s := syncSnap()
			s.ReplayLSN = optime - 2*mb
			return s
		}, "/read-only-sync?lag=1MB", 503},
		{"sync standby replication_state mismatch", syncSnap, "/sync?replication_state=in%20archive%20recovery", 503},
		{"sync standby tag match", syncSnap, "/sync?tag_nofailover=false", 200},
		{"sync standby tag mismatch", syncSnap, "/sync?tag_nofailover=true", 503},
		{"sync standby noloadbalance", func() Snapshot {
			s := syncSnap()
			s.Tags.NoLoadBalance = true
			return s
		}, "/sync", 503},
		{"sync standby stopped", func() Snapshot {
			s := syncSnap()
			s.State = cluster.StateStopped
			return s
		}, "/sync", 503},
		{"sync standby stale snapshot", func() Snapshot {
			s := syncSnap()
			s.Taken = time.Now().Add(-11 * time.Second)
			return s
		}, "/sync", 503},
		{"sync standby without DCS view", func() Snapshot {
			s := syncSnap()
			s.Cluster = nil
			return s
		}, "/sync", 503},
		{"sync standby, DCS unreachable this loop", func() Snapshot {
			s := syncSnap()
			s.DCSReachable = false
			return s
		}, "/sync", 503},
		{"sync standby flag on a primary", func() Snapshot {
			s := syncPrimarySnap(cluster.SyncOn)()
			s.SyncStandby = true
			return s
		}, "/sync", 503},
		{"other replica /sync", asyncSnap, "/sync", 503},
		{"other replica /read-only-sync", asyncSnap, "/read-only-sync", 503},
		{"other replica /async", asyncSnap, "/async", 200},
		{"leader /sync", syncPrimarySnap(cluster.SyncOn), "/sync", 503},
		{"leader /async", syncPrimarySnap(cluster.SyncOn), "/async", 503},
		{"leader /read-only-sync", syncPrimarySnap(cluster.SyncOn), "/read-only-sync", 200},
		{"leader /read-only-synchronous", syncPrimarySnap(cluster.SyncOn), "/read-only-synchronous", 200},
		{"leader /read-only-sync, tag mismatch", syncPrimarySnap(cluster.SyncOn), "/read-only-sync?tag_zone=a", 503},
		{"leader /read-only-sync without DCS view", func() Snapshot {
			s := syncPrimarySnap(cluster.SyncOn)()
			s.Cluster = nil
			return s
		}, "/read-only-sync", 503},
		{"leader /read-only-sync, lease lost", func() Snapshot {
			s := syncPrimarySnap(cluster.SyncOn)()
			s.HoldsLeaderKey = false
			return s
		}, "/read-only-sync", 503},

		// synchronous_mode quorum: pg1 leads, pg2 and pg3 are quorum standbys.
		{"quorum standby /quorum", quorumSnap, "/quorum", 200},
		{"quorum standby /read-only-quorum", quorumSnap, "/read-only-quorum", 200},
		{"quorum standby /sync", quorumSnap, "/sync", 503},
		{"quorum standby /synchronous", quorumSnap, "/synchronous", 503},
		{"quorum standby /read-only-sync", quorumSnap, "/read-only-sync", 503},
		{"quorum standby /async", quorumSnap, "/async", 503},
		{"quorum standby /replica", quorumSnap, "/replica", 200},
		{"quorum standby lagging", func() Snapshot {
			s := quorumSnap()
			s.ReplayLSN = optime - 2*mb
			return s
		}, "/quorum?lag=1MB", 503},
		{"quorum standby, DCS unreachable this loop", func() Snapshot {
			s := quorumSnap()
			s.DCSReachable = false
			return s
		}, "/quorum", 503},
		{"unlisted replica /quorum", func() Snapshot {
			s := asyncSnap()
			s.Cluster = syncCluster(cluster.SyncQuorum)
			s.Cluster.Sync.Members = []string{"pg2"}
			return s
		}, "/quorum", 503},
		{"unlisted replica /async, quorum mode", func() Snapshot {
			s := asyncSnap()
			s.Cluster = syncCluster(cluster.SyncQuorum)
			s.Cluster.Sync.Members = []string{"pg2"}
			return s
		}, "/async", 200},
		{"quorum leader /quorum", syncPrimarySnap(cluster.SyncQuorum), "/quorum", 503},
		{"quorum leader /read-only-quorum", syncPrimarySnap(cluster.SyncQuorum), "/read-only-quorum", 200},
		{"quorum leader /read-only-sync", syncPrimarySnap(cluster.SyncQuorum), "/read-only-sync", 200},
		{"no snapshot yet /sync", func() Snapshot { return Snapshot{} }, "/sync", 503},
		{"no snapshot yet /read-only-sync", func() Snapshot { return Snapshot{} }, "/read-only-sync", 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(fakeSource{tt.snap()}, nil, nil).Handler()
			for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
				rec := do(t, h, m, tt.path)
				if rec.Code != tt.want {
					t.Errorf("%s %s = %d, want %d (body %s)", m, tt.path, rec.Code, tt.want, rec.Body)
				}
			}
		})
	}
}

func TestProbeBodies(t *testing.T) {
	h := New(fakeSource{primarySnap()}, nil, nil).Handler()
	for _, path := range []string{"/primary", "/replica", "/health"} {
		rec := do(t, h, http.MethodGet, path)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s Content-Type = %q", path, ct)
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["role"] != "primary" {
			t.Errorf("GET %s body = %s (%v), want the /patroni body", path, rec.Body, err)
		}
		for _, m := range []string{http.MethodHead, http.MethodOptions} {
			rec := do(t, h, m, path)
			if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
				t.Errorf("%s %s wrote body %q / headers %v, want status only", m, path, rec.Body, rec.Header())
			}
		}
	}
	for _, path := range []string{"/liveness", "/readiness"} {
		if rec := do(t, h, http.MethodGet, path); rec.Code != 200 || rec.Body.Len() != 0 {
			t.Errorf("GET %s = %d %q, want 200 without body", path, rec.Code, rec.Body)
		}
	}
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return m
}

func TestPatroniPrimary(t *testing.T) {
	snap := primarySnap()
	snap.Tags.NoSync = true
	rec := do(t, New(fakeSource{snap}, nil, nil).Handler(), http.MethodGet, "/patroni")
	if rec.Code != 200 {
		t.Fatalf("code %d", rec.Code)
	}
	got := decode(t, rec)
	want := map[string]any{
		"state":                      "running",
		"postmaster_start_time":      "2025-01-02 03:04:05.123456+00:00",
		"role":                       "primary",
		"server_version":             float64(170002),
		"xlog":                       map[string]any{"location": float64(optime)},
		"timeline":                   float64(2),
		"dcs_last_seen":              float64(1700000000),
		"tags":                       map[string]any{"nosync": true},
		"database_system_identifier": "7312345678901234567",
		"patroni":                    map[string]any{"version": "0.1.0", "scope": "demo", "name": "pg1"},
		"regent":                     map[string]any{"action": "renew", "reason": "leader lease renewed", "holds_leader_key": true},
		"replication": []any{map[string]any{"usename": "replicator", "application_name": "pg2",
			"client_addr": "10.0.0.2", "state": "streaming", "sync_state": "async", "sync_priority": float64(0)}},
	}
	for k, v := range want {
		if gb, _ := json.Marshal(got[k]); string(gb) != mustJSON(t, v) {
			t.Errorf("%s = %s, want %s", k, gb, mustJSON(t, v))
		}
	}
	for _, k := range []string{"cluster_unlocked", "pause", "replication_state"} {
		if _, ok := got[k]; ok {
			t.Errorf("unexpected key %s in %s", k, rec.Body)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPatroniReplicaAndFlags(t *testing.T) {
	snap := replicaSnap()
	ts := time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC)
	snap.ReplayedTimestamp = &ts
	snap.Cluster = &cluster.Cluster{Scope: "demo"} // no leader
	snap.Pause = true
	got := decode(t, do(t, New(fakeSource{snap}, nil, nil).Handler(), http.MethodGet, "/patroni"))
	xlog := map[string]any{"received_location": float64(optime), "replayed_location": float64(optime - 1024),
		"replayed_timestamp": "2025-01-02 03:04:06.000000+00:00", "paused": false}
	if mustJSON(t, got["xlog"]) != mustJSON(t, xlog) {
		t.Errorf("xlog = %v, want %v", got["xlog"], xlog)
	}
	if got["role"] != "replica" || got["replication_state"] != "streaming" || got["cluster_unlocked"] != true || got["pause"] != true {
		t.Errorf("body = %v", got)
	}
	if _, ok := got["tags"]; ok {
		t.Errorf("tags present without any tag set: %v", got["tags"])
	}
}

func TestPatroniCustomTags(t *testing.T) {
	snap := dcSnap(replicaSnap)()
	snap.Tags.NoLoadBalance = true
	got := decode(t, do(t, New(fakeSource{snap}, nil, nil).Handler(), http.MethodGet, "/patroni"))
	want := map[string]any{"dc": "east", "ssd": true, "rack": float64(3), "weight": 1.5, "noloadbalance": true}
	if mustJSON(t, got["tags"]) != mustJSON(t, want) {
		t.Errorf("tags = %v, want %v", got["tags"], want)
	}
}

func TestPatroniStopped(t *testing.T) {
	snap := primarySnap()
	snap.State, snap.Writable, snap.Cluster = cluster.StateStopped, false, nil
	rec := do(t, New(fakeSource{snap}, nil, nil).Handler(), http.MethodGet, "/patroni")
	got := decode(t, rec)
	if rec.Code != 200 || got["state"] != "stopped" || got["cluster_unlocked"] != true {
		t.Errorf("%d %v", rec.Code, got)
	}
	for _, k := range []string{"xlog", "timeline", "server_version", "postmaster_start_time"} {
		if _, ok := got[k]; ok {
			t.Errorf("stopped member reports %s", k)
		}
	}
	// Before the first snapshot.
	got = decode(t, do(t, New(new(Publisher), nil, nil).Handler(), http.MethodGet, "/patroni"))
	if got["state"] != "unknown" || got["role"] != "uninitialized" {
		t.Errorf("empty snapshot body %v", got)
	}
}

func TestLiveness(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Snapshot)
		want int
	}{
		{"fresh", func(s *Snapshot) {}, 200},
		{"stale primary", func(s *Snapshot) { s.LastLoop = time.Now().Add(-6 * time.Second) }, 503},
		{"stale primary paused", func(s *Snapshot) { s.LastLoop, s.Pause = time.Now().Add(-time.Hour), true }, 200},
		{"replica within 2*ttl", func(s *Snapshot) {
			s.Role, s.LastLoop = cluster.RoleReplica, time.Now().Add(-6*time.Second)
		}, 200},
		{"replica beyond 2*ttl", func(s *Snapshot) {
			s.Role, s.LastLoop = cluster.RoleReplica, time.Now().Add(-11*time.Second)
		}, 503},
		{"never looped", func(s *Snapshot) { s.LastLoop = time.Time{} }, 503},
	}
	for _, tt := range tests {
		snap := primarySnap()
		tt.mod(&snap)
		rec := do(t, New(fakeSource{snap}, nil, nil).Handler(), http.MethodGet, "/liveness")
		if rec.Code != tt.want || rec.Body.Len() != 0 {
			t.Errorf("%s: %d %q, want %d without body", tt.name, rec.Code, rec.Body, tt.want)
		}
	}
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name string
		snap func() Snapshot
		path string
		want int
	}{
		{"leader", primarySnap, "/readiness", 200},
		{"replica in sync", replicaSnap, "/readiness", 200},
		{"replica lagging beyond maximum_lag_on_failover", func() Snapshot {
			s := replicaSnap()
			s.ReplayLSN = optime - 2*mb
			return s
		}, "/readiness", 503},
		{"replica lagging, generous lag", func() Snapshot {
			s := replicaSnap()
			s.ReplayLSN = optime - 2*mb
			return s
		}, "/readiness?lag=4MB", 200},
		{"apply lag but write mode", func() Snapshot {
			s := replicaSnap()
			s.ReplayLSN = optime - 2*mb
			return s
		}, "/readiness?mode=write", 200},
		{"receive lag in write mode", func() Snapshot {
			s := replicaSnap()
			s.ReceiveLSN, s.ReplayLSN = optime-2*mb, optime-2*mb
			return s
		}, "/readiness?mode=write", 503},
		{"not streaming", func() Snapshot {
			s := replicaSnap()
			s.ReplicationState = cluster.ReplicationArchive
			return s
		}, "/readiness", 503},
		{"dcs unreachable", func() Snapshot {
			s := replicaSnap()
			s.DCSReachable = false
			return s
		}, "/readiness", 503},
		{"stopped", func() Snapshot {
			s := replicaSnap()
			s.State = cluster.StateStopped
			return s
		}, "/readiness", 503},
		{"bad mode", replicaSnap, "/readiness?mode=fast", 400},
		{"bad lag", replicaSnap, "/readiness?lag=-1", 400},
	}
	for _, tt := range tests {
		rec := do(t, New(fakeSource{tt.snap()}, nil, nil).Handler(), http.MethodGet, tt.path)
		if rec.Code != tt.want {
			t.Errorf("%s: GET %s = %d, want %d", tt.name, tt.path, rec.Code, tt.want)
		}
	}
}

func TestClusterView(t *testing.T) {
	c := testCluster()
	c.Config.Pause = true
	c.Failover = &cluster.Failover{Leader: "pg1", Member: "pg2", ScheduledAt: "2025-01-02T03:04:05+00:00"}
	srv := New(fakeSource{replicaSnap()}, &fakeReader{c: c}, nil)
	rec := do(t, srv.Handler(), http.MethodGet, "/cluster")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("code %d ct %q body %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var got struct {
		Members []map[string]any `json:"members"`
		Scope   string           `json:"scope"`
		Pause   bool             `json:"pause"`
		Sched   map[string]any   `json:"scheduled_switchover"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Scope != "demo" || !got.Pause || got.Sched["to"] != "pg2" || len(got.Members) != 3 {
		t.Fatalf("cluster = %s", rec.Body)
	}
	var names []string
	for _, m := range got.Members {
		names = append(names, m["name"].(string))
	}
	if strings.Join(names, ",") != "pg1,pg2,pg3" {
		t.Errorf("members not sorted: %v", names)
	}
	leader, noLSN, lagging := got.Members[0], got.Members[1], got.Members[2]
	if leader["role"] != "leader" || leader["state"] != "running" || leader["host"] != "10.0.0.1" ||
		leader["port"] != float64(5432) || leader["lag"] != nil || leader["lsn"] != nil {
		t.Errorf("leader = %v", leader)
	}
	if noLSN["role"] != "replica" || noLSN["lag"] != "unknown" || noLSN["lsn"] != "unknown" ||
		noLSN["host"] != "10.0.0.2" || noLSN["port"] != float64(5433) || noLSN["state"] != "running" {
		t.Errorf("pg2 = %v", noLSN)
	}
	wantLag := map[string]any{"state": "streaming", "lsn": "0/2E00000", "lag": float64(2 * mb),
		"receive_lsn": "0/2F00000", "receive_lag": float64(mb), "replay_lsn": "0/2E00000",
		"replay_lag": float64(2 * mb), "timeline": float64(2), "api_url": "http://10.0.0.3:8008/patroni"}
	for k, v := range wantLag {
		if lagging[k] != v {
			t.Errorf("pg3 %s = %v, want %v", k, lagging[k], v)
		}
	}
	if mustJSON(t, lagging["tags"]) != `{"nofailover":true}` {
		t.Errorf("pg3 tags = %v", lagging["tags"])
	}
}

func TestClusterLoadError(t *testing.T) {
	srv := New(fakeSource{primarySnap()}, &fakeReader{err: errors.New("etcd: connection refused")}, nil)
	start := time.Now()
	for _, path := range []string{"/cluster", "/history", "/config"} {
		rec := do(t, srv.Handler(), http.MethodGet, path)
		if rec.Code != 503 || !strings.Contains(decode(t, rec)["error"].(string), "connection refused") {
			t.Errorf("GET %s = %d %s, want 503 with error", path, rec.Code, rec.Body)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("failing DCS read took %v", d)
	}
}

func TestClusterBlockingReader(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		r := &fakeReader{c: testCluster(), block: true, ignoreCtx: ignore, release: make(chan struct{})}
		srv := New(fakeSource{primarySnap()}, r, nil)
		srv.LoadTimeout = 50 * time.Millisecond
		start := time.Now()
		rec := do(t, srv.Handler(), http.MethodGet, "/cluster")
		d := time.Since(start)
		close(r.release)
		if rec.Code != 503 || d > time.Second {
			t.Errorf("ignoreCtx=%v: %d after %v, want 503 after about 50ms", ignore, rec.Code, d)
		}
		if !strings.Contains(rec.Body.String(), "did not finish within 50ms") {
			t.Errorf("error body %s", rec.Body)
		}
	}
	if DefaultLoadTimeout != 2*time.Second || New(nil, nil, nil).loadTimeout() != 2*time.Second {
		t.Errorf("default load timeout is not 2s")
	}
}

func TestHistoryAndConfig(t *testing.T) {
	c := testCluster()
	srv := New(fakeSource{primarySnap()}, &fakeReader{c: c}, nil)
	rec := do(t, srv.Handler(), http.MethodGet, "/history")
	if want := `[[1,16777216,"no recovery target specified","2025-01-02T03:04:05.000000+00:00","pg1"]]`; rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("history = %d %s, want %s", rec.Code, rec.Body, want)
	}
	rec = do(t, srv.Handler(), http.MethodGet, "/config")
	if got := decode(t, rec); rec.Code != 200 || got["ttl"] != float64(5) || got["loop_wait"] != float64(1) {
		t.Errorf("config = %d %s", rec.Code, rec.Body)
	}
	c2 := testCluster()
	c2.Config, c2.History = nil, nil
	srv = New(fakeSource{primarySnap()}, &fakeReader{c: c2}, nil)
	if rec := do(t, srv.Handler(), http.MethodGet, "/config"); rec.Code != 502 {
		t.Errorf("config without DCS config = %d, want 502", rec.Code)
	}
	if rec := do(t, srv.Handler(), http.MethodGet, "/history"); rec.Code != 200 || rec.Body.String() != "[]" {
		t.Errorf("empty history = %d %s", rec.Code, rec.Body)
	}
	// Without a reader the snapshot's view is used.
	srv = New(fakeSource{primarySnap()}, nil, nil)
	if rec := do(t, srv.Handler(), http.MethodGet, "/cluster"); rec.Code != 200 {
		t.Errorf("cluster from snapshot = %d", rec.Code)
	}
}

func TestRoutingErrors(t *testing.T) {
	h := New(fakeSource{primarySnap()}, &fakeReader{c: testCluster()}, nil).Handler()
	rec := do(t, h, http.MethodGet, "/nope")
	if rec.Code != 404 || rec.Header().Get("Content-Type") != "application/json" || decode(t, rec)["error"] == nil {
		t.Errorf("unknown path = %d %s", rec.Code, rec.Body)
	}
	tests := []struct{ method, path, allow string }{
		{http.MethodPost, "/primary", "GET, HEAD, OPTIONS"},
		{http.MethodDelete, "/replica", "GET, HEAD, OPTIONS"},
		{http.MethodPut, "/patroni", "GET, HEAD, OPTIONS"},
		{http.MethodPost, "/liveness", "GET, HEAD, OPTIONS"},
		{http.MethodPost, "/config", "GET, HEAD, PATCH, PUT"},
		{http.MethodGet, "/switchover", "POST, DELETE"},
		{http.MethodPut, "/failover", "POST"},
		{http.MethodGet, "/reload", "POST"},
		{http.MethodOptions, "/cluster", "GET, HEAD"},
	}
	for _, tt := range tests {
		rec := do(t, h, tt.method, tt.path)
		if rec.Code != 405 || rec.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s = %d Allow %q, want 405 Allow %q", tt.method, tt.path, rec.Code, rec.Header().Get("Allow"), tt.allow)
		}
	}
	if rec := do(t, h, http.MethodHead, "/cluster"); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD /cluster = %d %q", rec.Code, rec.Body)
	}
	if rec := do(t, h, http.MethodOptions, "/patroni"); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("OPTIONS /patroni = %d %q", rec.Code, rec.Body)
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"100B", 100, false},
		{"16kB", 16 << 10, false},
		{"16KB", 16 << 10, false},
		{"64MB", 64 << 20, false},
		{"64mb", 64 << 20, false},
		{"1GB", 1 << 30, false},
		{"2TB", 2 << 40, false},
		{"1.5MB", 3 << 19, false},
		{" 10 MB ", 10 << 20, false},
		{"", 0, true},
		{"MB", 0, true},
		{"-1", 0, true},
		{"10XB", 0, true},
		{"1e6", 0, true},
		{"1.2.3MB", 0, true},
		{"99999999999TB", 0, true},
		{"9223372036854775808", 0, true},
	}
	for _, tt := range tests {
		got, err := parseBytes(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestPublisher(t *testing.T) {
	var p Publisher
	if s := p.Snapshot(); !s.Taken.IsZero() {
		t.Fatalf("zero Publisher snapshot = %+v", s)
	}
	h := New(&p, nil, nil).Handler()
	if rec := do(t, h, http.MethodGet, "/primary"); rec.Code != 503 {
		t.Errorf("before publish /primary = %d", rec.Code)
	}
	p.Publish(primarySnap())
	if rec := do(t, h, http.MethodGet, "/primary"); rec.Code != 200 || decode(t, rec)["role"] != "primary" {
		t.Errorf("after publish /primary = %d %s", rec.Code, rec.Body)
	}
	// A new snapshot replaces the cached body.
	s := primarySnap()
	s.Writable, s.Reason = false, "postmaster died"
	p.Publish(s)
	rec := do(t, h, http.MethodGet, "/primary")
	if rec.Code != 503 || decode(t, rec)["regent"].(map[string]any)["reason"] != "postmaster died" {
		t.Errorf("after second publish /primary = %d %s", rec.Code, rec.Body)
	}
	if p.Snapshot().Reason != "postmaster died" {
		t.Errorf("Snapshot() = %q", p.Snapshot().Reason)
	}
	// Concurrent publish and serve (run with -race).
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 200 {
			p.Publish(primarySnap())
		}
	}()
	go func() {
		defer wg.Done()
		for range 200 {
			do(t, h, http.MethodGet, "/primary")
		}
	}()
	wg.Wait()
}

func TestListenAndServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Listening on a taken address fails with a helpful error.
	srv := New(fakeSource{primarySnap()}, nil, nil)
	err = srv.ListenAndServe(context.Background(), ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "restapi.listen") {
		t.Errorf("ListenAndServe on a taken address: %v", err)
	}
	// Serving, then stopping when ctx ends.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, ln2) }()
	resp, err := http.Get("http://" + ln2.Addr().String() + "/primary")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /primary over TCP = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancel: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("serve did not return within 3s of ctx end")
	}
}

// benchWriter is a minimal ResponseWriter so the benchmark measures the
// handler rather than the recorder.
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }
func (w *benchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

func BenchmarkPrimary(b *testing.B) {
	var p Publisher
	p.Publish(primarySnap())
	h := New(&p, nil, nil).Handler()
	req := httptest.NewRequest(http.MethodGet, "/primary", nil)
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("code %d", w.code)
		}
	}
}

func TestEvents(t *testing.T) {
	c := testCluster()
	c.Events = []cluster.Event{{Time: "2026-11-22T01:00:00Z", Member: "pg2", Kind: cluster.EventPromotionRefused,
		Reason: "no leader, but not promoting automatically: m3 may hold commits this member lacks", Timeline: 3, LSN: 42}}
	srv := New(fakeSource{primarySnap()}, &fakeReader{c: c}, nil)
	rec := do(t, srv.Handler(), http.MethodGet, "/events")
	want := `[{"time":"2026-11-22T01:00:00Z","member":"pg2","kind":"promotion_refused","reason":"no leader, but not promoting automatically: m3 may hold commits this member lacks","timeline":3,"lsn":42}]`
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want {
		t.Errorf("GET /events = %d %s, want %s", rec.Code, rec.Body, want)
	}
	srv = New(fakeSource{primarySnap()}, &fakeReader{c: testCluster()}, nil)
	if rec := do(t, srv.Handler(), http.MethodGet, "/events"); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("no events = %d %s, want []", rec.Code, rec.Body)
	}
}
