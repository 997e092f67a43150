package ha

import (
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

var t0 = time.Unix(1_700_000_000, 0)

func ptr[T any](v T) *T { return &v }

// world builds observations for table tests: a three-member cluster with
// leader n1 on timeline 1.
type world struct{ o Observation }

func newWorld(self string) *world {
	c := &cluster.Cluster{
		Scope:      "test",
		Initialize: &cluster.Initialize{SystemID: "7000"},
		Leader:     &cluster.Leader{Name: "n1", Lease: 1},
		Members: map[string]*cluster.Member{
			"n1": {Name: "n1", Role: cluster.RolePrimary, State: cluster.StateRunning, Timeline: 1},
			"n2": {Name: "n2", Role: cluster.RoleReplica, State: cluster.StateRunning, Timeline: 1},
			"n3": {Name: "n3", Role: cluster.RoleReplica, State: cluster.StateRunning, Timeline: 1},
		},
		Status: cluster.Status{Optime: 1000},
	}
	return &world{o: Observation{
		Now:     t0,
		Self:    Self{Name: self},
		Cluster: c,
		Config:  cluster.DefaultDynamicConfig(),
		Lease:   Lease{ConfirmedSentAt: t0.Add(-time.Second), TTL: 5 * time.Second, KeyOnMyLease: self == "n1"},
		PG: Postgres{
			DataDir: DataDirInitialized, SystemID: "7000", ControlTimeline: 1,
			Running: true, Answered: true, InRecovery: self != "n1", Timeline: 1,
			WriteLSN: 1000, ReceiveLSN: 1000, ReplayLSN: 1000, Streaming: true, Following: "n1",
			LastKnownPrimary: self == "n1",
		},
	}}
}

func (w *world) with(f func(o *Observation)) Observation {
	o := w.o
	c := *w.o.Cluster
	o.Cluster = &c
	f(&o)
	return o
}

func noLeader(o *Observation) { o.Cluster.Leader = nil; o.Lease.KeyOnMyLease = false }

// decideAs runs Decide on obs and fails the test unless its actions are
// of the kinds want, the first targets target ("" = any) and the reason
// mentions reason ("" = anything). It returns the decision for further
// checks.
func decideAs(t *testing.T, obs Observation, want []Kind, target, reason string) Decision {
	t.Helper()
	d := Decide(obs)
	var got []Kind
	for _, a := range d.Actions {
		got = append(got, a.Kind)
	}
	if !equalKinds(got, want) {
		t.Fatalf("Decide() = %v (%s), want %v", got, d.Reason, want)
	}
	if target != "" && d.Actions[0].Target != target {
		t.Fatalf("%v targets %q, want %q (%s)", d.Actions[0].Kind, d.Actions[0].Target, target, d.Reason)
	}
	if reason != "" && !strings.Contains(d.Reason, reason) {
		t.Fatalf("reason %q does not mention %q", d.Reason, reason)
	}
	return d
}

func TestDecide(t *testing.T) {
	renew := cluster.DefaultDynamicConfig().RenewDeadline()
	tests := []struct {
		name   string
		obs    Observation
		want   []Kind
		reason string
	}{
		{
			name: "leader with fresh lease keeps leading",
			obs:  newWorld("n1").o,
			want: []Kind{LeaderHousekeeping},
		},
		{
			name: "leader fences when the last confirmed renewal is older than the renew deadline",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Lease.ConfirmedSentAt = t0.Add(-renew)
			}),
			want: []Kind{Fence}, reason: "renew deadline",
		},
		{
			// ttl raised to 30 in the DCS while the lease still has the 5 s
			// etcd granted: etcd deletes the key 5 s after the renewal, so
			// the deadline must still be the 5 s lease's.
			name: "raised ttl: the deadline stays the granted lease's until it is re-granted",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Config.TTL = 30
				o.Lease.ConfirmedSentAt = t0.Add(-renew)
			}),
			want: []Kind{Fence}, reason: "renew deadline is 3.45s",
		},
		{
			name: "raised ttl: the longer deadline applies once etcd granted the longer lease",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Config.TTL = 30
				o.Lease.TTL = 30 * time.Second
				o.Lease.ConfirmedSentAt = t0.Add(-renew - 10*time.Second)
			}),
			want: []Kind{LeaderHousekeeping},
		},
		{
			name: "lowered ttl: the shorter deadline applies at once, before the lease is re-granted",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Lease.TTL = 30 * time.Second
				o.Lease.ConfirmedSentAt = t0.Add(-renew)
			}),
			want: []Kind{Fence}, reason: "renew deadline is 3.45s",
		},
		{
			name: "no granted lease means no claim",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Lease.TTL = 0
			}),
			want: []Kind{Fence}, reason: "renew deadline",
		},
		{
			name: "leader whose promotion did not finish releases the key instead of starting as primary",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG = Postgres{DataDir: DataDirInitialized, SystemID: "7000", ControlTimeline: 1, ControlStandby: true, DownSince: t0.Add(-time.Second)}
			}),
			want: []Kind{ReleaseLeader}, reason: "promotion finished",
		},
		{
			name: "crashed primary (pg_control in production) restarts in place",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG = Postgres{DataDir: DataDirInitialized, SystemID: "7000", ControlTimeline: 1, DownSince: t0.Add(-time.Second)}
			}),
			want: []Kind{StartPrimary},
		},
		{
			name: "leader whose PostgreSQL stopped answering waits within primary_start_timeout",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Answered = false
				o.PG.UnansweredSince = t0.Add(-29 * time.Second)
			}),
			want: []Kind{Wait}, reason: "did not answer",
		},
		{
			name: "leader stops a PostgreSQL that has not answered for primary_start_timeout",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Answered = false
				o.PG.UnansweredSince = t0.Add(-30 * time.Second)
			}),
			want: []Kind{StopUnresponsive}, reason: "has not answered for 30s",
		},
		{
			name: "unresponsive PostgreSQL is left alone in maintenance mode",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Config.Pause = true
				o.PG.Answered = false
				o.PG.UnansweredSince = t0.Add(-time.Hour)
			}),
			want: []Kind{Wait},
		},
		{
			name: "a replica that does not answer is never stopped",
			obs: newWorld("n2").with(func(o *Observation) {
				o.PG.Answered = false
				o.PG.UnansweredSince = t0.Add(-time.Hour)
			}),
			want: []Kind{Wait},
		},
		{
			name: "leader keeps leading just inside the renew deadline",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Lease.ConfirmedSentAt = t0.Add(-renew + time.Millisecond)
			}),
			want: []Kind{LeaderHousekeeping},
		},
		{
			name: "leader cut off from the DCS keeps leading while the lease is confirmed",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Cluster = nil
				o.DCSError = "timeout"
			}),
			want: []Kind{LeaderHousekeeping},
		},
		{
			name: "leader cut off from the DCS fences at the deadline",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Cluster = nil
				o.Lease.ConfirmedSentAt = t0.Add(-renew - time.Second)
			}),
			want: []Kind{Fence},
		},
		{
			name: "fencing takes precedence over a running task",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Task = "checkpoint"
				o.Lease.ConfirmedSentAt = t0.Add(-renew)
			}),
			want: []Kind{Fence},
		},
		{
			name: "a primary that cannot answer but was primary is fenced at the deadline",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Answered = false
				o.Lease.ConfirmedSentAt = t0.Add(-renew)
			}),
			want: []Kind{Fence},
		},
		{
			name: "primary whose key is held by another member demotes",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Cluster.Leader = &cluster.Leader{Name: "n2"}
				o.Lease.KeyOnMyLease = false
			}),
			want: []Kind{Demote}, reason: "held by n2",
		},
		{
			name: "primary with no DCS view and no key is fenced",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Cluster = nil
				o.Lease.KeyOnMyLease = false
			}),
			want: []Kind{Fence},
		},
		{
			name: "primary without a leader key takes it",
			obs:  newWorld("n1").with(noLeader),
			want: []Kind{AcquireLeader, LeaderHousekeeping},
		},
		{
			name: "stale primary on an old timeline demotes instead of taking the key",
			obs: newWorld("n1").with(func(o *Observation) {
				noLeader(o)
				o.Cluster.History = []cluster.HistoryEntry{{Timeline: 1, SwitchLSN: 900}}
			}),
			want: []Kind{Demote}, reason: "stale",
		},
		{
			name: "replica follows the leader",
			obs:  newWorld("n2").o,
			want: []Kind{Wait}, reason: "following leader n1",
		},
		{
			name: "replica pointed elsewhere is re-pointed",
			obs:  newWorld("n2").with(func(o *Observation) { o.PG.Following = "n3" }),
			want: []Kind{Follow},
		},
		{
			name: "replica without a leader asks its peers first",
			obs:  newWorld("n2").with(noLeader),
			want: []Kind{ProbePeers},
		},
		{
			name: "healthiest replica races and promotes",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.PeersProbed = true
				o.Peers = []Peer{{Name: "n1"}, {Name: "n3", Reachable: true, Role: "replica", State: "running", LSN: 900, Priority: 1}}
			}),
			want: []Kind{AcquireLeader, Promote},
		},
		{
			name: "replica does not race while a peer still runs as primary",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.PeersProbed = true
				o.Peers = []Peer{{Name: "n1", Reachable: true, Role: "primary", State: "running", LSN: 1000, Priority: 1}}
			}),
			want: []Kind{Wait}, reason: "still runs as primary",
		},
		{
			name: "replica does not race against a peer with more WAL",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.PeersProbed = true
				o.Peers = []Peer{{Name: "n3", Reachable: true, Role: "replica", State: "running", LSN: 1001, Priority: 1}}
			}),
			want: []Kind{Wait}, reason: "more WAL",
		},
		{
			name: "a peer with more WAL but nofailover does not block the race",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.PeersProbed = true
				o.Peers = []Peer{{Name: "n3", Reachable: true, Role: "replica", State: "running", LSN: 1001, Priority: 0}}
			}),
			want: []Kind{AcquireLeader, Promote},
		},
		{
			name: "equal WAL: higher failover_priority wins",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.PeersProbed = true
				o.Peers = []Peer{{Name: "n3", Reachable: true, Role: "replica", State: "running", LSN: 1000, Priority: 2}}
			}),
			want: []Kind{Wait}, reason: "higher failover_priority",
		},
		{
			name: "nofailover replica never races",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.Self.Tags.NoFailover = true
			}),
			want: []Kind{Wait}, reason: "nofailover",
		},
		{
			name: "failover_priority 0 never races",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.Self.Tags.FailoverPriority = ptr(0)
			}),
			want: []Kind{Wait}, reason: "failover_priority",
		},
		{
			name: "lagging replica does not race",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.Cluster.Status.Optime = 1000 + o.Config.MaximumLagOnFailover + 1
			}),
			want: []Kind{Wait}, reason: "maximum_lag_on_failover",
		},
		{
			name: "replica on a timeline older than the history does not race",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.Cluster.History = []cluster.HistoryEntry{{Timeline: 1}}
			}),
			want: []Kind{Wait}, reason: "history has timeline 2",
		},
		{
			name: "paused cluster does not race",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.Config.Pause = true
			}),
			want: []Kind{Wait}, reason: "paused",
		},
		{
			name: "replica holding the key promotes",
			obs: newWorld("n2").with(func(o *Observation) {
				o.Cluster.Leader = &cluster.Leader{Name: "n2"}
				o.Lease.KeyOnMyLease = true
			}),
			want: []Kind{Promote},
		},
		{
			name: "replica named in the key but without confirmed lease waits",
			obs: newWorld("n2").with(func(o *Observation) {
				o.Cluster.Leader = &cluster.Leader{Name: "n2"}
			}),
			want: []Kind{Wait},
		},
		{
			name: "crashed leader restarts in place",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
				o.PG.DownSince = t0.Add(-time.Second)
			}),
			want: []Kind{StartPrimary},
		},
		{
			name: "crashed leader releases the key after primary_start_timeout",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
				o.PG.DownSince = t0.Add(-o.Config.PrimaryStartTimeoutDuration())
			}),
			want: []Kind{ReleaseLeader},
		},
		{
			name: "crashed leader retries a failed restart within primary_start_timeout",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
				o.PG.DownSince = t0
				o.PG.StartFailed = true
			}),
			want: []Kind{StartPrimary}, reason: "retrying",
		},
		{
			name: "crashed leader releases the key when restarts keep failing past primary_start_timeout",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
				o.PG.DownSince = t0.Add(-o.Config.PrimaryStartTimeoutDuration())
				o.PG.StartFailed = true
			}),
			want: []Kind{ReleaseLeader},
		},
		{
			name: "primary_start_timeout 0 releases at once",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
				o.PG.DownSince = t0
				o.Config.PrimaryStartTimeout = 0
			}),
			want: []Kind{ReleaseLeader},
		},
		{
			name: "stopped replica starts following the leader",
			obs: newWorld("n2").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
			}),
			want: []Kind{StartReplica},
		},
		{
			name: "stopped member behind the leader's timeline rewinds",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
				o.Lease.KeyOnMyLease = false
				o.Cluster.Leader = &cluster.Leader{Name: "n2"}
				o.Cluster.Members["n2"] = &cluster.Member{Name: "n2", State: "running", Timeline: 2, CheckpointAfterPromote: ptr(true)}
			}),
			want: []Kind{Rewind},
		},
		{
			name: "rewind waits for the post-promote checkpoint",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
				o.Lease.KeyOnMyLease = false
				o.Cluster.Leader = &cluster.Leader{Name: "n2"}
				o.Cluster.Members["n2"] = &cluster.Member{Name: "n2", State: "running", Timeline: 2, CheckpointAfterPromote: ptr(false)}
			}),
			want: []Kind{Wait}, reason: "post-promote checkpoint",
		},
		{
			name: "rewind that cannot succeed, without permission to re-clone, waits for an operator",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
				o.PG.Rejoin = &RejoinFailure{Step: "pg_rewind", Source: "n2", NeedsOperator: true, Reason: "no wal_log_hints", Attempts: 1}
				o.Lease.KeyOnMyLease = false
				o.Cluster.Leader = &cluster.Leader{Name: "n2"}
				o.Cluster.Members["n2"] = &cluster.Member{Name: "n2", State: "running", Timeline: 2}
			}),
			want: []Kind{Wait}, reason: "waiting for an operator: run `regent reinit n1`",
		},
		{
			name: "rewind that cannot succeed re-clones when allowed",
			obs: newWorld("n1").with(func(o *Observation) {
				o.PG.Running, o.PG.Answered = false, false
				o.PG.Rejoin = &RejoinFailure{Step: "pg_rewind", Source: "n2", NeedsOperator: true, Reason: "no wal_log_hints", Attempts: 1}
				o.Config.PostgreSQL.RemoveDataDirectoryOnRewindFailure = true
				o.Lease.KeyOnMyLease = false
				o.Cluster.Leader = &cluster.Leader{Name: "n2"}
				o.Cluster.Members["n2"] = &cluster.Member{Name: "n2", State: "running", Timeline: 2}
			}),
			want: []Kind{Reclone},
		},
		{
			name: "stopped member with no leader starts read-only",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.PG.Running, o.PG.Answered = false, false
			}),
			want: []Kind{StartReplica},
		},
		{
			name: "stopped member leaves PostgreSQL down while the DCS is unreachable",
			obs: newWorld("n2").with(func(o *Observation) {
				o.Cluster = nil
				o.PG.Running, o.PG.Answered = false, false
			}),
			want: []Kind{Wait},
		},
		{
			name: "foreign data directory is refused",
			obs: newWorld("n2").with(func(o *Observation) {
				o.PG.SystemID = "9999"
				o.PG.Running, o.PG.Answered = false, false
			}),
			want: []Kind{Refuse}, reason: "another cluster",
		},
		{
			name: "empty member bootstraps an uninitialized cluster",
			obs: newWorld("n1").with(func(o *Observation) {
				*o = Observation{Now: t0, Self: Self{Name: "n1"}, Cluster: &cluster.Cluster{}, Config: o.Config,
					PG: Postgres{DataDir: DataDirEmpty}}
			}),
			want: []Kind{Bootstrap},
		},
		{
			name: "nofailover member does not bootstrap",
			obs: newWorld("n1").with(func(o *Observation) {
				*o = Observation{Now: t0, Self: Self{Name: "n1", Tags: cluster.Tags{NoFailover: true}}, Cluster: &cluster.Cluster{},
					Config: o.Config, PG: Postgres{DataDir: DataDirEmpty}}
			}),
			want: []Kind{Wait}, reason: "nofailover",
		},
		{
			name: "empty member waits while another bootstraps",
			obs: newWorld("n2").with(func(o *Observation) {
				o.Cluster.Initialize = &cluster.Initialize{}
				o.PG = Postgres{DataDir: DataDirEmpty}
			}),
			want: []Kind{Wait}, reason: "bootstrapping",
		},
		{
			name: "empty member clones from the leader",
			obs: newWorld("n2").with(func(o *Observation) {
				o.PG = Postgres{DataDir: DataDirEmpty}
			}),
			want: []Kind{Clone},
		},
		{
			name: "long-running task blocks other decisions",
			obs: newWorld("n2").with(func(o *Observation) {
				o.Task = "clone"
				o.PG = Postgres{DataDir: DataDirEmpty}
			}),
			want: []Kind{Wait}, reason: "clone",
		},
		{
			name: "replica behind the leader's timeline and not streaming stops to rejoin",
			obs: newWorld("n2").with(func(o *Observation) {
				o.Cluster.Leader = &cluster.Leader{Name: "n3"}
				o.Cluster.Members["n3"] = &cluster.Member{Name: "n3", State: "running", Timeline: 2}
				o.PG.Following = "n3"
				o.PG.Streaming = false
				o.PG.NotStreamingSince = t0.Add(-o.Config.TTLDuration())
			}),
			want: []Kind{StopForRejoin},
		},
	}
	tests = append(tests, []struct {
		name   string
		obs    Observation
		want   []Kind
		reason string
	}{
		{
			name: "replicatefrom: follow the named streaming replica",
			obs: newWorld("n3").with(func(o *Observation) {
				o.Self.Tags.ReplicateFrom = "n2"
				o.Cluster.Members["n2"] = &cluster.Member{Name: "n2", State: "running", ReplicationState: "streaming", Timeline: 1}
			}),
			want: []Kind{Follow}, reason: "replicatefrom",
		},
		{
			name: "replicatefrom: stay on the upstream replica",
			obs: newWorld("n3").with(func(o *Observation) {
				o.Self.Tags.ReplicateFrom = "n2"
				o.PG.Following = "n2"
				o.Cluster.Members["n2"] = &cluster.Member{Name: "n2", State: "running", ReplicationState: "streaming", Timeline: 1}
			}),
			want: []Kind{Wait}, reason: "cascade",
		},
		{
			name: "replicatefrom: catch up from the leader when the upstream cannot serve the WAL",
			obs: newWorld("n3").with(func(o *Observation) {
				o.Self.Tags.ReplicateFrom = "n2"
				o.PG.Following = "n2"
				o.PG.Streaming = false
				o.PG.NotStreamingSince = t0.Add(-o.Config.TTLDuration())
				o.Cluster.Members["n2"] = &cluster.Member{Name: "n2", State: "running", ReplicationState: "streaming", Timeline: 1}
			}),
			want: []Kind{Follow}, reason: "leader n1",
		},
		{
			name: "replicatefrom: fall back to the leader when the upstream does not stream",
			obs: newWorld("n3").with(func(o *Observation) {
				o.Self.Tags.ReplicateFrom = "n2"
				o.PG.Following = "n2"
				o.Cluster.Members["n2"] = &cluster.Member{Name: "n2", State: "stopped", Timeline: 1}
			}),
			want: []Kind{Follow}, reason: "leader n1",
		},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decideAs(t, tt.obs, tt.want, "", tt.reason)
			if d.Reason == "" {
				t.Fatal("every decision must carry a reason")
			}
			refusal := strings.Contains(d.Reason, "not eligible for promotion") || strings.Contains(d.Reason, "not promoting automatically")
			if refusal != d.PromotionRefused {
				t.Fatalf("PromotionRefused = %v for %q: refusals to promote must be marked (the agent records them), nothing else", d.PromotionRefused, d.Reason)
			}
		})
	}
}

func equalKinds(a, b []Kind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRenewDeadlineLeavesRoomToFence checks the fencing inequality for the
// defaults: R + D_fence + m <= TTL*(1-ε).
func TestRenewDeadlineLeavesRoomToFence(t *testing.T) {
	c := cluster.DefaultDynamicConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	r := c.RenewDeadline()
	budget := time.Duration(float64(c.TTLDuration()) * (1 - c.ClockDrift))
	if used := r + c.FenceTimeoutDuration() + time.Duration(c.SafetyMargin*float64(time.Second)); used > budget {
		t.Fatalf("R + D_fence + m = %v exceeds TTL(1-ε) = %v", used, budget)
	}
}
