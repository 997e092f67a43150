package ha

import (
	"slices"
	"strings"
	"testing"

	"github.com/regent-ha/regent/internal/cluster"
)

// quorumWorld is leader n1 in quorum mode (synchronous_node_count 1) with
// streaming replicas n2 and n3, and the sync key and
// synchronous_standby_names given.
func quorumWorld(key []string, q int, pgNames []string, anyK int, f func(o *Observation)) Observation {
	return syncWorld("n1", func(o *Observation) {
		o.Config.SynchronousMode = cluster.SyncQuorum
		o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: key, Quorum: q}
		o.PG.SyncStandbyNames, o.PG.SyncQuorum = pgNames, anyK
		if f != nil {
			f(o)
		}
	})
}

// settled marks synchronous_standby_names as in effect since LSN 900 and
// names as quorum standbys that flushed it.
func settled(names ...string) func(o *Observation) {
	return func(o *Observation) {
		o.PG.SyncSetLSN = 900
		o.PG.SyncReported = names
		o.PG.StandbyFlush = map[string]int64{}
		for _, n := range names {
			o.PG.StandbyFlush[n] = 900
		}
	}
}

func both(fs ...func(o *Observation)) func(o *Observation) {
	return func(o *Observation) {
		for _, f := range fs {
			f(o)
		}
	}
}

func streamingMember(name string) *cluster.Member {
	return &cluster.Member{Name: name, Role: cluster.RoleReplica, State: cluster.StateRunning,
		ReplicationState: cluster.ReplicationStreaming, Timeline: 1, XLogLocation: lsn(980)}
}

