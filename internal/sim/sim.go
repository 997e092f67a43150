package sim

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Config describes one simulated run.
type Config struct {
	// Members is the number of Regent members (default 3).
	Members int
	// Seed makes the run reproducible: the fault schedule, latencies,
	// commit times and every other random choice derive from it.
	Seed int64
	// Duration is the virtual time to simulate (default 3 minutes).
	Duration time.Duration
	// Step is the granularity of the simulation (default 10 ms): commits,
	// replication, lease expiry, timers and invariants advance per step;
	// network messages are delivered at their exact virtual time.
	Step time.Duration
	// Faults is the fault schedule.
	Faults FaultConfig
	// Dynamic is the cluster's dynamic configuration (zero TTL: the
	// defaults of cluster.DefaultDynamicConfig).
	Dynamic cluster.DynamicConfig
	// Tags are per-member tags by member name (m1, m2, ...).
	Tags map[string]cluster.Tags
	// CommitProbability is the chance per step that a writable primary
	// acknowledges a commit (default 0.3).
	CommitProbability float64
	// NoFenceProcess models an agent without its separate fence process
	// (package fence): only the in-process lease guard fences, so a paused
	// or killed agent leaves a writable primary behind. Such cases are
	// classified as needs_watchdog rather than reported as violations.
	NoFenceProcess bool
	// DeadlinesFromConfiguredTTL models the agent before it followed ttl
	// changes, breaking the lease deadline on purpose: leases keep the
	// ttl the agent started with (never moved), while every deadline (the
	// core's, the lease guard's, the fence process's) uses the configured
	// ttl. After a ttl increase the checker must then find violations.
	DeadlinesFromConfiguredTTL bool
	// TraceLen is how many of the last events Result.Trace keeps
	// (default 400).
	TraceLen int
}

func (c Config) withDefaults() Config {
	if c.Members <= 0 {
		c.Members = 3
	}
	if c.Duration <= 0 {
		c.Duration = 3 * time.Minute
	}
	if c.Step <= 0 {
		c.Step = 10 * time.Millisecond
	}
	if c.Dynamic.TTL == 0 {
		c.Dynamic = cluster.DefaultDynamicConfig()
	}
	if c.CommitProbability <= 0 {
		c.CommitProbability = 0.3
	}
	if c.TraceLen <= 0 {
		c.TraceLen = 400
	}
	c.Faults = c.Faults.withDefaults(c.Dynamic)
	return c
}

// Result is the outcome of one run.
type Result struct {
	Seed       int64
	Violations []Violation
	// Trace holds the last events before the end of the run (or before
	// the first violation, which stops the run).
	Trace []string
	Stats Stats
	// Terms lists every period during which a member was a writable
	// primary, in order of their start.
	Terms []Term
	// Faults lists the injected faults with their resolved targets.
	Faults []Fault
}

// Failed reports whether the run found a violation.
func (r Result) Failed() bool { return len(r.Violations) > 0 }

// Violation is a broken safety invariant.
type Violation struct {
	Seed int64
	Step int
	// Time is the virtual time of the step.
	Time time.Duration
	// Kind is "single-writer", "history", "leader-timeline",
	// "acked-lost" (synchronous mode), "panic" or "config".
	Kind   string
	Detail string
	// Known names the already reported issue whose circumstances this
	// violation matches (see KnownIssues), or "".
	Known string
}

func (v Violation) String() string {
	s := fmt.Sprintf("seed %d step %d (t=%s): %s: %s", v.Seed, v.Step, fmtDur(v.Time), v.Kind, v.Detail)
	if v.Known != "" {
		s += " [known issue: " + v.Known + "]"
	}
	return s
}

// KnownIssues describes the reported bugs outside this package that the
// checker recognises by their circumstances, so that a test can tell them
// from new findings. Each entry disappears once its bug is fixed; a
// violation naming an issue that is not (or no longer) listed here counts
// as a new finding.
//
// Fixed and removed: sync-names-after-agent-restart (postgres.New reads
// synchronous_standby_names back), sync-publish-before-catch-up (the core
// publishes a standby only once it flushed SyncSetLSN) and
// ambiguous-release (a hand-over retries its release and never restarts in
// place while it is unresolved). action-after-stall and
// late-history-append are fixed where the agent itself acted after a stop
// (stillHoldsClaim before and after the request); what remains is a stop
// during a request.
var KnownIssues = map[string]string{
	"action-after-stall": "the host is suspended (or frozen) while PostgreSQL is promoting or starting as primary, " +
		"after the agent re-checked its claim (stillHoldsClaim) and issued the request: PostgreSQL completes it when " +
		"the host resumes, before the agent can notice the gap, and is writable for a moment without the leader key. " +
		"Needs a start that stays read-only until the agent confirms the claim (e.g. start as a standby and promote)",
}

