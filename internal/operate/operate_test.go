package operate

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

func i64(v int64) *int64 { return &v }
func intp(v int) *int    { return &v }

const (
	opt = int64(0x5000000)
	mb  = int64(1 << 20)
)

func replica(name string, lsn int64) *cluster.Member {
	return &cluster.Member{Name: name, State: cluster.StateRunning, Role: cluster.RoleReplica,
		ReplicationState: cluster.ReplicationStreaming, XLogLocation: i64(lsn)}
}

// view is a healthy three-member cluster led by pg1.
func view() *cluster.Cluster {
	cfg := cluster.DefaultDynamicConfig()
	return &cluster.Cluster{
		Scope:  "demo",
		Config: &cfg,
		Leader: &cluster.Leader{Name: "pg1"},
		Status: cluster.Status{Optime: opt},
		Members: map[string]*cluster.Member{
			"pg1": {Name: "pg1", State: cluster.StateRunning, Role: cluster.RolePrimary, XLogLocation: i64(opt)},
			"pg2": replica("pg2", opt-100),
			"pg3": replica("pg3", opt-200),
		},
	}
}

type errKind int

const (
	ok errKind = iota
	bad
	pre
)

func kindOf(err error) errKind {
	var b *BadRequestError
	var p *PreconditionError
	switch {
	case err == nil:
		return ok
	case errors.As(err, &b):
		return bad
	case errors.As(err, &p):
		return pre
	}
	return -1
}

