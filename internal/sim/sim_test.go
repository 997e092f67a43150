package sim

import (
	"flag"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	flagSeeds  = flag.Int("sim.seeds", 300, "number of random seeds TestSimulatorRandomSchedules runs")
	flagFirst  = flag.Int64("sim.first", 1, "first seed TestSimulatorRandomSchedules runs")
	flagSeed   = flag.Int64("sim.seed", 0, "replay this one seed of TestSimulatorRandomSchedules (with -v: print its whole trace)")
	flagBudget = flag.Duration("sim.budget", 45*time.Second, "wall-clock budget of TestSimulatorRandomSchedules: no new seed starts after it")
	flagStrict = flag.Bool("sim.strict", false, "fail on violations of known, already reported issues too (KnownIssues)")
)

// TestSimulatorRandomSchedules runs the simulator on many seeds, each with
// a random configuration and fault schedule (RandomConfig), and fails on
// any safety violation, except those the checker attributes to an already
// reported issue (KnownIssues), which are logged; -sim.strict fails on
// those too. Replay a seed with
//
//	go test ./internal/sim -run TestSimulatorRandomSchedules -sim.seed=S -v
func TestSimulatorRandomSchedules(t *testing.T) {
	if *flagSeed != 0 {
		replay(t, *flagSeed)
		return
	}
	n := *flagSeeds
	if testing.Short() {
		n = min(n, 50)
	}
	start := time.Now()
	results := make([]*Result, n)
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n || time.Since(start) > *flagBudget {
					return
				}
				r := Run(RandomConfig(*flagFirst + int64(i)))
				results[i] = &r
			}
		}()
	}
	wg.Wait()

	var sum summary
	for _, r := range results {
		if r == nil {
			continue
		}
		sum.add(r)
		sum.modes[string(RandomConfig(r.Seed).Dynamic.SynchronousMode)]++
		if !r.Failed() {
			continue
		}
		v := r.Violations[0]
		replay := fmt.Sprintf("replay: go test ./internal/sim -run TestSimulatorRandomSchedules -sim.seed=%d -v", r.Seed)
		if v.Known != "" && !*flagStrict {
			t.Logf("KNOWN ISSUE %s\n  %s", v, replay)
			continue
		}
		t.Errorf("%s\n  last events:\n    %s\n  %s", v, strings.Join(tail(r.Trace, 40), "\n    "), replay)
	}
	if sum.runs < n {
		t.Logf("wall-clock budget %s reached: ran %d of %d seeds", *flagBudget, sum.runs, n)
	}
	t.Logf("%d seeds (%d..%d) in %s\n%s", sum.runs, *flagFirst, *flagFirst+int64(sum.runs)-1,
		time.Since(start).Round(time.Millisecond), sum.String())
}

// replay runs one seed and prints its trace.
func replay(t *testing.T, seed int64) {
	cfg := RandomConfig(seed)
	cfg.TraceLen = 1 << 20
	r := Run(cfg)
	t.Logf("seed %d: %d members, %s, synchronous_mode %s (node count %d, strict %t), fence process %t, faults every %s\n%s",
		seed, cfg.Members, cfg.Duration, cfg.Dynamic.SynchronousMode, cfg.Dynamic.SynchronousNodeCount,
		cfg.Dynamic.SynchronousModeStrict, !cfg.NoFenceProcess, cfg.Faults.MeanInterval,
		strings.Join(r.Trace, "\n"))
	var sum summary
	sum.add(&r)
	t.Logf("\n%s", sum.String())
	for _, v := range r.Violations {
		if v.Known != "" && !*flagStrict {
			t.Logf("KNOWN ISSUE %s", v)
			continue
		}
		t.Error(v)
	}
}

func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// summary aggregates the statistics of many runs.
type summary struct {
	runs, failed, unhealed, commits, lost, promotions, forks, refused int
	ttlChanges, leaseMoves, unresolvedMoves                           int
	virtual                                                           time.Duration
	gaps                                                              []time.Duration
	stall                                                             time.Duration
	needsWatchdog                                                     map[string]int
	unhealedWhy                                                       map[string]int
	violations                                                        map[string]int
	modes                                                             map[string]int // runs per synchronous_mode
}