// Term is one period during which a member's PostgreSQL was a writable
// primary: from its promotion, start as primary or bootstrap until it
// stopped, was demoted or began a fast shutdown.
type Term struct {
	Member   string
	Timeline int
	// How the term began: "bootstrap", "promote" or "start".
	How        string
	Start, End time.Duration // End is zero while the term runs at the end
	Commits    int
	// FirstCommit and LastCommit are the virtual times of the first and
	// last commit acknowledged in the term (zero without commits).
	FirstCommit, LastCommit time.Duration
}

// Stats summarises a run.
type Stats struct {
	Virtual time.Duration
	Steps   int
	// Loops is the number of HA loops run by all members.
	Loops int
	// Commits is the number of acknowledged commits.
	Commits int
	// LostCommits counts acknowledged commits missing from the WAL of a
	// member promoted after them: asynchronous replication loses them by
	// design (in synchronous mode each one is also a violation).
	LostCommits int
	Promotions  int
	// TTLChanges counts the ttl changes written to the config key
	// (ChangeTTL faults that found a configuration to change).
	TTLChanges int
	// LeaseMoves counts the moves of an agent's keys onto a lease with a
	// new TTL that the DCS confirmed.
	LeaseMoves int
	// UnresolvedMoves counts move transactions whose outcome the agent
	// did not learn (request or reply lost), each retried later.
	UnresolvedMoves int
	// Faults counts injected faults by kind.
	Faults map[string]int
	// NeedsWatchdog counts stale primaries — a member that kept
	// acknowledging commits after another member was promoted — that the
	// agent could not have prevented because it was stopped or dead when
	// its lease deadline passed (so only a watchdog or the fence process
	// could), by cause.
	NeedsWatchdog map[string]int
	// NoPrimary lists the periods without any writable primary, after the
	// first primary appeared.
	NoPrimary []time.Duration
	// FirstPrimary is when the first primary became writable.
	FirstPrimary time.Duration
	// MaxCommitStall is the longest time a writable primary existed
	// without acknowledging any commit (synchronous replication waiting
	// for an absent standby).
	MaxCommitStall time.Duration
	// DualPrimary is the total time two or more members were writable
	// primaries at once (role-based: whether or not both committed).
	DualPrimary time.Duration
	// TimelineForks counts promotions that created a second, different
	// WAL history on a timeline another member already has.
	TimelineForks int
	// Fences counts immediate stops of a primary by a fence (loop, lease
	// guard, fence process).
	Fences int
	// Refused counts agents that stopped with Refuse.
	Refused int
	// Healed reports whether the cluster ended with exactly one writable
	// primary holding the leader key and every other member streaming
	// from it; Unhealed says what was wrong otherwise.
	Healed   bool
	Unhealed string
}

// Run simulates one cluster and checks the invariants after every step. It
// stops at the first violation.
func Run(cfg Config) (res Result) {
	cfg = cfg.withDefaults()
	s := newSim(cfg)
	defer func() {
		// A panic outside the agents' processes is a simulator bug (or
		// one in the code it calls): report it with the seed.
		if r := recover(); r != nil {
			s.violate("panic", fmt.Sprintf("simulator panicked: %v\n%s", r, debug.Stack()))
			res = s.result()
		}
	}()
	if err := cfg.Dynamic.Validate(); err != nil {
		s.violate("config", "invalid dynamic configuration: "+err.Error())
		return s.result()
	}
	s.run()
	return s.result()
}

// Sim is one simulated cluster.
type Sim struct {
	cfg  Config
	dyn  cluster.DynamicConfig
	rng  *rand.Rand
	now  time.Duration
	step int

	events eventQueue
	seq    uint64

	members []*member
	byName  map[string]*member
	dcs     *dcsServer
	net     *network

	check  *checker
	trace  []string
	tracen int

	branchSeq int
	stopped   bool
	injected  []Fault
}

func newSim(cfg Config) *Sim {
	s := &Sim{
		cfg:    cfg,
		dyn:    cfg.Dynamic,
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)),
		byName: map[string]*member{},
		trace:  make([]string, cfg.TraceLen),
	}
	s.check = newChecker(s)
	s.dcs = newDCS(s)
	s.net = newNetwork(cfg.Members)
	for i := range cfg.Members {
		m := newMember(s, i)
		s.members = append(s.members, m)
		s.byName[m.name] = m
	}
	return s
}

