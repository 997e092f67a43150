package ha

import (
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// TestDecideRejoinFailure covers what a member does after a failed
// pg_rewind, pg_basebackup or post-rewind start: a transient failure is
// retried once its backoff has passed, against the current leader; only a
// failure that retrying cannot fix waits for an operator (or re-clones when
// remove_data_directory_on_rewind_failure allows it).
func TestDecideRejoinFailure(t *testing.T) {
	// n1 was the primary; n2 leads on timeline 2 now.
	behind := func(f *RejoinFailure) Observation {
		return newWorld("n1").with(func(o *Observation) {
			o.PG = Postgres{DataDir: DataDirInitialized, SystemID: "7000", ControlTimeline: 1, DownSince: t0.Add(-time.Minute)}
			o.Lease.KeyOnMyLease = false
			o.Cluster.Leader = &cluster.Leader{Name: "n2"}
			o.Cluster.Members = map[string]*cluster.Member{
				"n1": {Name: "n1", State: cluster.StateRewindFailed, Timeline: 1},
				"n2": {Name: "n2", Role: cluster.RolePrimary, State: cluster.StateRunning, Timeline: 2, CheckpointAfterPromote: ptr(true)},
				"n3": {Name: "n3", Role: cluster.RoleReplica, State: cluster.StateRunning, Timeline: 2},
			}
			o.PG.Rejoin = f
		})
	}
	transient := func(retryIn time.Duration) *RejoinFailure {
		return &RejoinFailure{Step: "pg_rewind", Source: "n2", Reason: "the source closed the connection", Attempts: 2, RetryAt: t0.Add(retryIn)}
	}
	permanent := func(step string) *RejoinFailure {
		return &RejoinFailure{Step: step, Source: "n2", NeedsOperator: true, Attempts: 1,
			Reason: "pg_rewind stopped while copying files from the source: the target data directory is only partly rewound"}
	}
	tests := []struct {
		name       string
		obs        Observation
		want       []Kind
		target     string
		reason     string
		notReasons []string
	}{
		{
			name: "transient rewind failure waits out its backoff",
			obs:  behind(transient(3 * time.Second)),
			want: []Kind{Wait}, reason: "retrying against the current leader in 3s",
			notReasons: []string{"operator", "reinit"},
		},
		{
			// The fault-injection finding: the leader restarted in place, so
			// neither the leader nor its timeline changed; the failure must
			// still be retried.
			name: "transient rewind failure is retried against the same leader once the backoff passed",
			obs:  behind(transient(0)),
			want: []Kind{Rewind}, target: "n2", reason: "retrying pg_rewind (attempt 3",
		},
		{
			name: "transient rewind failure is retried against the new leader",
			obs: func() Observation {
				o := behind(transient(-time.Second))
				o.Cluster.Leader = &cluster.Leader{Name: "n3"}
				o.Cluster.Members["n3"] = &cluster.Member{Name: "n3", Role: cluster.RolePrimary, State: cluster.StateRunning, Timeline: 3, CheckpointAfterPromote: ptr(true)}
				return o
			}(),
			want: []Kind{Rewind}, target: "n3",
		},
		{
			name: "transient failure is never a reason to re-clone, even when allowed",
			obs: func() Observation {
				o := behind(transient(0))
				o.Config.PostgreSQL.RemoveDataDirectoryOnRewindFailure = true
				return o
			}(),
			want: []Kind{Rewind}, target: "n2",
		},
		{
			name: "retry waits while the leader is not running",
			obs: func() Observation {
				o := behind(transient(0))
				o.Cluster.Members["n2"].State = cluster.StateStarting
				return o
			}(),
			want: []Kind{Wait}, reason: "not running; waiting",
		},
		{
			name: "a target left unusable waits for regent reinit",
			obs:  behind(permanent("pg_rewind")),
			want: []Kind{Wait}, reason: "retrying cannot help: pg_rewind stopped while copying",
		},
		{
			name: "the operator's instruction names the member",
			obs:  behind(permanent("pg_rewind")),
			want: []Kind{Wait}, reason: "waiting for an operator: run `regent reinit n1`",
		},
		{
			name: "a target left unusable re-clones when remove_data_directory_on_rewind_failure is on",
			obs: func() Observation {
				o := behind(permanent("pg_rewind"))
				o.Config.PostgreSQL.RemoveDataDirectoryOnRewindFailure = true
				return o
			}(),
			want: []Kind{Reclone}, target: "n2",
		},
		{
			name: "re-cloning waits for a running leader",
			obs: func() Observation {
				o := behind(permanent("pg_rewind"))
				o.Config.PostgreSQL.RemoveDataDirectoryOnRewindFailure = true
				o.Cluster.Members["n2"].State = cluster.StateCrashed
				return o
			}(),
			want: []Kind{Wait}, reason: "waiting for a running leader",
		},
		{
			name: "an unusable target is not started read-only for an election",
			obs: func() Observation {
				o := behind(permanent("pg_rewind"))
				o.Cluster.Leader = nil
				return o
			}(),
			want: []Kind{Wait}, reason: "regent reinit n1",
		},
		{
			name: "start after a rewind that failed transiently waits, then starts again",
			obs: func() Observation {
				o := behind(&RejoinFailure{Step: "start", Source: "n2", Reason: "start: the source refused the connection", Attempts: 1, RetryAt: t0.Add(time.Second)})
				o.PG.ControlTimeline = 2 // rewound
				return o
			}(),
			want: []Kind{Wait}, reason: "start from n2 failed",
		},
		{
			name: "start after a rewind is retried once the backoff passed",
			obs: func() Observation {
				o := behind(&RejoinFailure{Step: "start", Source: "n2", Reason: "start: the source refused the connection", Attempts: 1, RetryAt: t0})
				o.PG.ControlTimeline = 2
				return o
			}(),
			want: []Kind{StartReplica}, target: "n2",
		},
		{
			name: "clone failing transiently waits out its backoff",
			obs: newWorld("n3").with(func(o *Observation) {
				o.PG = Postgres{DataDir: DataDirEmpty}
				o.PG.Rejoin = &RejoinFailure{Step: "pg_basebackup", Source: "n1", Reason: "the source is shutting down", Attempts: 4, RetryAt: t0.Add(8 * time.Second)}
			}),
			want: []Kind{Wait}, reason: "attempt 4, transient",
		},
		{
			name: "clone is retried once the backoff passed",
			obs: newWorld("n3").with(func(o *Observation) {
				o.PG = Postgres{DataDir: DataDirEmpty}
				o.PG.Rejoin = &RejoinFailure{Step: "pg_basebackup", Source: "n1", Reason: "the source is shutting down", Attempts: 4, RetryAt: t0}
			}),
			want: []Kind{Clone}, target: "n1",
		},
		{
			name: "clone that cannot succeed waits for an operator even when re-cloning is allowed",
			obs: newWorld("n3").with(func(o *Observation) {
				o.PG = Postgres{DataDir: DataDirEmpty}
				o.Config.PostgreSQL.RemoveDataDirectoryOnRewindFailure = true
				o.PG.Rejoin = &RejoinFailure{Step: "pg_basebackup", Source: "n1", NeedsOperator: true, Reason: "the source rejected the password", Attempts: 1}
			}),
			want: []Kind{Wait}, reason: "regent reinit n3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decideAs(t, tt.obs, tt.want, tt.target, tt.reason)
			for _, no := range tt.notReasons {
				if strings.Contains(d.Reason, no) {
					t.Fatalf("reason %q mentions %q", d.Reason, no)
				}
			}
		})
	}
}
