package ha

import (
	"slices"
	"strings"
	"testing"

	"github.com/regent-ha/regent/internal/cluster"
)

// syncWorld is leader n1 in synchronous mode with streaming replicas n2
// (more WAL) and n3.
func syncWorld(self string, f func(o *Observation)) Observation {
	o := switchoverWorld(self, nil)
	o.Config.SynchronousMode = cluster.SyncOn
	o.Cluster.Members["n2"].XLogLocation = lsn(1000)
	o.Cluster.Members["n3"].XLogLocation = lsn(990)
	if f != nil {
		f(&o)
	}
	return o
}

func TestDecideSync(t *testing.T) {
	tests := []struct {
		name   string
		obs    Observation
		want   Kind
		names  []string
		reason string
	}{
		{
			name: "a new leader claims the sync key first, empty",
			obs:  syncWorld("n1", nil),
			want: PublishSync, names: nil,
		},
		{
			name: "then PostgreSQL is told to wait for the least lagging replica",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
			}),
			want: SetSyncStandbys, names: []string{"n2"},
		},
		{
			name: "published once PostgreSQL reports it synchronous and it holds every earlier commit",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.PG.SyncStandbyNames = []string{"n2"}
				o.PG.SyncReported = []string{"n2"}
				o.PG.SyncSetLSN = 900
				o.PG.StandbyFlush = map[string]int64{"n2": 900}
			}),
			want: PublishSync, names: []string{"n2"},
		},
		{
			name: "not published before it caught up with commits acknowledged without it",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.PG.SyncStandbyNames = []string{"n2"}
				o.PG.SyncReported = []string{"n2"}
				o.PG.SyncSetLSN = 900
				o.PG.StandbyFlush = map[string]int64{"n2": 899}
			}),
			want: LeaderHousekeeping,
		},
		{
			name: "not published while the synchronous_standby_names change may still be taking effect",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.PG.SyncStandbyNames = []string{"n2"}
				o.PG.SyncReported = []string{"n2"}
				o.PG.StandbyFlush = map[string]int64{"n2": 5000}
			}),
			want: LeaderHousekeeping,
		},
		{
			name: "not published while PostgreSQL does not report it",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.PG.SyncStandbyNames = []string{"n2"}
			}),
			want: LeaderHousekeeping,
		},
		{
			name: "steady state",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: []string{"n2"}}
				o.PG.SyncStandbyNames = []string{"n2"}
				o.PG.SyncReported = []string{"n2"}
			}),
			want: LeaderHousekeeping,
		},
		{
			name: "a synchronous standby that stops streaming leaves the key before synchronous_standby_names",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: []string{"n2"}}
				o.PG.SyncStandbyNames = []string{"n2"}
				o.Cluster.Members["n2"].ReplicationState = cluster.ReplicationArchive
			}),
			want: PublishSync, names: nil, reason: "dropping [n2]",
		},
		{
			name: "after unpublishing, synchronous_standby_names moves to the other replica",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.PG.SyncStandbyNames = []string{"n2"}
				o.Cluster.Members["n2"].ReplicationState = cluster.ReplicationArchive
			}),
			want: SetSyncStandbys, names: []string{"n3"},
		},
		{
			name: "a current synchronous standby is kept even if another has more WAL",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: []string{"n3"}}
				o.PG.SyncStandbyNames = []string{"n3"}
				o.PG.SyncReported = []string{"n3"}
			}),
			want: LeaderHousekeeping,
		},
		{
			name: "nosync replicas are never chosen",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.Cluster.Members["n2"].Tags = &cluster.Tags{NoSync: true}
			}),
			want: SetSyncStandbys, names: []string{"n3"},
		},
		{
			name: "a higher sync_priority wins over more WAL",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.Cluster.Members["n3"].Tags = &cluster.Tags{SyncPriority: intp(5)}
			}),
			want: SetSyncStandbys, names: []string{"n3"},
		},
		{
			name: "sync_priority 0 is never chosen, like nosync",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.Cluster.Members["n2"].Tags = &cluster.Tags{SyncPriority: intp(0)}
			}),
			want: SetSyncStandbys, names: []string{"n3"},
		},
		{
			name: "a nostream replica is never a synchronous candidate",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.Cluster.Members["n2"].Tags = &cluster.Tags{NoStream: true, SyncPriority: intp(9)}
			}),
			want: SetSyncStandbys, names: []string{"n3"},
		},
		{
			name: "nosync wins over a positive sync_priority",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.Cluster.Members["n2"].Tags = &cluster.Tags{NoSync: true, SyncPriority: intp(9)}
			}),
			want: SetSyncStandbys, names: []string{"n3"},
		},
		{
			name: "a replica of higher sync_priority displaces the current synchronous standby",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: []string{"n2"}}
				o.PG.SyncStandbyNames = []string{"n2"}
				o.PG.SyncReported = []string{"n2"}
				o.Cluster.Members["n3"].Tags = &cluster.Tags{SyncPriority: intp(2)}
			}),
			want: PublishSync, names: nil, reason: "dropping [n2]",
		},
		{
			name: "among equal sync_priority the current synchronous standby is kept",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: []string{"n3"}}
				o.PG.SyncStandbyNames = []string{"n3"}
				o.PG.SyncReported = []string{"n3"}
				o.Cluster.Members["n2"].Tags = &cluster.Tags{SyncPriority: intp(2)}
				o.Cluster.Members["n3"].Tags = &cluster.Tags{SyncPriority: intp(2)}
			}),
			want: LeaderHousekeeping,
		},
		{
			name: "strict mode with no candidate waits for any standby",
			obs: syncWorld("n1", func(o *Observation) {
				o.Config.SynchronousModeStrict = true
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				delete(o.Cluster.Members, "n2")
				delete(o.Cluster.Members, "n3")
			}),
			want: SetSyncStandbys, names: []string{"*"}, reason: "strict",
		},
		{
			name: "non-strict with no candidate runs asynchronously",
			obs: syncWorld("n1", func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
				o.PG.SyncStandbyNames = []string{"n2"}
				delete(o.Cluster.Members, "n2")
				delete(o.Cluster.Members, "n3")
			}),
			want: SetSyncStandbys, names: nil, reason: "asynchronously",
		},
		{
			name: "two synchronous standbys when synchronous_node_count is 2",
			obs: syncWorld("n1", func(o *Observation) {
				o.Config.SynchronousNodeCount = 2
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1"}
			}),
			want: SetSyncStandbys, names: []string{"n2", "n3"},
		},
		{
			name: "synchronous mode turned off: the key goes first",
			obs: syncWorld("n1", func(o *Observation) {
				o.Config.SynchronousMode = cluster.SyncOff
				o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: []string{"n2"}}
				o.PG.SyncStandbyNames = []string{"n2"}
			}),
			want: PublishSync, names: nil,
		},
		{
			name: "synchronous mode off: then synchronous_standby_names is cleared",
			obs: syncWorld("n1", func(o *Observation) {
				o.Config.SynchronousMode = cluster.SyncOff
				o.PG.SyncStandbyNames = []string{"n2"}
			}),
			want: SetSyncStandbys, names: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSyncDecision(t, Decide(tt.obs), tt.want, tt.names, tt.reason)
		})
	}
}