func (s *Sim) run() {
	s.scheduleFaults()
	for _, m := range s.members {
		// Agents start within the first second, in random order.
		s.at(time.Duration(s.rng.Int64N(int64(time.Second))), func() { m.startAgent() })
	}
	steps := int(s.cfg.Duration / s.cfg.Step)
	for s.step = 1; s.step <= steps && !s.stopped; s.step++ {
		t := time.Duration(s.step) * s.cfg.Step
		s.runEvents(t)
		s.now = t
		s.dcs.expireLeases()
		for _, m := range s.members {
			m.pg.tick()
		}
		s.tickTimers()
		s.pump()
		for _, m := range s.members {
			m.pg.commitTick()
		}
		s.check.afterStep()
		s.reapProcs()
	}
	if !s.stopped {
		s.check.finish()
	}
}

// runEvents processes every event due up to t in time order, running the
// processes each one wakes.
func (s *Sim) runEvents(t time.Duration) {
	for len(s.events) > 0 && s.events[0].at <= t && !s.stopped {
		ev := heap.Pop(&s.events).(*event)
		if ev.at > s.now {
			s.now = ev.at
		}
		ev.fn()
		s.tickTimers()
		s.pump()
	}
}

// tickTimers fires the expired timers of every member. It runs after
// every event, so a timer fires the moment its process can run again.
func (s *Sim) tickTimers() {
	for _, m := range s.members {
		m.tickTimers()
	}
}

// wakeAt makes sure timers are checked when m's monotonic clock reaches
// deadline (at the current rate; a later check catches rate changes).
func (s *Sim) wakeAt(m *member, deadline time.Time) {
	d := deadline.Sub(m.mono())
	if d < 0 {
		return
	}
	s.at(m.clock.trueAfter(s.now, d)+time.Microsecond, func() {})
}

// pump resumes every process whose wait condition holds, until none does.
func (s *Sim) pump() {
	for round := 0; ; round++ {
		progress := false
		for _, m := range s.members {
			for _, p := range m.procs() {
				if p.ready() {
					p.resume()
					progress = true
					if p.panicked != "" {
						s.violate("panic", fmt.Sprintf("%s of %s panicked: %s", p.name, m.name, p.panicked))
						p.panicked = ""
						m.killAgent("panic")
					}
				}
			}
		}
		if !progress || s.stopped {
			return
		}
		if round > 10000 {
			panic("sim: processes make no progress in virtual time (busy loop)")
		}
	}
}

// reapProcs drops finished processes.
func (s *Sim) reapProcs() {
	for _, m := range s.members {
		m.reap()
	}
}

// at schedules fn at virtual time t (not before now).
func (s *Sim) at(t time.Duration, fn func()) {
	if t < s.now {
		t = s.now
	}
	s.seq++
	heap.Push(&s.events, &event{at: t, seq: s.seq, fn: fn})
}

// after schedules fn d after now.
func (s *Sim) after(d time.Duration, fn func()) { s.at(s.now+d, fn) }

// uniform returns a duration in [lo, hi].
func (s *Sim) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

func (s *Sim) chance(p float64) bool { return s.rng.Float64() < p }

// newBranch returns a new WAL branch identity.
func (s *Sim) newBranch() int {
	s.branchSeq++
	return s.branchSeq
}

// tracef records an event in the trace ring.
func (s *Sim) tracef(format string, args ...any) {
	line := fmt.Sprintf("%9s ", fmtDur(s.now)) + fmt.Sprintf(format, args...)
	s.trace[s.tracen%len(s.trace)] = line
	s.tracen++
}

func (s *Sim) traceLines() []string {
	n := min(s.tracen, len(s.trace))
	out := make([]string, 0, n)
	for i := s.tracen - n; i < s.tracen; i++ {
		out = append(out, s.trace[i%len(s.trace)])
	}
	return out
}

// violate records a violation and stops the run.
func (s *Sim) violate(kind, detail string) { s.violateKnown(kind, detail, "") }

// violateKnown records a violation that matches a known issue ("" none).
func (s *Sim) violateKnown(kind, detail, known string) {
	if _, ok := KnownIssues[known]; !ok {
		known = "" // fixed (or never reported): a new finding
	}
	v := Violation{Seed: s.cfg.Seed, Step: s.step, Time: s.now, Kind: kind, Detail: detail, Known: known}
	s.check.violations = append(s.check.violations, v)
	s.tracef("VIOLATION %s: %s", kind, detail)
	s.stopped = true
}

func (s *Sim) result() Result {
	r := Result{Seed: s.cfg.Seed, Violations: s.check.violations, Trace: s.traceLines()}
	r.Stats = s.check.stats
	r.Stats.Virtual = s.now
	r.Stats.Steps = s.step
	for _, t := range s.check.terms {
		r.Terms = append(r.Terms, t.public())
	}
	r.Faults = s.injected
	return r
}

// fmtDur renders a virtual time compactly (12.345s).
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// event is a scheduled callback.
type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	n := len(old)
	x := old[n-1]
	*q = old[:n-1]
	return x
}

// joinNames renders a name list for traces.
func joinNames(names []string) string { return "[" + strings.Join(names, ",") + "]" }
