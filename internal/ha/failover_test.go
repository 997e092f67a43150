package ha

import (
	"reflect"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

func lsn(v int64) *int64 { return &v }

// switchoverWorld has leader n1 and streaming replicas n2, n3 that are up
// to date, plus a failover key built by f.
func switchoverWorld(self string, f *cluster.Failover) Observation {
	w := newWorld(self)
	return w.with(func(o *Observation) {
		o.Wall = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
		for _, n := range []string{"n2", "n3"} {
			o.Cluster.Members[n] = &cluster.Member{Name: n, Role: cluster.RoleReplica, State: cluster.StateRunning,
				ReplicationState: cluster.ReplicationStreaming, Timeline: 1, XLogLocation: lsn(1000)}
		}
		o.Cluster.Failover = f
	})
}

func TestDecideFailoverKey(t *testing.T) {
	tests := []struct {
		name   string
		obs    Observation
		want   []Kind
		target string
		reason string
	}{
		{
			name: "leader hands over to the named candidate",
			obs:  switchoverWorld("n1", &cluster.Failover{Leader: "n1", Member: "n3"}),
			want: []Kind{HandOver}, target: "n3",
		},
		{
			name: "leader picks the best candidate when none is named",
			obs:  switchoverWorld("n1", &cluster.Failover{Leader: "n1"}),
			want: []Kind{HandOver}, target: "n2",
		},
		{
			name: "scheduled switchover waits for its time",
			obs:  switchoverWorld("n1", &cluster.Failover{Leader: "n1", Member: "n2", ScheduledAt: "2026-11-21T12:05:00Z"}),
			want: []Kind{LeaderHousekeeping}, reason: "scheduled",
		},
		{
			name: "scheduled switchover runs once its time has come",
			obs:  switchoverWorld("n1", &cluster.Failover{Leader: "n1", Member: "n2", ScheduledAt: "2026-11-21T11:59:00Z"}),
			want: []Kind{HandOver}, target: "n2",
		},
		{
			name: "lagging candidate: the switchover is cancelled, leadership kept",
			obs: func() Observation {
				o := switchoverWorld("n1", &cluster.Failover{Leader: "n1", Member: "n2"})
				o.Cluster.Members["n2"].XLogLocation = lsn(1000 - o.Config.MaximumLagOnFailover - 1)
				o.PG.WriteLSN = 1000
				return o
			}(),
			want: []Kind{ClearFailover, LeaderHousekeeping}, reason: "lags",
		},
		{
			// The figures of the failed TestOperatorControls run: n2's key
			// is from its first loop after a clone, taken as its WAL
			// receiver started at 0/3000000; this leader's observation
			// shows n2 has flushed all its WAL since.
			name: "candidate caught up per pg_stat_replication, key a segment behind: handed over",
			obs: func() Observation {
				o := switchoverWorld("n1", &cluster.Failover{Leader: "n1", Member: "n2"})
				o.Cluster.Members["n2"].XLogLocation = lsn(0x3000000)
				o.PG.WriteLSN = 0x40222E8
				o.PG.StandbyFlush = map[string]int64{"n2": 0x40222E8}
				return o
			}(),
			want: []Kind{HandOver}, target: "n2",
		},
		{
			name: "candidate lagging per key and pg_stat_replication: cancelled",
			obs: func() Observation {
				o := switchoverWorld("n1", &cluster.Failover{Leader: "n1", Member: "n2"})
				o.Cluster.Members["n2"].XLogLocation = lsn(0x3000000)
				o.PG.WriteLSN = 0x40222E8
				o.PG.StandbyFlush = map[string]int64{"n2": 0x3000000, "n3": 0x40222E8}
				return o
			}(),
			want: []Kind{ClearFailover, LeaderHousekeeping}, reason: "lags 16917224 bytes",
		},
		{
			name: "candidate that does not stream: cancelled",
			obs: func() Observation {
				o := switchoverWorld("n1", &cluster.Failover{Leader: "n1", Member: "n2"})
				o.Cluster.Members["n2"].ReplicationState = cluster.ReplicationArchive
				return o
			}(),
			want: []Kind{ClearFailover, LeaderHousekeeping}, reason: "not a streaming replica",
		},
		{
			name: "new leader clears the completed request",
			obs: func() Observation {
				o := switchoverWorld("n1", &cluster.Failover{Leader: "n2", Member: "n1"})
				return o
			}(),
			want: []Kind{ClearFailover, LeaderHousekeeping},
		},
		{
			name: "the candidate races without asking peers",
			obs: func() Observation {
				o := switchoverWorld("n2", &cluster.Failover{Leader: "n1", Member: "n2"})
				noLeader(&o)
				return o
			}(),
			want: []Kind{AcquireLeader, Promote}, reason: "switchover",
		},
		{
			name: "other replicas wait for the candidate",
			obs: func() Observation {
				o := switchoverWorld("n3", &cluster.Failover{Leader: "n1", Member: "n2"})
				noLeader(&o)
				return o
			}(),
			want: []Kind{Wait}, reason: "switchover to n2 in progress",
		},
		{
			name: "other replicas race normally when the candidate is gone",
			obs: func() Observation {
				o := switchoverWorld("n3", &cluster.Failover{Leader: "n1", Member: "n2"})
				noLeader(&o)
				delete(o.Cluster.Members, "n2")
				return o
			}(),
			want: []Kind{ProbePeers},
		},
		{
			name: "manual failover promotes a lagging candidate",
			obs: func() Observation {
				o := switchoverWorld("n2", &cluster.Failover{Member: "n2"})
				noLeader(&o)
				o.Cluster.Status.Optime = 1000 + 10*o.Config.MaximumLagOnFailover
				return o
			}(),
			want: []Kind{AcquireLeader, Promote}, reason: "failover",
		},
		{
			name: "a nofailover candidate refuses",
			obs: func() Observation {
				o := switchoverWorld("n2", &cluster.Failover{Member: "n2"})
				noLeader(&o)
				o.Self.Tags.NoFailover = true
				return o
			}(),
			want: []Kind{Wait}, reason: "nofailover",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decideAs(t, tt.obs, tt.want, tt.target, tt.reason)
		})
	}
}

