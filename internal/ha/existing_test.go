package ha

import (
	"testing"

	"github.com/regent-ha/regent/internal/cluster"
)

// standalone is a member n1 pointed at an existing standalone PostgreSQL
// in a scope that has no keys yet besides the other members.
func standalone(f func(o *Observation)) Observation {
	return newWorld("n1").with(func(o *Observation) {
		noLeader(o)
		o.Cluster.Initialize = nil
		o.Cluster.Status = cluster.Status{}
		o.Cluster.Members = map[string]*cluster.Member{}
		o.Lease.KeyOnMyLease = false
		o.PG.Following = ""
		o.PG.Streaming = false
		f(o)
	})
}

// stopped makes the observed PostgreSQL a stopped data directory.
func stopped(o *Observation) {
	o.PG.Running, o.PG.Answered, o.PG.InRecovery, o.PG.LastKnownPrimary = false, false, false, false
	o.PG.DownSince = t0
}

// TestDecideExistingData covers converting a standalone PostgreSQL: the
// first member adopts its data directory in place (never initdb, never a
// clone), and a standby or a foreign data directory is not adopted.
func TestDecideExistingData(t *testing.T) {
	tests := []struct {
		name   string
		obs    Observation
		want   []Kind
		reason string
	}{
		{
			name:   "running standalone primary claims initialize with its system identifier, then the leader key",
			obs:    standalone(func(o *Observation) {}),
			want:   []Kind{ClaimInitialize, AcquireLeader, LeaderHousekeeping},
			reason: "system identifier 7000",
		},
		{
			name: "stopped standalone shut down cleanly is started as primary after claiming both keys",
			obs:  standalone(stopped),
			want: []Kind{ClaimInitialize, AcquireLeader, StartPrimary}, reason: "shut down as a primary",
		},
		{
			// pg_control says "in production": the agent reports it like a
			// clean shutdown (not a standby); PostgreSQL's crash recovery
			// runs when it starts as primary.
			name: "stopped standalone after a crash is adopted the same way",
			obs: standalone(func(o *Observation) {
				stopped(o)
				o.PG.StartFailed = false
				o.PG.ControlTimeline = 3
			}),
			want: []Kind{ClaimInitialize, AcquireLeader, StartPrimary}, reason: "first member",
		},
		{
			name: "stopped standby data directory with standby.signal is neither promoted nor started",
			obs: standalone(func(o *Observation) {
				stopped(o)
				o.PG.ControlStandby, o.PG.RecoverySignalled = true, true
			}),
			want: []Kind{Wait}, reason: "may be a replica of a primary elsewhere",
		},
		{
			name: "in recovery per pg_control but no signal file: a stopped standalone primary",
			obs: standalone(func(o *Observation) {
				stopped(o)
				o.PG.ControlStandby = true
			}),
			want: []Kind{ClaimInitialize, AcquireLeader, StartPrimary}, reason: "no standby.signal",
		},
		{
			name: "stopped data directory whose pg_control could not be read is left alone",
			obs: standalone(func(o *Observation) {
				stopped(o)
				o.PG.SystemID = ""
			}),
			want: []Kind{Wait}, reason: "unknown",
		},
		{
			name: "stopped standalone with nofailover is not adopted",
			obs: standalone(func(o *Observation) {
				stopped(o)
				o.Self.Tags.NoFailover = true
			}),
			want: []Kind{Wait}, reason: "nofailover",
		},
		{
			name: "stopped standalone in a paused cluster is left stopped",
			obs: standalone(func(o *Observation) {
				stopped(o)
				o.Config.Pause = true
			}),
			want: []Kind{Wait}, reason: "paused",
		},
		{
			name: "running standalone in a paused cluster takes no key",
			obs:  standalone(func(o *Observation) { o.Config.Pause = true }),
			want: []Kind{Wait}, reason: "paused",
		},
		{
			name: "running standby without initialize key is not promoted",
			obs: standalone(func(o *Observation) {
				o.PG.InRecovery, o.PG.LastKnownPrimary = true, false
			}),
			want: []Kind{Wait}, reason: "initialization is not complete",
		},
		{
			name: "running data directory of another cluster is refused",
			obs: standalone(func(o *Observation) {
				o.Cluster.Initialize = &cluster.Initialize{SystemID: "8000"}
			}),
			want: []Kind{Refuse}, reason: "belongs to another cluster",
		},
		{
			name: "stopped data directory of another cluster is refused",
			obs: standalone(func(o *Observation) {
				stopped(o)
				o.Cluster.Initialize = &cluster.Initialize{SystemID: "8000"}
			}),
			want: []Kind{Refuse}, reason: "belongs to another cluster",
		},
		{
			name: "leader without initialize key writes its system identifier",
			obs: newWorld("n1").with(func(o *Observation) {
				o.Cluster.Initialize = nil
			}),
			want: []Kind{ClaimInitialize, LeaderHousekeeping}, reason: "system identifier (7000)",
		},
		{
			name: "empty member waits while the leader has not written initialize (no bootstrap race)",
			obs: newWorld("n2").with(func(o *Observation) {
				o.Cluster.Initialize = nil
				o.PG = Postgres{DataDir: DataDirEmpty}
			}),
			want: []Kind{Wait}, reason: "no initialize key yet",
		},
		{
			name: "empty member bootstraps when there is neither initialize nor leader",
			obs: newWorld("n2").with(func(o *Observation) {
				noLeader(o)
				o.Cluster.Initialize = nil
				o.PG = Postgres{DataDir: DataDirEmpty}
			}),
			want: []Kind{Bootstrap},
		},
		{
			name: "once adopted, a stopped data directory of the same system follows the leader",
			obs: newWorld("n2").with(func(o *Observation) {
				stopped(o)
			}),
			want: []Kind{StartReplica}, reason: "replica of n1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decideAs(t, tt.obs, tt.want, "", tt.reason)
		})
	}
}
