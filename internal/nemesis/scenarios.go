package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Scenario is one row of the fault matrix (numbers follow
// ../shared/reference/reliability.md §5.2).
type Scenario struct {
	Num   int
	Name  string
	Modes []Mode
	// Failsafe runs the scenario with failsafe_mode on.
	Failsafe bool
	// Unavailable, if set, says why the scenario cannot run in env.
	Unavailable func(*Env) string
	// Inject applies the fault, holds it, and may heal parts of it; the
	// runner heals the rest.
	Inject func(context.Context, *Run) error
	// Check adds scenario-specific rules on the result.
	Check func(Result) []string
	// ConvergeWithin bounds the time from the end of the heal until the
	// cluster has converged (one leader, every other member streaming
	// from it); zero means defaultConvergeBound. A longer bound says why
	// in a comment.
	ConvergeWithin time.Duration
	// OperatorRequired, when set, documents why this scenario cannot
	// converge without an operator: a run that does not converge then
	// does not fail, and its notes say "operator required: <why>". Keep
	// it for faults no automatic action may repair.
	OperatorRequired string
}

// convergeBound is the scenario's bound for the converged checker.
func (s Scenario) convergeBound() time.Duration {
	if s.ConvergeWithin > 0 {
		return s.ConvergeWithin
	}
	return defaultConvergeBound
}

// ID names a scenario row: its number plus a suffix for variants.
func (s Scenario) ID() string {
	if s.Failsafe {
		return fmt.Sprintf("%d-failsafe", s.Num)
	}
	return fmt.Sprint(s.Num)
}

// hold is how long a fault that should cause a failover stays in place:
// well beyond the TTL (5 s) plus promotion.
const hold = 12 * time.Second

var (
	both = []Mode{Async, Sync}
	// all adds quorum commit to the scenarios that matter most for it.
	all = []Mode{Async, Sync, Quorum}
)

// maxFailovers returns a check allowing at most n failovers.
func maxFailovers(n int) func(Result) []string {
	return func(res Result) []string {
		if res.Failovers > n {
			return []string{fmt.Sprintf("%d failovers, at most %d expected", res.Failovers, n)}
		}
		return nil
	}
}

// Scenarios is the whole matrix.
func Scenarios() []Scenario {
	return []Scenario{
		{Num: 1, Name: "kill -9 the primary's postmaster (agent alive)", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.KillPostmaster(r.Leader)
				// The agent restarts it in place; wait for writes there.
				n := r.W.AckCount(r.Leader)
				if !r.W.WaitAcks(ctx, r.Leader, n+5, 40*time.Second) {
					r.Notef("no in-place recovery within 40 s")
				}
				return nil
			},
			Check: maxFailovers(0)},
		{Num: 2, Name: "kill -9 the primary's agent (PostgreSQL keeps running)", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.KillAgent(r.Leader)
				r.ExpectNewLeader(ctx)
				return r.Hold(ctx, 2*time.Second)
			}},
		{Num: 3, Name: "kill -9 agent and postmaster together (host loss)", Modes: all,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.KillHost(r.Leader)
				r.ExpectNewLeader(ctx)
				return r.Hold(ctx, 2*time.Second)
			}},
		{Num: 4, Name: "SIGSTOP the whole primary node for > TTL, then SIGCONT", Modes: all,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.FreezeHost(r.Leader)
				r.ExpectNewLeader(ctx)
				if err := r.Hold(ctx, 3*time.Second); err != nil {
					return err
				}
				r.Env.ResumeAll()
				return r.Hold(ctx, 5*time.Second) // let the old node act on its resume
			}},
		{Num: 5, Name: "SIGSTOP only the primary's agent for > TTL", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.FreezeAgent(r.Leader)
				r.ExpectNewLeader(ctx)
				if err := r.Hold(ctx, 2*time.Second); err != nil {
					return err
				}
				r.Env.ResumeAll()
				return r.Hold(ctx, 5*time.Second)
			}},
		{Num: 6, Name: "SIGSTOP only the primary's postmaster (backends keep running)", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.FreezePostmaster(r.Leader)
				// Existing sessions keep working, new ones hang. The agent
				// must notice and restart it (primary_start_timeout, 30 s).
				t0 := time.Now()
				deadline := t0.Add(60 * time.Second)
				for time.Now().Before(deadline) {
					if err := r.Hold(ctx, time.Second); err != nil {
						return err
					}
					if time.Since(t0) < 5*time.Second {
						continue
					}
					if l := r.Env.Leader(ctx); l != "" {
						if conn, err := connect(ctx, r.Env.DSN(l), nil); err == nil {
							closeQuietly(conn)
							r.Notef("new connections to the leader (%s) possible again %s after the postmaster froze", l, time.Since(t0).Round(100*time.Millisecond))
							return nil
						}
					}
				}
				r.Failf("new connections still impossible 60 s after the postmaster froze")
				return nil
			}},
		{Num: 7, Name: "partition the primary from every etcd member", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.CutFromEtcd(r.Leader)
				r.ExpectNewLeader(ctx)
				return r.Hold(ctx, 3*time.Second)
			}},
		{Num: 7, Name: "partition the primary from every etcd member, failsafe_mode on", Modes: both, Failsafe: true,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.CutFromEtcd(r.Leader)
				return r.Hold(ctx, hold)
			},
			Check: maxFailovers(0)},
		{Num: 8, Name: "partition the primary from etcd and cut every link to it from the other members", Modes: all,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.CutFromEtcd(r.Leader)
				r.Env.CutFromPeers(r.Leader)
				r.ExpectNewLeader(ctx)
				return r.Hold(ctx, 3*time.Second)
			}},
		{Num: 9, Name: "cut replication to the primary (etcd reachable)", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.CutReplication(r.Leader)
				return r.Hold(ctx, hold)
			},
			Check: maxFailovers(0)},
		{Num: 11, Name: "etcd quorum loss (2 of 3 killed) for > TTL, then restore", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.KillEtcd(0)
				r.Env.KillEtcd(1)
				if err := r.Hold(ctx, hold); err != nil {
					return err
				}
				for _, i := range []int{0, 1} {
					if err := r.Env.StartEtcd(i); err != nil {
						return err
					}
				}
				return nil
			},
			Check: maxFailovers(1)},
		{Num: 12, Name: "etcd leader killed and restarted 5 times (quorum kept)", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				return onEtcdLeader(ctx, r, 5, 2*time.Second, r.Env.KillEtcd, r.Env.StartEtcd)
			},
			Check: maxFailovers(0)},
		{Num: 13, Name: "etcd leader stalled (SIGSTOP 3 s, as CPU starvation or a stuck disk) 3 times", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				return onEtcdLeader(ctx, r, 3, 3*time.Second, r.Env.PauseEtcd, func(int) error { r.Env.ResumeAll(); return nil })
			},
			Check: maxFailovers(0)},
		{Num: 15, Name: "replicas lag beyond maximum_lag_on_failover when the primary dies", Modes: []Mode{Async},
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.CutReplication(r.Leader)
				// About 4 MB of WAL the replicas cannot receive.
				if err := r.Env.Exec(ctx, r.Leader, "CREATE TABLE IF NOT EXISTS nemesis_bulk AS SELECT 1 AS x WHERE false; "+
					"INSERT INTO nemesis_bulk SELECT g FROM generate_series(1, 100000) g"); err != nil {
					return fmt.Errorf("bulk write: %w", err)
				}
				// The replicas judge their lag by the position the leader
				// last published; let it publish the bulk write.
				if err := r.WaitPublished(ctx, 10*time.Second, r.Leader); err != nil {
					return err
				}
				r.Env.KillHost(r.Leader)
				if l := r.WaitNewLeader(ctx, hold); l != "" {
					r.Failf("%s was promoted although every replica lagged beyond maximum_lag_on_failover", l)
				}
				// Bring the old primary back: it holds every write and
				// takes the leadership again.
				r.Env.HealLinks()
				return r.Env.StartAgent(r.Leader)
			}},
		{Num: 16, Name: "double failure: the synchronous standby dies, then the primary", Modes: []Mode{Sync, Quorum},
			// Two members come back at the heal, both after a kill: each
			// runs crash recovery and may need a pg_rewind (the killed
			// standby can hold WAL the new leader never got), and each
			// rewind waits for the leader's post-promote checkpoint. In
			// quorum mode no member was promoted, so a leader is elected
			// among the restarted members first. Two rejoins in turn,
			// each of the default path's length: 90 s.
			ConvergeWithin: 90 * time.Second,
			Inject: func(ctx context.Context, r *Run) error {
				v, err := r.Env.View(ctx)
				if err != nil || v.Sync == nil || len(v.Sync.Members) == 0 {
					return fmt.Errorf("no synchronous standby published: %v", err)
				}
				standby := v.Sync.Members[0]
				r.Env.KillHost(standby)
				if r.Env.opts.Mode == Quorum {
					// Both at once (CNPG's scenario): the survivor cannot
					// show that it holds every commit acknowledged by
					// ANY 1 of the two, so it must refuse.
					r.Env.KillHost(r.Leader)
					if l := r.WaitNewLeader(ctx, hold); l != "" {
						r.Failf("%s was promoted although the dead standby %s may hold commits it lacks", l, standby)
					} else {
						r.Notef("the survivor refused promotion for %s, as required", hold)
						if v, err := r.Env.View(ctx); err == nil && !hasEvent(v, cluster.EventPromotionRefused) {
							r.Failf("the refusal is not recorded in the DCS events key")
						}
					}
					return nil
				}
				// The primary moves the synchronous role to the remaining
				// replica (or, in strict mode, waits).
				_, moved := r.WaitView(ctx, 20*time.Second, func(v *cluster.Cluster) bool {
					return v.Sync != nil && len(v.Sync.Members) > 0 && v.Sync.Members[0] != standby
				})
				r.Notef("synchronous role moved before the second failure: %v", moved)
				r.Env.KillHost(r.Leader)
				l := r.WaitNewLeader(ctx, 30*time.Second)
				if moved && l == "" {
					r.Failf("the remaining synchronous standby was not promoted")
				}
				return r.Hold(ctx, 2*time.Second)
			}},
		{Num: 17, Name: "disk full on the primary's data directory", Modes: both,
			Unavailable: func(e *Env) string {
				if !e.HasOwnFS() {
					return "needs a filesystem per member (mount privileges)"
				}
				return ""
			},
			Inject: func(ctx context.Context, r *Run) error {
				filler := filepath.Join(r.Env.Cluster.DataDir(r.Leader), "nemesis-filler")
				fillDisk(filler)
				defer os.Remove(filler)
				if err := r.Hold(ctx, 20*time.Second); err != nil {
					return err
				}
				if v, err := r.Env.View(ctx); err == nil {
					r.Notef("leader after 20 s of a full disk: %q", v.LeaderName())
				}
				return nil
			}},
		{Num: 18, Name: "frozen disk on the primary (fsfreeze of its data directory for 20 s)", Modes: both,
			Unavailable: func(e *Env) string {
				if !e.CanFreeze() {
					return "needs an ext4 filesystem per member on a loop device (mount privileges)"
				}
				return ""
			},
			Inject: func(ctx context.Context, r *Run) error {
				if err := r.Env.FreezeDisk(r.Leader); err != nil {
					return err
				}
				if err := r.Hold(ctx, 20*time.Second); err != nil {
					return err
				}
				if v, err := r.Env.View(ctx); err == nil {
					r.Notef("leader after 20 s of a frozen disk: %q", v.LeaderName())
				}
				r.Env.ThawDisks()
				return nil
			}},
		{Num: 20, Name: "two concurrent switchover requests to different candidates", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				codes := concurrentSwitchovers(ctx, r)
				ok := 0
				for _, c := range codes {
					if c == http.StatusOK {
						ok++
					}
				}
				r.Notef("switchover answers %v", codes)
				if ok != 1 {
					r.Failf("%d switchover requests succeeded, exactly 1 expected (answers %v)", ok, codes)
				}
				r.ExpectNewLeader(ctx)
				return r.Hold(ctx, 2*time.Second)
			},
			Check: maxFailovers(1)},
		{Num: 21, Name: "power loss of every node incl. etcd, stale ex-leader restarted first", Modes: both,
			// Every member and etcd lost power: at the heal two members
			// start from crash recovery after a leader election that
			// itself waits for them, and the stale ex-leader may have to
			// be rewound against whichever of them wins. As scenario 16:
			// 90 s.
			ConvergeWithin: 90 * time.Second,
			Inject: func(ctx context.Context, r *Run) error {
				// Make the first leader stale: fail it over and keep it down.
				old := r.Leader
				r.Env.KillHost(old)
				r.ExpectNewLeader(ctx)
				if err := r.Hold(ctx, 2*time.Second); err != nil {
					return err
				}
				for _, m := range others(r.Env.Members, old) {
					r.Env.KillHost(m)
				}
				for i := range r.Env.etcd {
					r.Env.KillEtcd(i)
				}
				for i := range r.Env.etcd {
					if err := r.Env.StartEtcd(i); err != nil {
						return err
					}
				}
				if err := r.Env.StartAgent(old); err != nil {
					return err
				}
				if err := r.Hold(ctx, 8*time.Second); err != nil {
					return err
				}
				if v, err := r.Env.View(ctx); err == nil && v.LeaderName() == old {
					r.Failf("the stale ex-leader %s took the leader key", old)
				}
				return nil
			}},
		{Num: 22, Name: "network flapping: the primary cut from etcd on and off (1-5 s) for 40 s", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 22))
				end := time.Now().Add(40 * time.Second)
				for time.Now().Before(end) {
					r.Env.CutFromEtcd(r.Leader)
					if err := r.Hold(ctx, time.Duration(1000+rng.IntN(4000))*time.Millisecond); err != nil {
						return err
					}
					r.Env.HealEtcdLinks(r.Leader)
					if err := r.Hold(ctx, time.Duration(1000+rng.IntN(4000))*time.Millisecond); err != nil {
						return err
					}
				}
				return nil
			},
			Check: maxFailovers(3)},
		{Num: 24, Name: "switchover while a stalled logical walsender holds the shutdown", Modes: both,
			Inject: func(ctx context.Context, r *Run) error {
				stop, err := stalledLogicalConsumer(ctx, r)
				if err != nil {
					return err
				}
				defer stop()
				if err := r.WaitPublished(ctx, 30*time.Second, r.Replicas...); err != nil {
					return err
				}
				t0 := time.Now()
				codes := []int{switchover(ctx, r, candidate(ctx, r))}
				if codes[0] != http.StatusOK {
					r.Failf("switchover answered %v", codes)
				}
				if r.WaitNewLeader(ctx, 30*time.Second) == "" {
					r.Failf("switchover did not complete within 30 s")
				} else {
					r.Notef("switchover completed in %s", time.Since(t0).Round(time.Millisecond))
				}
				return r.Hold(ctx, 2*time.Second)
			}},
		{Num: 25, Name: "commits cancelled while waiting for the synchronous standby, then the primary crashes", Modes: []Mode{Sync, Quorum},
			Inject: func(ctx context.Context, r *Run) error {
				r.Env.CutReplication(r.Leader)
				// Commits now wait for the standby; the workload gives up
				// after its timeout and cancels them (committed locally).
				if err := r.Hold(ctx, 5*time.Second); err != nil {
					return err
				}
				if ids, err := ReadIDs(ctx, r.Env.DSN(r.Leader)); err == nil {
					r.W.See(ids)
				}
				r.Env.KillHost(r.Leader)
				r.ExpectNewLeader(ctx)
				return r.Hold(ctx, 2*time.Second)
			}},
	}
}