func (s *summary) add(r *Result) {
	if s.needsWatchdog == nil {
		s.needsWatchdog, s.unhealedWhy, s.violations = map[string]int{}, map[string]int{}, map[string]int{}
		s.modes = map[string]int{}
	}
	st := r.Stats
	s.runs++
	s.virtual += st.Virtual
	s.commits += st.Commits
	s.lost += st.LostCommits
	s.promotions += st.Promotions
	s.ttlChanges += st.TTLChanges
	s.leaseMoves += st.LeaseMoves
	s.unresolvedMoves += st.UnresolvedMoves
	s.forks += st.TimelineForks
	s.refused += st.Refused
	s.gaps = append(s.gaps, st.NoPrimary...)
	s.stall = max(s.stall, st.MaxCommitStall)
	for k, v := range st.NeedsWatchdog {
		s.needsWatchdog[k] += v
	}
	if r.Failed() {
		s.failed++
		v := r.Violations[0]
		key := v.Kind
		if v.Known != "" {
			key += " (known: " + v.Known + ")"
		}
		s.violations[key]++
		return
	}
	if !st.Healed {
		s.unhealed++
		s.unhealedWhy[unhealedClass(st.Unhealed)]++
	}
}

// unhealedClass reduces an Unhealed text to its first reason, without
// member names and numbers.
func unhealedClass(u string) string {
	first, _, _ := strings.Cut(u, "; ")
	var b strings.Builder
	for _, f := range strings.Fields(first) {
		if strings.IndexFunc(f, func(r rune) bool { return r >= '0' && r <= '9' }) >= 0 {
			f = "#"
		}
		b.WriteString(f + " ")
	}
	return strings.TrimSpace(b.String())
}

func (s *summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  virtual time %s, %d commits, %d promotions\n", s.virtual.Round(time.Second), s.commits, s.promotions)
	fmt.Fprintf(&b, "  ttl changes: %d, lease moves confirmed: %d, move transactions left unresolved: %d\n",
		s.ttlChanges, s.leaseMoves, s.unresolvedMoves)
	if len(s.modes) > 0 {
		fmt.Fprintf(&b, "  synchronous_mode: %s\n", mapString(s.modes))
	}
	fmt.Fprintf(&b, "  violations: %d runs: %s\n", s.failed, mapString(s.violations))
	fmt.Fprintf(&b, "  needs_watchdog (stale primary the agent could not prevent): %s\n", mapString(s.needsWatchdog))
	fmt.Fprintf(&b, "  acknowledged commits lost by asynchronous failover: %d; timeline forks: %d; refused agents: %d\n",
		s.lost, s.forks, s.refused)
	if len(s.gaps) > 0 {
		g := slices.Clone(s.gaps)
		slices.Sort(g)
		fmt.Fprintf(&b, "  time without a writable primary: %d periods, median %s, p90 %s, max %s; longest commit stall %s\n",
			len(g), g[len(g)/2].Round(time.Millisecond), g[len(g)*9/10].Round(time.Millisecond),
			g[len(g)-1].Round(time.Millisecond), s.stall.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "  not healed at the end: %d runs\n", s.unhealed)
	type kv struct {
		k string
		v int
	}
	var why []kv
	for k, v := range s.unhealedWhy {
		why = append(why, kv{k, v})
	}
	sort.Slice(why, func(i, j int) bool { return why[i].v > why[j].v || why[i].v == why[j].v && why[i].k < why[j].k })
	for _, w := range why[:min(len(why), 8)] {
		fmt.Fprintf(&b, "    %4d  %s\n", w.v, w.k)
	}
	return b.String()
}

func mapString(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// TestDeterministic checks that a seed replays exactly.
func TestDeterministic(t *testing.T) {
	for _, seed := range []int64{3, 17} {
		a, b := Run(RandomConfig(seed)), Run(RandomConfig(seed))
		if !slices.Equal(a.Trace, b.Trace) || fmt.Sprint(a.Stats) != fmt.Sprint(b.Stats) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
	}
}