func TestPauseSuspendsAutomaticActions(t *testing.T) {
	renew := cluster.DefaultDynamicConfig().RenewDeadline()
	paused := func(o *Observation) { o.Config.Pause = true }
	cases := []struct {
		name string
		obs  Observation
		want Kind
	}{
		{"leader past its deadline is not fenced", newWorld("n1").with(func(o *Observation) {
			paused(o)
			o.Lease.ConfirmedSentAt = t0.Add(-2 * renew)
		}), Wait},
		{"crashed leader is not restarted", newWorld("n1").with(func(o *Observation) {
			paused(o)
			o.PG.Running, o.PG.Answered = false, false
		}), Wait},
		{"stopped replica is not started", newWorld("n2").with(func(o *Observation) {
			paused(o)
			o.PG.Running, o.PG.Answered = false, false
		}), Wait},
		{"replica does not race", newWorld("n2").with(func(o *Observation) {
			paused(o)
			noLeader(o)
		}), Wait},
		{"primary without a key does not take it", newWorld("n1").with(func(o *Observation) {
			paused(o)
			noLeader(o)
		}), Wait},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.obs)
			if !d.Is(tc.want) || len(d.Actions) != 1 {
				t.Fatalf("Decide() = %s (%s), want only %v", d.Summary(), d.Reason, tc.want)
			}
		})
	}
	// A manual failover while paused still demotes the old primary: the
	// operator's choice must not leave two writable primaries.
	d := Decide(newWorld("n1").with(func(o *Observation) {
		paused(o)
		o.Cluster.Leader = &cluster.Leader{Name: "n2"}
		o.Lease.KeyOnMyLease = false
	}))
	if !d.Is(Demote) {
		t.Fatalf("paused primary whose key another member holds: %s (%s), want demote", d.Summary(), d.Reason)
	}
}

func TestLeaderStatus(t *testing.T) {
	o := switchoverWorld("n1", nil)
	o.PG.WriteLSN = 0x40222E8
	o.PG.StandbyFlush = map[string]int64{
		"n2":            0x40222E8,
		"n3":            0, // connected, no feedback yet
		"n1":            0x40222E8,
		"pg_receivewal": 0x4000000, // not a member
	}
	o.Cluster.Members["Big-Name"] = &cluster.Member{Name: "Big-Name"}
	o.PG.StandbyFlush["Big-Name"] = 0x4000000
	got := LeaderStatus(o)
	want := cluster.Status{Optime: 0x40222E8, Slots: map[string]int64{"n2": 0x40222E8, "big_name": 0x4000000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LeaderStatus() = %+v, want %+v", got, want)
	}
	o.PG.StandbyFlush = nil
	if got := LeaderStatus(o); got.Slots != nil || got.Optime != 0x40222E8 {
		t.Errorf("without standbys: %+v", got)
	}
}