func TestSyncModePromotion(t *testing.T) {
	leaderless := func(self string, sync []string) Observation {
		o := syncWorld(self, nil)
		noLeader(&o)
		o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: sync}
		o.PeersProbed = true
		o.Peers = []Peer{
			{Name: "n2", Reachable: true, Role: "replica", State: "running", LSN: 1000, Priority: 1},
			{Name: "n3", Reachable: true, Role: "replica", State: "running", LSN: 1000, Priority: 1},
		}
		return o
	}
	if d := Decide(leaderless("n3", []string{"n2"})); !d.Is(Wait) || !strings.Contains(d.Reason, "not a published synchronous standby") {
		t.Fatalf("asynchronous replica in sync mode: %s (%s), want a refusal", d.Summary(), d.Reason)
	}
	if d := Decide(leaderless("n2", []string{"n2"})); !d.Is(AcquireLeader) {
		t.Fatalf("synchronous standby: %s (%s), want it to race", d.Summary(), d.Reason)
	}
	// An asynchronous peer with more WAL must not block the synchronous one.
	o := leaderless("n2", []string{"n2"})
	o.Peers[1].LSN = 2000
	if d := Decide(o); !d.Is(AcquireLeader) {
		t.Fatalf("synchronous standby blocked by an asynchronous peer: %s (%s)", d.Summary(), d.Reason)
	}
	// No synchronous standby published: nobody is promoted automatically.
	for _, self := range []string{"n2", "n3"} {
		if d := Decide(leaderless(self, nil)); !d.Is(Wait) {
			t.Fatalf("%s promoted with an empty sync set: %s (%s)", self, d.Summary(), d.Reason)
		}
	}
	// A switchover to an asynchronous replica is refused in sync mode.
	sw := syncWorld("n1", func(o *Observation) {
		o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: []string{"n2"}}
		o.PG.SyncStandbyNames = []string{"n2"}
		o.PG.SyncReported = []string{"n2"}
		o.Cluster.Failover = &cluster.Failover{Leader: "n1", Member: "n3"}
	})
	if d := Decide(sw); !d.Is(ClearFailover) || !strings.Contains(d.Reason, "not a synchronous standby") {
		t.Fatalf("switchover to an asynchronous replica: %s (%s)", d.Summary(), d.Reason)
	}
}