func TestDecideQuorumSync(t *testing.T) {
	n23 := []string{"n2", "n3"}
	n3Gone := func(o *Observation) { o.Cluster.Members["n3"].ReplicationState = cluster.ReplicationArchive }
	tests := []struct {
		name   string
		obs    Observation
		want   Kind
		names  []string
		quorum int
		reason string
	}{
		{
			name: "a new leader claims the sync key first, empty",
			obs: quorumWorld(nil, 0, nil, 0, func(o *Observation) {
				o.Cluster.Sync = &cluster.SyncState{Leader: "n0", Members: n23, Quorum: 1}
			}),
			want: PublishSync, names: nil, quorum: 0,
		},
		{
			name: "then PostgreSQL waits for any 1 of every streaming replica",
			obs:  quorumWorld(nil, 0, nil, 0, nil),
			want: SetSyncStandbys, names: n23, quorum: 1, reason: "ANY 1 (n2,n3)",
		},
		{
			name: "not published while the change may still be taking effect",
			obs:  quorumWorld(nil, 0, n23, 1, both(settled("n2", "n3"), func(o *Observation) { o.PG.SyncSetLSN = 0 })),
			want: LeaderHousekeeping,
		},
		{
			name: "grow: published with quorum 1 once both caught up (R=2 of N=2, W=1)",
			obs:  quorumWorld(nil, 0, n23, 1, settled("n2", "n3")),
			want: PublishSync, names: n23, quorum: 1, reason: "must see 2",
		},
		{
			name: "grow: one caught up is published alone, but with quorum 1 nobody can be promoted yet",
			obs:  quorumWorld(nil, 0, n23, 1, settled("n2")),
			want: PublishSync, names: []string{"n2"}, quorum: 1,
		},
		{
			name: "grow: a standby behind the commits acknowledged before is not published",
			obs: quorumWorld([]string{"n2"}, 1, n23, 1, both(settled("n2", "n3"), func(o *Observation) {
				o.PG.StandbyFlush["n3"] = 899
			})),
			want: LeaderHousekeeping,
		},
		{
			name: "steady state",
			obs:  quorumWorld(n23, 1, n23, 1, settled("n2", "n3")),
			want: LeaderHousekeeping,
		},
		{
			name: "shrink: a lost standby leaves the key first and the quorum stays, so its commits are not forgotten",
			obs:  quorumWorld(n23, 1, n23, 1, both(settled("n2"), n3Gone)),
			want: PublishSync, names: []string{"n2"}, quorum: 1, reason: "dropping",
		},
		{
			name: "shrink: then synchronous_standby_names follows",
			obs:  quorumWorld([]string{"n2"}, 1, n23, 1, both(settled("n2"), n3Gone)),
			want: SetSyncStandbys, names: []string{"n2"}, quorum: 1,
		},
		{
			name: "shrink: once settled and caught up the quorum drops to 0",
			obs:  quorumWorld([]string{"n2"}, 1, []string{"n2"}, 1, both(settled("n2"), n3Gone)),
			want: PublishSync, names: []string{"n2"}, quorum: 0,
		},
		{
			name: "grow from one standby: the quorum is raised before PostgreSQL may confirm with the new one",
			obs:  quorumWorld([]string{"n2"}, 0, []string{"n2"}, 1, settled("n2")),
			want: PublishSync, names: []string{"n2"}, quorum: 1, reason: "safer",
		},
		{
			name: "grow from one standby: then synchronous_standby_names adds it",
			obs:  quorumWorld([]string{"n2"}, 1, []string{"n2"}, 1, settled("n2")),
			want: SetSyncStandbys, names: n23, quorum: 1,
		},
		{
			name: "k grows: synchronous_standby_names first (the key is already safe)",
			obs: quorumWorld(n23, 1, n23, 1, both(settled("n2", "n3"), func(o *Observation) {
				o.Config.SynchronousNodeCount = 2
			})),
			want: SetSyncStandbys, names: n23, quorum: 2,
		},
		{
			name: "k grows: then the quorum drops to 0 (every standby confirms every commit)",
			obs: quorumWorld(n23, 1, n23, 2, both(settled("n2", "n3"), func(o *Observation) {
				o.Config.SynchronousNodeCount = 2
			})),
			want: PublishSync, names: n23, quorum: 0,
		},
		{
			name: "k shrinks: the quorum grows first",
			obs:  quorumWorld(n23, 0, n23, 2, settled("n2", "n3")),
			want: PublishSync, names: n23, quorum: 1,
		},
		{
			name: "k shrinks: then synchronous_standby_names",
			obs:  quorumWorld(n23, 1, n23, 2, settled("n2", "n3")),
			want: SetSyncStandbys, names: n23, quorum: 1,
		},
		{
			name: "synchronous_node_count above the replicas available: ANY of all of them",
			obs: quorumWorld(nil, 0, nil, 0, func(o *Observation) {
				o.Config.SynchronousNodeCount = 3
			}),
			want: SetSyncStandbys, names: n23, quorum: 2,
		},
		{
			name: "three replicas, ANY 1: published with quorum 2",
			obs: quorumWorld(nil, 0, []string{"n2", "n3", "n4"}, 1, both(settled("n2", "n3", "n4"), func(o *Observation) {
				o.Cluster.Members["n4"] = streamingMember("n4")
			})),
			want: PublishSync, names: []string{"n2", "n3", "n4"}, quorum: 2,
		},
		{
			name: "nosync replicas are never listed",
			obs: quorumWorld(nil, 0, nil, 0, func(o *Observation) {
				o.Cluster.Members["n2"].Tags = &cluster.Tags{NoSync: true}
			}),
			want: SetSyncStandbys, names: []string{"n3"}, quorum: 1,
		},
		{
			name: "no replica left, not strict: the key is emptied before commits go asynchronous",
			obs: quorumWorld([]string{"n2"}, 0, []string{"n2"}, 1, func(o *Observation) {
				delete(o.Cluster.Members, "n2")
				delete(o.Cluster.Members, "n3")
			}),
			want: PublishSync, names: nil, quorum: 0,
		},
		{
			name: "no replica left, not strict: then synchronous_standby_names is cleared",
			obs: quorumWorld(nil, 0, []string{"n2"}, 1, func(o *Observation) {
				delete(o.Cluster.Members, "n2")
				delete(o.Cluster.Members, "n3")
			}),
			want: SetSyncStandbys, names: nil, quorum: 0, reason: "asynchronously",
		},
		{
			name: "no replica left, strict: commits wait for any standby",
			obs: quorumWorld(nil, 0, []string{"n2"}, 1, func(o *Observation) {
				o.Config.SynchronousModeStrict = true
				delete(o.Cluster.Members, "n2")
				delete(o.Cluster.Members, "n3")
			}),
			want: SetSyncStandbys, names: []string{"*"}, quorum: 0, reason: "strict",
		},
		{
			name: "switching from on: the FIRST 1 key gets quorum 1 before ANY 1 lets the new standby confirm alone",
			obs:  quorumWorld([]string{"n2"}, 0, []string{"n2"}, 0, settled("n2")),
			want: PublishSync, names: []string{"n2"}, quorum: 1,
		},
		{
			name: "switching to on: a quorum key is emptied first",
			obs: quorumWorld(n23, 1, n23, 1, both(settled("n2", "n3"), func(o *Observation) {
				o.Config.SynchronousMode = cluster.SyncOn
			})),
			want: PublishSync, names: nil, quorum: 0, reason: "quorum to on",
		},
		{
			name: "switching to on: then FIRST 1 replaces ANY 1",
			obs: quorumWorld(nil, 0, n23, 1, both(settled("n2", "n3"), func(o *Observation) {
				o.Config.SynchronousMode = cluster.SyncOn
			})),
			want: SetSyncStandbys, names: []string{"n2"}, quorum: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.obs)
			if !d.Is(tt.want) {
				t.Fatalf("Decide() = %s (%s), want %v first", d.Summary(), d.Reason, tt.want)
			}
			if tt.want != LeaderHousekeeping {
				if a := d.Actions[0]; !slices.Equal(a.Names, tt.names) || a.Quorum != tt.quorum {
					t.Fatalf("got %s, want names %v quorum %d (%s)", a, tt.names, tt.quorum, d.Reason)
				}
			}
			if tt.reason != "" && !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("reason %q does not mention %q", d.Reason, tt.reason)
			}
		})
	}
}

