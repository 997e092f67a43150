package sim

import (
	"math/rand/v2"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// RandomConfig derives a whole run's configuration from a seed, so that a
// seed alone replays a run: 2 to 5 members (mostly 3), 2 to 5 virtual
// minutes, a fault every 5 to 12 s on average, synchronous mode in about a
// third of the runs (half of them quorum commit), remove_data_directory_on_rewind_failure in a quarter,
// and the agent without its fence process in about one run in seven (its
// stale primaries are then classified as needs_watchdog).
func RandomConfig(seed int64) Config {
	r := rand.New(rand.NewPCG(uint64(seed), 0xc0f1))
	members := 3
	switch x := r.IntN(10); {
	case x == 0:
		members = 2
	case x == 1:
		members = 4
	case x == 2:
		members = 5
	}
	dyn := cluster.DefaultDynamicConfig()
	if r.IntN(3) == 0 {
		dyn.SynchronousMode = cluster.SyncOn
	}
	if r.IntN(4) == 0 {
		dyn.PostgreSQL.RemoveDataDirectoryOnRewindFailure = true
	}
	cfg := Config{
		Members:        members,
		Seed:           seed,
		Duration:       2*time.Minute + time.Duration(r.Int64N(int64(3*time.Minute))),
		Dynamic:        dyn,
		NoFenceProcess: r.IntN(7) == 0,
		Faults: FaultConfig{
			MeanInterval: 5*time.Second + time.Duration(r.Int64N(int64(7*time.Second))),
		},
	}
	// Drawn last, so that the other settings of a seed stay what they were
	// before quorum mode existed.
	randomQuorum(r, &cfg.Dynamic)
	return cfg
}

// randomQuorum turns half of the synchronous runs into quorum commit runs
// (synchronous_mode quorum), with synchronous_node_count 1 or 2 and
// synchronous_mode_strict in a quarter of them.
func randomQuorum(r *rand.Rand, dyn *cluster.DynamicConfig) {
	if dyn.SynchronousMode != cluster.SyncOn || r.IntN(2) == 0 {
		return
	}
	dyn.SynchronousMode = cluster.SyncQuorum
	dyn.SynchronousNodeCount = 1 + r.IntN(2)
	dyn.SynchronousModeStrict = r.IntN(4) == 0
}