// fillDisk writes the file until the filesystem is full.
func fillDisk(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	// Large writes first, then page-sized ones for the last free blocks.
	for _, size := range []int{1 << 20, 4 << 10} {
		buf := bytes.Repeat([]byte{0xAB}, size)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
	}
	_ = f.Sync()
}

// switchover asks the leader's REST API to hand over to candidate and
// returns the HTTP status (0 when there was no answer).
func switchover(ctx context.Context, r *Run, candidate string) int {
	body, _ := json.Marshal(map[string]string{"leader": r.Leader, "candidate": candidate})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Env.Cluster.APIURL(r.Leader)+"/switchover", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.SetBasicAuth("regent", r.Env.Cluster.Password("restapi"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// concurrentSwitchovers sends one switchover request per replica at once.
func concurrentSwitchovers(ctx context.Context, r *Run) []int {
	codes := make([]int, len(r.Replicas))
	var wg sync.WaitGroup
	for i, c := range r.Replicas {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = switchover(ctx, r, c) }()
	}
	wg.Wait()
	return codes
}

// stalledLogicalConsumer creates a logical slot on the leader, attaches
// pg_recvlogical to it and stops that client with SIGSTOP after writing
// enough WAL that its walsender has output pending. It returns a function
// that kills the client and drops the slot wherever it lives.
func stalledLogicalConsumer(ctx context.Context, r *Run) (func(), error) {
	slot := "nemesis_logical"
	if err := r.Env.Exec(ctx, r.Leader, "SELECT pg_create_logical_replication_slot('"+slot+"', 'test_decoding')"); err != nil &&
		!strings.Contains(err.Error(), "already exists") {
		return nil, fmt.Errorf("creating logical slot: %w", err)
	}
	m, _ := r.Env.Cluster.Member(r.Leader)
	cmd := exec.Command("pg_recvlogical", "-h", "127.0.0.1", "-p", fmt.Sprint(m.PGPort),
		"-U", "postgres", "-d", "postgres", "-S", slot, "--start", "-f", "/dev/null")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+r.Env.Cluster.Password("superuser"))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting pg_recvlogical: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	_ = r.Hold(ctx, time.Second)
	_ = cmd.Process.Signal(syscall.SIGSTOP)
	if err := r.Env.Exec(ctx, r.Leader, "CREATE TABLE IF NOT EXISTS nemesis_bulk AS SELECT 1 AS x WHERE false; "+
		"INSERT INTO nemesis_bulk SELECT g FROM generate_series(1, 200000) g"); err != nil {
		r.Notef("bulk write for the logical consumer: %v", err)
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		// The slot holds WAL on a small data disk: drop it wherever it is,
		// ending the session that may still hold it.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, member := range r.Env.Members {
			for ctx.Err() == nil {
				err := r.Env.Exec(ctx, member, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '"+slot+"' AND active_pid IS NOT NULL; "+
					"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '"+slot+"'")
				if err == nil || strings.Contains(err.Error(), "read-only") || strings.Contains(err.Error(), "recovery") {
					break
				}
				_ = r.Hold(ctx, 500*time.Millisecond)
			}
		}
	}, nil
}

// candidate is a replica a switchover may name: in synchronous modes the
// published synchronous standby, else the first replica.
func candidate(ctx context.Context, r *Run) string {
	if r.Env.opts.Mode.synchronous() {
		if v, err := r.Env.View(ctx); err == nil && v.Sync != nil && len(v.Sync.Members) > 0 {
			return v.Sync.Members[0]
		}
	}
	return r.Replicas[0]
}

// onEtcdLeader applies fault to the current etcd leader n times, keeping
// it for d, then undoing it and waiting d again.
func onEtcdLeader(ctx context.Context, r *Run, n int, d time.Duration, fault func(int), undo func(int) error) error {
	for range n {
		i := max(r.Env.EtcdLeader(ctx), 0)
		fault(i)
		if err := r.Hold(ctx, d); err != nil {
			return err
		}
		if err := undo(i); err != nil {
			return err
		}
		if err := r.Hold(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// hasEvent reports whether the DCS events key holds an event of kind.
func hasEvent(v *cluster.Cluster, kind string) bool {
	for _, e := range v.Events {
		if e.Kind == kind {
			return true
		}
	}
	return false
}