// TestQuorumStepsKeepTheKeySafe walks the leader through growing,
// shrinking and changing k, applying each decision, and checks after
// every step that the published key is safe for the configuration
// PostgreSQL enforces: quorum + k >= |published ∪ listed|.
func TestQuorumStepsKeepTheKeySafe(t *testing.T) {
	o := quorumWorld(nil, 0, nil, 0, nil)
	o.Cluster.Members["n4"] = streamingMember("n4")
	apply := func(o *Observation) bool {
		d := Decide(*o)
		switch a := d.Actions[0]; a.Kind {
		case SetSyncStandbys:
			o.PG.SyncStandbyNames, o.PG.SyncQuorum = a.Names, a.Quorum
			o.PG.SyncSetLSN = 0
		case PublishSync:
			o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: a.Names, Quorum: a.Quorum}
		default:
			if o.PG.SyncSetLSN == 0 { // the change takes effect; everyone catches up
				settled(streamingNames(o)...)(o)
				return true
			}
			return false
		}
		names, k := effectiveSync(o.PG)
		if s := o.Cluster.Sync; len(s.Members) > 0 && s.Quorum+k < len(union(s.Members, names)) {
			t.Fatalf("after %s (%s): key %v quorum %d is unsafe for ANY %d %v", d.Summary(), d.Reason, s.Members, s.Quorum, k, names)
		}
		return true
	}
	run := func(what string, change func(o *Observation), wantKey []string, wantQ int) {
		t.Helper()
		change(&o)
		for i := 0; apply(&o); i++ {
			if i > 20 {
				t.Fatalf("%s: no steady state", what)
			}
		}
		if s := o.Cluster.Sync; !slices.Equal(s.Members, wantKey) || s.Quorum != wantQ {
			t.Fatalf("%s: steady key %v quorum %d, want %v quorum %d", what, s.Members, s.Quorum, wantKey, wantQ)
		}
	}
	all := []string{"n2", "n3", "n4"}
	run("start", func(*Observation) {}, all, 2)
	run("k=2", func(o *Observation) { o.Config.SynchronousNodeCount = 2 }, all, 1)
	run("n4 lost", func(o *Observation) { o.Cluster.Members["n4"].ReplicationState = cluster.ReplicationArchive },
		[]string{"n2", "n3"}, 0)
	run("n4 back", func(o *Observation) { o.Cluster.Members["n4"].ReplicationState = cluster.ReplicationStreaming }, all, 1)
	run("k=1", func(o *Observation) { o.Config.SynchronousNodeCount = 1 }, all, 2)
	run("n2 nosync", func(o *Observation) { o.Cluster.Members["n2"].Tags = &cluster.Tags{NoSync: true} },
		[]string{"n3", "n4"}, 1)
}