func TestRaceNotBlockedByStalePeers(t *testing.T) {
	o := newWorld("n2").with(func(o *Observation) {
		noLeader(o)
		o.PG.Timeline = 2
		o.Cluster.History = []cluster.HistoryEntry{{Timeline: 1}}
		o.PeersProbed = true
		// n3 has more WAL but on the old timeline: it cannot be promoted.
		o.Peers = []Peer{{Name: "n3", Reachable: true, Role: "replica", State: "running", LSN: 5000, Timeline: 1, Priority: 1}}
	})
	if d := Decide(o); !d.Is(AcquireLeader) {
		t.Fatalf("blocked by a stale peer: %s (%s)", d.Summary(), d.Reason)
	}
}

func TestFormerSyncLeaderIsEligible(t *testing.T) {
	o := syncWorld("n1", func(o *Observation) {
		noLeader(o)
		o.PG.InRecovery = true // it came back as a read-only standby
		o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: []string{"n2"}}
		o.PeersProbed = true
	})
	if d := Decide(o); !d.Is(AcquireLeader) {
		t.Fatalf("former sync leader refused: %s (%s)", d.Summary(), d.Reason)
	}
}
func intp(v int) *int { return &v }

// TestMaximumLagOnSyncnode pins Patroni's maximum_lag_on_syncnode: a
// synchronous standby lagging beyond it is replaced by a healthy
// asynchronous one, and kept when there is none, in strict mode, or when
// the check is off (the default, -1).
func TestMaximumLagOnSyncnode(t *testing.T) {
	// n2 is the published synchronous standby and has flushed only up to
	// 100; n3 flushed up to the leader's 1000.
	lagging := func(f func(o *Observation)) Observation {
		return syncWorld("n1", func(o *Observation) {
			o.Config.MaximumLagOnSyncnode = 500
			o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: []string{"n2"}}
			o.PG.WriteLSN = 1000
			o.PG.SyncStandbyNames = []string{"n2"}
			o.PG.SyncReported = []string{"n2"}
			o.PG.SyncSetLSN = 90
			o.PG.StandbyFlush = map[string]int64{"n2": 100, "n3": 1000}
			if f != nil {
				f(o)
			}
		})
	}
	tests := []struct {
		name  string
		obs   Observation
		want  Kind
		names []string
	}{
		{
			name: "the lagging standby leaves the sync key first",
			obs:  lagging(nil),
			want: PublishSync, names: nil,
		},
		{
			name: "then PostgreSQL waits for the healthy one",
			obs: lagging(func(o *Observation) {
				o.Cluster.Sync.Members = nil
			}),
			want: SetSyncStandbys, names: []string{"n3"},
		},
		{
			name: "a healthy standby is chosen over a lagging one with a higher sync_priority",
			obs: lagging(func(o *Observation) {
				o.Cluster.Sync.Members = nil
				o.PG.SyncStandbyNames, o.PG.SyncReported = nil, nil
				o.Cluster.Members["n2"].Tags = &cluster.Tags{SyncPriority: intp(5)}
			}),
			want: SetSyncStandbys, names: []string{"n3"},
		},
		{
			name: "off by default (-1): the lagging standby stays",
			obs: lagging(func(o *Observation) {
				o.Config.MaximumLagOnSyncnode = cluster.DefaultDynamicConfig().MaximumLagOnSyncnode
			}),
			want: LeaderHousekeeping,
		},
		{
			name: "within the limit: it stays",
			obs: lagging(func(o *Observation) {
				o.Config.MaximumLagOnSyncnode = 900
			}),
			want: LeaderHousekeeping,
		},
		{
			name: "no healthy replacement: the lagging standby stays",
			obs: lagging(func(o *Observation) {
				o.PG.StandbyFlush["n3"] = 200
			}),
			want: LeaderHousekeeping,
		},
		{
			name: "strict mode: the synchronous standby is never moved for lag",
			obs: lagging(func(o *Observation) {
				o.Config.SynchronousModeStrict = true
			}),
			want: LeaderHousekeeping,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSyncDecision(t, Decide(tt.obs), tt.want, tt.names, "")
		})
	}
}

// checkSyncDecision checks that d starts with want, names the given
// standbys (unless it is housekeeping only) and, when reason is not
// empty, mentions it.
func checkSyncDecision(t *testing.T, d Decision, want Kind, names []string, reason string) {
	t.Helper()
	if !d.Is(want) {
		t.Fatalf("Decide() = %s (%s), want %v first", d.Summary(), d.Reason, want)
	}
	if want != LeaderHousekeeping && !slices.Equal(d.Actions[0].Names, names) {
		t.Fatalf("names %v, want %v (%s)", d.Actions[0].Names, names, d.Reason)
	}
	if reason != "" && !strings.Contains(d.Reason, reason) {
		t.Fatalf("reason %q does not mention %q", d.Reason, reason)
	}
}