func TestCheckSwitchover(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	later := now.Add(time.Hour)
	tests := []struct {
		name      string
		mod       func(c *cluster.Cluster)
		leader    string
		candidate string
		at        time.Time
		want      errKind
		msg       string
		failover  cluster.Failover
	}{
		{name: "to a candidate", leader: "pg1", candidate: "pg2", failover: cluster.Failover{Leader: "pg1", Member: "pg2"}},
		{name: "without candidate", leader: "pg1", failover: cluster.Failover{Leader: "pg1"}},
		{name: "scheduled", leader: "pg1", candidate: "pg3", at: later,
			failover: cluster.Failover{Leader: "pg1", Member: "pg3", ScheduledAt: "2026-01-02T04:04:05Z"}},
		{name: "scheduled keeps the zone", leader: "pg1", at: later.In(time.FixedZone("X", 3600)),
			failover: cluster.Failover{Leader: "pg1", ScheduledAt: "2026-01-02T05:04:05+01:00"}},
		{name: "no leader name", leader: "", candidate: "pg2", want: bad, msg: "leader name is required"},
		{name: "candidate is leader", leader: "pg1", candidate: "pg1", want: pre, msg: `candidate "pg1" is already the leader`},
		{name: "wrong leader", leader: "pg2", candidate: "pg3", want: pre, msg: "leader name does not match: the leader is pg1"},
		{name: "leaderless", mod: func(c *cluster.Cluster) { c.Leader = nil }, leader: "pg1", want: pre, msg: "cluster has no leader"},
		{name: "unknown candidate", leader: "pg1", candidate: "pgx", want: pre, msg: `candidate "pgx" does not exist`},
		{name: "candidate stopped", mod: func(c *cluster.Cluster) { c.Members["pg2"].State = cluster.StateStopped },
			leader: "pg1", candidate: "pg2", want: pre, msg: `candidate "pg2" is not running (state "stopped")`},
		{name: "candidate not streaming", mod: func(c *cluster.Cluster) { c.Members["pg2"].ReplicationState = cluster.ReplicationArchive },
			leader: "pg1", candidate: "pg2", want: pre, msg: `candidate "pg2" is not streaming`},
		{name: "candidate nofailover", mod: func(c *cluster.Cluster) { c.Members["pg2"].Tags = &cluster.Tags{NoFailover: true} },
			leader: "pg1", candidate: "pg2", want: pre, msg: `candidate "pg2" has tag nofailover`},
		{name: "candidate priority 0", mod: func(c *cluster.Cluster) { c.Members["pg2"].Tags = &cluster.Tags{FailoverPriority: intp(0)} },
			leader: "pg1", candidate: "pg2", want: pre, msg: `candidate "pg2" has tag failover_priority 0`},
		{name: "candidate without position", mod: func(c *cluster.Cluster) { c.Members["pg2"].XLogLocation = nil },
			leader: "pg1", candidate: "pg2", want: pre, msg: "has not reported its WAL position"},
		{name: "candidate lags", mod: func(c *cluster.Cluster) { c.Members["pg2"].XLogLocation = i64(opt - 2*mb) },
			leader: "pg1", candidate: "pg2", want: pre, msg: `candidate "pg2" lags 2097152 bytes behind (maximum_lag_on_failover 1048576)`},
		{name: "lag measured against the leader's report", mod: func(c *cluster.Cluster) {
			c.Status.Optime = 0
			c.Members["pg1"].XLogLocation = i64(opt + 2*mb)
		}, leader: "pg1", candidate: "pg2", want: pre, msg: "lags"},
		// The figures of the failed TestOperatorControls run: pg2's key is
		// from its first loop after a clone (its WAL receiver had just
		// started at 0/3000000), the optime from the leader's loop after
		// another member's base backup switched WAL segments; the leader
		// saw pg2 flush everything when it wrote that optime.
		{name: "caught up per the leader's slot although the key is a segment behind", mod: func(c *cluster.Cluster) {
			c.Status = cluster.Status{Optime: 0x40222E8, Slots: map[string]int64{"pg2": 0x40222E8}}
			c.Members["pg1"].XLogLocation = i64(0x40222E8)
			c.Members["pg2"].XLogLocation = i64(0x3000000)
		}, leader: "pg1", candidate: "pg2", failover: cluster.Failover{Leader: "pg1", Member: "pg2"}},
		{name: "a slot behind the key does not hide the key", mod: func(c *cluster.Cluster) {
			c.Status.Slots = map[string]int64{"pg2": opt - 5*mb}
		}, leader: "pg1", candidate: "pg2", failover: cluster.Failover{Leader: "pg1", Member: "pg2"}},
		{name: "lagging per key and slot", mod: func(c *cluster.Cluster) {
			c.Status.Slots = map[string]int64{"pg2": opt - 3*mb}
			c.Members["pg2"].XLogLocation = i64(opt - 4*mb)
		}, leader: "pg1", candidate: "pg2", want: pre, msg: `candidate "pg2" lags 3145728 bytes behind`},
		{name: "the slot of another member does not count", mod: func(c *cluster.Cluster) {
			c.Status.Slots = map[string]int64{"pg3": opt}
			c.Members["pg2"].XLogLocation = i64(opt - 2*mb)
		}, leader: "pg1", candidate: "pg2", want: pre, msg: "lags"},
		{name: "lag within the limit", mod: func(c *cluster.Cluster) { c.Members["pg2"].XLogLocation = i64(opt - mb) },
			leader: "pg1", candidate: "pg2", failover: cluster.Failover{Leader: "pg1", Member: "pg2"}},
		{name: "only the leader", mod: func(c *cluster.Cluster) { delete(c.Members, "pg2"); delete(c.Members, "pg3") },
			leader: "pg1", want: pre, msg: "cluster does not have members except leader"},
		{name: "no eligible replica", mod: func(c *cluster.Cluster) {
			c.Members["pg2"].Tags = &cluster.Tags{NoFailover: true}
			c.Members["pg3"].State = cluster.StateStarting
		}, leader: "pg1", want: pre, msg: "cluster has no eligible replica"},
		{name: "one eligible replica suffices", mod: func(c *cluster.Cluster) { c.Members["pg2"].Tags = &cluster.Tags{NoFailover: true} },
			leader: "pg1", failover: cluster.Failover{Leader: "pg1"}},
		{name: "schedule in the past", leader: "pg1", candidate: "pg2", at: now.Add(-time.Second), want: bad, msg: "is not in the future"},
		{name: "schedule now", leader: "pg1", candidate: "pg2", at: now, want: bad, msg: "is not in the future"},
		{name: "schedule while paused", mod: func(c *cluster.Cluster) { c.Config.Pause = true },
			leader: "pg1", candidate: "pg2", at: later, want: bad, msg: "cannot schedule a switchover while paused"},
		{name: "paused without candidate", mod: func(c *cluster.Cluster) { c.Config.Pause = true },
			leader: "pg1", want: bad, msg: "only to a specific candidate while paused"},
		{name: "paused with candidate", mod: func(c *cluster.Cluster) { c.Config.Pause = true },
			leader: "pg1", candidate: "pg2", failover: cluster.Failover{Leader: "pg1", Member: "pg2"}},
		{name: "no config uses default lag", mod: func(c *cluster.Cluster) {
			c.Config = nil
			c.Members["pg2"].XLogLocation = i64(opt - mb - 1)
		}, leader: "pg1", candidate: "pg2", want: pre, msg: "maximum_lag_on_failover 1048576"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := view()
			if tc.mod != nil {
				tc.mod(c)
			}
			f, err := CheckSwitchover(c, tc.leader, tc.candidate, tc.at, now)
			if got := kindOf(err); got != tc.want {
				t.Fatalf("error = %v (kind %d), want kind %d", err, got, tc.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error %q does not contain %q", err, tc.msg)
				}
				return
			}
			if f != tc.failover {
				t.Errorf("failover = %+v, want %+v", f, tc.failover)
			}
		})
	}
}

func TestBestCandidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *cluster.Cluster)
		want string
	}{
		{"most WAL", nil, "pg2"},
		{"ineligible skipped", func(c *cluster.Cluster) { c.Members["pg2"].Tags = &cluster.Tags{NoFailover: true} }, "pg3"},
		{"tie by priority", func(c *cluster.Cluster) {
			c.Members["pg3"].XLogLocation = i64(opt - 100)
			c.Members["pg3"].Tags = &cluster.Tags{FailoverPriority: intp(5)}
		}, "pg3"},
		{"tie by name", func(c *cluster.Cluster) { c.Members["pg3"].XLogLocation = i64(opt - 100) }, "pg2"},
		{"leader never", func(c *cluster.Cluster) {
			c.Members["pg1"].Role = cluster.RoleReplica
			c.Members["pg1"].ReplicationState = cluster.ReplicationStreaming
		}, "pg2"},
		{"none", func(c *cluster.Cluster) { delete(c.Members, "pg2"); delete(c.Members, "pg3") }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := view()
			if tc.mod != nil {
				tc.mod(c)
			}
			if got := BestCandidate(c); got != tc.want {
				t.Errorf("BestCandidate = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckFailover(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(c *cluster.Cluster)
		candidate string
		want      errKind
		msg       string
		loss      int64
	}{
		{name: "healthy candidate", candidate: "pg2", loss: 100},
		{name: "lagging candidate allowed", mod: func(c *cluster.Cluster) { c.Members["pg3"].XLogLocation = i64(opt - 10*mb) },
			candidate: "pg3", loss: 10 * mb},
		{name: "not streaming allowed", mod: func(c *cluster.Cluster) { c.Members["pg3"].ReplicationState = "" },
			candidate: "pg3", loss: 200},
		{name: "ahead of optime", mod: func(c *cluster.Cluster) { c.Leader = nil; c.Members["pg3"].XLogLocation = i64(opt + 5) },
			candidate: "pg3", loss: 0},
		{name: "unknown position", mod: func(c *cluster.Cluster) { c.Members["pg3"].XLogLocation = nil },
			candidate: "pg3", loss: -1},
		{name: "no candidate", candidate: "", want: bad, msg: "only to a specific candidate"},
		{name: "not a member", candidate: "pgx", want: pre, msg: `candidate "pgx" does not exist`},
		{name: "the leader", candidate: "pg1", want: pre, msg: `candidate "pg1" is already the leader`},
		{name: "not running", mod: func(c *cluster.Cluster) { c.Members["pg2"].State = cluster.StateCrashed },
			candidate: "pg2", want: pre, msg: `candidate "pg2" is not running (state "crashed")`},
		{name: "nofailover", mod: func(c *cluster.Cluster) { c.Members["pg2"].Tags = &cluster.Tags{NoFailover: true} },
			candidate: "pg2", want: pre, msg: "nofailover"},
		{name: "priority 0", mod: func(c *cluster.Cluster) { c.Members["pg2"].Tags = &cluster.Tags{FailoverPriority: intp(0)} },
			candidate: "pg2", want: pre, msg: "failover_priority 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := view()
			if tc.mod != nil {
				tc.mod(c)
			}
			f, loss, err := CheckFailover(c, tc.candidate)
			if got := kindOf(err); got != tc.want {
				t.Fatalf("error = %v (kind %d), want kind %d", err, got, tc.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error %q does not contain %q", err, tc.msg)
				}
				return
			}
			if f != (cluster.Failover{Member: tc.candidate}) || loss != tc.loss {
				t.Errorf("= %+v, %d; want member %s, loss %d", f, loss, tc.candidate, tc.loss)
			}
		})
	}
}

func TestPendingRestartParams(t *testing.T) {
	cfg := func(params map[string]string) cluster.DynamicConfig {
		c := cluster.DefaultDynamicConfig()
		c.PostgreSQL.Parameters = params
		return c
	}
	tests := []struct {
		name     string
		old, new map[string]string
		want     []string
	}{
		{"nothing", nil, nil, nil},
		{"reloadable only", map[string]string{"work_mem": "4MB"}, map[string]string{"work_mem": "8MB", "max_wal_size": "2GB"}, nil},
		{"changed, added and removed", map[string]string{"max_connections": "100", "wal_level": "replica", "shared_buffers": "1GB"},
			map[string]string{"max_connections": "200", "shared_buffers": "1GB", "max_wal_senders": "10"},
			[]string{"max_connections", "max_wal_senders", "wal_level"}},
		{"case-insensitive", map[string]string{"Shared_Buffers": "1GB"}, map[string]string{"shared_buffers": "1GB"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := PendingRestartParams(cfg(tc.old), cfg(tc.new)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("= %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSwitchoverToAsynchronousReplicaInSyncMode(t *testing.T) {
	c := &cluster.Cluster{
		Leader: &cluster.Leader{Name: "a"},
		Config: &cluster.DynamicConfig{SynchronousMode: cluster.SyncOn, MaximumLagOnFailover: 1 << 20},
		Sync:   &cluster.SyncState{Leader: "a", Members: []string{"b"}},
		Members: map[string]*cluster.Member{
			"a": {Name: "a", Role: cluster.RolePrimary, State: cluster.StateRunning, XLogLocation: ptr64(100)},
			"b": {Name: "b", Role: cluster.RoleReplica, State: cluster.StateRunning, ReplicationState: cluster.ReplicationStreaming, XLogLocation: ptr64(100)},
			"c": {Name: "c", Role: cluster.RoleReplica, State: cluster.StateRunning, ReplicationState: cluster.ReplicationStreaming, XLogLocation: ptr64(100)},
		},
	}
	_, err := CheckSwitchover(c, "a", "c", time.Time{}, time.Now())
	var pe *PreconditionError
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "not a synchronous standby") {
		t.Fatalf("switchover to an asynchronous replica in sync mode: %v", err)
	}
	if _, err := CheckSwitchover(c, "a", "b", time.Time{}, time.Now()); err != nil {
		t.Fatalf("switchover to the synchronous standby refused: %v", err)
	}
}

func ptr64(v int64) *int64 { return &v }