func streamingNames(o *Observation) []string {
	var out []string
	for _, m := range o.Cluster.SortedMembers() {
		if m.Name != o.Self.Name && m.ReplicationState == cluster.ReplicationStreaming {
			out = append(out, m.Name)
		}
	}
	return out
}

func TestQuorumModePromotion(t *testing.T) {
	peer := func(name string, lsn int64) Peer {
		return Peer{Name: name, Reachable: true, Role: "replica", State: "running", LSN: lsn, Timeline: 1, Priority: 1}
	}
	// leaderless is n1's cluster after n1 died, seen by self, with the
	// sync key key/q and the peers' answers.
	leaderless := func(self string, key []string, q int, peers ...Peer) Observation {
		o := syncWorld(self, nil)
		o.Config.SynchronousMode = cluster.SyncQuorum
		noLeader(&o)
		o.Cluster.Members["n4"] = streamingMember("n4")
		o.Cluster.Sync = &cluster.SyncState{Leader: "n1", Members: key, Quorum: q}
		o.PeersProbed = true
		o.Peers = peers
		return o
	}
	n23 := []string{"n2", "n3"}
	tests := []struct {
		name   string
		obs    Observation
		race   bool
		reason string
	}{
		{"sees the other quorum standby, same WAL: races",
			leaderless("n2", n23, 1, peer("n3", 1000)), true, ""},
		{"sees the other quorum standby, behind it: waits",
			leaderless("n2", n23, 1, peer("n3", 1001)), false, "more WAL"},
		{"the other quorum standby is nofailover and ahead: still waits, it may hold commits this one lacks",
			leaderless("n2", n23, 1, func() Peer { p := peer("n3", 1001); p.Priority = 0; return p }()), false, "published quorum standby n3 has more WAL"},
		{"the other quorum standby is nofailover and not ahead: its vote counts",
			leaderless("n2", n23, 1, func() Peer { p := peer("n3", 900); p.Priority = 0; return p }()), true, ""},
		{"double failure: the other quorum standby is unreachable",
			leaderless("n2", n23, 1, Peer{Name: "n3"}), false, "must compare its WAL with 1 other listed members"},
		{"double failure: the other quorum standby's PostgreSQL is down",
			leaderless("n2", n23, 1, Peer{Name: "n3", Reachable: true, Role: "replica", State: "stopped"}), false, "only 0 answered ([n3]"},
		{"double failure after the safer state was published (n3 dropped, quorum kept)",
			leaderless("n2", []string{"n2"}, 1), false, "must compare its WAL with 1 other"},
		{"after the leader settled on n2 alone (quorum 0)",
			leaderless("n2", []string{"n2"}, 0), true, ""},
		{"not listed in the sync key",
			leaderless("n4", n23, 1, peer("n2", 1000), peer("n3", 1000)), false, "not listed in the sync key"},
		{"an unlisted peer with more WAL does not block",
			leaderless("n2", n23, 1, peer("n3", 1000), peer("n4", 5000)), true, ""},
		{"ANY 1 of three (quorum 2): two others seen",
			leaderless("n2", []string{"n2", "n3", "n4"}, 2, peer("n3", 1000), peer("n4", 990)), true, ""},
		{"ANY 1 of three (quorum 2): only one other seen",
			leaderless("n2", []string{"n2", "n3", "n4"}, 2, peer("n3", 1000), Peer{Name: "n4"}), false, "only 1 answered ([n4]"},
		{"ANY 2 of three (quorum 1): one other seen is enough",
			leaderless("n2", []string{"n2", "n3", "n4"}, 1, peer("n3", 1000), Peer{Name: "n4"}), true, ""},
		{"a peer on an older timeline is no vote",
			leaderless("n2", n23, 1, func() Peer { p := peer("n3", 1000); p.Timeline = 0; return p }()), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.obs)
			if tt.race != d.Is(AcquireLeader) {
				t.Fatalf("Decide() = %s (%s), want race %t", d.Summary(), d.Reason, tt.race)
			}
			if tt.reason != "" && !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("reason %q does not mention %q", d.Reason, tt.reason)
			}
		})
	}
	// The former leader named in the key holds every commit it acknowledged.
	o := leaderless("n1", n23, 1)
	o.PG.InRecovery = true
	if d := Decide(o); !d.Is(AcquireLeader) {
		t.Fatalf("former leader refused: %s (%s)", d.Summary(), d.Reason)
	}
	// A switchover may go to a listed quorum standby only.
	sw := quorumWorld(n23, 1, n23, 1, both(settled("n2", "n3"), func(o *Observation) {
		o.Cluster.Members["n4"] = streamingMember("n4")
		o.Cluster.Failover = &cluster.Failover{Leader: "n1", Member: "n4"}
	}))
	if d := Decide(sw); !d.Is(ClearFailover) {
		t.Fatalf("switchover to an unlisted replica: %s (%s)", d.Summary(), d.Reason)
	}
}

// TestQuorumMaximumLagOnSyncnode: in quorum mode a standby lagging beyond
// maximum_lag_on_syncnode leaves the quorum list (the key first) when
// enough healthy standbys remain for ANY n, and stays otherwise.
func TestQuorumMaximumLagOnSyncnode(t *testing.T) {
	n23 := []string{"n2", "n3"}
	lag := func(n int) func(o *Observation) {
		return func(o *Observation) {
			o.Config.MaximumLagOnSyncnode = 500
			o.Config.SynchronousNodeCount = n
			o.PG.WriteLSN = 1000
			o.PG.StandbyFlush = map[string]int64{"n2": 100, "n3": 1000}
		}
	}
	d := Decide(quorumWorld(n23, 1, n23, 1, both(settled("n2", "n3"), lag(1))))
	if !d.Is(PublishSync) || !slices.Equal(d.Actions[0].Names, []string{"n3"}) || d.Actions[0].Quorum != 1 {
		t.Fatalf("Decide() = %s (%s), want the key [n3] quorum 1 before synchronous_standby_names changes", d.Summary(), d.Reason)
	}
	d = Decide(quorumWorld([]string{"n3"}, 1, n23, 1, both(settled("n2", "n3"), lag(1))))
	if !d.Is(SetSyncStandbys) || !slices.Equal(d.Actions[0].Names, []string{"n3"}) || d.Actions[0].Quorum != 1 {
		t.Fatalf("Decide() = %s (%s), want ANY 1 (n3)", d.Summary(), d.Reason)
	}
	d = Decide(quorumWorld(n23, 0, n23, 2, both(settled("n2", "n3"), lag(2))))
	if d.Is(PublishSync) || d.Is(SetSyncStandbys) {
		t.Fatalf("Decide() = %s (%s): with ANY 2 and one healthy standby the lagging one must stay", d.Summary(), d.Reason)
	}
}
