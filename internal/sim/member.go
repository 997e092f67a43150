package sim

import (
	"fmt"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// epoch is the zero of every member's monotonic clock, so that observation
// times look like times.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a member's view of time. The monotonic clock runs at rate
// (within ±clock_drift of the DCS's true time) and stops while the host is
// suspended; the boot-time clock runs at the same rate and keeps counting
// through a suspend (CLOCK_BOOTTIME).
type clock struct {
	baseTrue  time.Duration
	baseMono  time.Duration
	baseBoot  time.Duration
	rate      float64
	suspended bool
}

func (c *clock) mono(t time.Duration) time.Duration {
	if c.suspended {
		return c.baseMono
	}
	return c.baseMono + time.Duration(float64(t-c.baseTrue)*c.rate)
}

func (c *clock) boot(t time.Duration) time.Duration {
	return c.baseBoot + time.Duration(float64(t-c.baseTrue)*c.rate)
}

func (c *clock) rebase(t time.Duration) {
	c.baseMono, c.baseBoot, c.baseTrue = c.mono(t), c.boot(t), t
}

func (c *clock) setRate(t time.Duration, rate float64) {
	c.rebase(t)
	c.rate = rate
}

func (c *clock) setSuspended(t time.Duration, on bool) {
	c.rebase(t)
	c.suspended = on
}

// trueAfter estimates the true time at which the monotonic clock, read
// now at t, will have advanced by d (at the current rate).
func (c *clock) trueAfter(t, d time.Duration) time.Duration {
	return t + time.Duration(float64(d)/c.rate)
}

// member is one host: its clock, its PostgreSQL, its agent process (one
// incarnation at a time), its fence processes and their fault state.
type member struct {
	s    *Sim
	idx  int
	name string
	tags cluster.Tags

	clock clock
	pg    *pgServer
	agent *agent // nil while the agent process is not running
	inc   int    // agent incarnations started so far
	// pastLoops counts the HA loops of earlier incarnations.
	pastLoops int

	fences []*fenceProc

	agentPaused int // SIGSTOP of the agent process (and its fence: no)
	nodePaused  int // every process of the host frozen
	suspended   int // host suspended: frozen and the monotonic clock stops

	// avail records when the agent could act: for classifying stale
	// primaries (needs_watchdog).
	avail []availChange
	// claim is the last confirmed lease renewal while this member held
	// the leader key: when it was sent and by which agent incarnation.
	claim claim
	// lateRelease is when a release of the leader key by this member was
	// applied after the agent had given up on the request (0: never).
	lateRelease time.Duration
}

// claim is a leader's last confirmed renewal of the lease carrying the
// leader key.
type claim struct {
	inc      int
	sentTrue time.Duration
	// deadlineTrue is when the agent's lease guard fires for it (the
	// monotonic deadline converted to true time at the claim's rate).
	deadlineTrue time.Duration
}

type availState int

const (
	availUp availState = iota
	availDead
	availPaused
	availNodePaused
	availSuspended
)

var availNames = [...]string{availUp: "agent running", availDead: "agent dead", availPaused: "agent paused", availNodePaused: "node paused", availSuspended: "host suspended"}

type availChange struct {
	at    time.Duration
	state availState
	inc   int
}

func newMember(s *Sim, i int) *member {
	m := &member{s: s, idx: i, name: fmt.Sprintf("m%d", i+1)}
	m.tags = s.cfg.Tags[m.name]
	// Each host's clock runs at its own rate within ±clock_drift.
	eps := s.dyn.ClockDrift
	m.clock = clock{rate: 1 - eps + 2*eps*s.rng.Float64(), baseMono: time.Duration(i) * 1000 * time.Hour}
	m.pg = newPG(m)
	m.avail = []availChange{{at: 0, state: availDead}}
	return m
}

// mono is the member's monotonic clock as a time.Time.
func (m *member) mono() time.Time { return epoch.Add(m.clock.mono(m.s.now)) }

// boot is the member's boot-time clock.
func (m *member) boot() time.Duration { return m.clock.boot(m.s.now) }

// frozen reports whether every process of the host is stopped.
func (m *member) frozen() bool { return m.nodePaused > 0 || m.suspended > 0 }

// agentRunning reports whether the agent process can execute now.
func (m *member) agentRunning() bool {
	return m.agent != nil && m.agentPaused == 0 && !m.frozen()
}

func (m *member) availNow() availState {
	switch {
	case m.suspended > 0:
		return availSuspended
	case m.agent == nil:
		return availDead
	case m.frozen():
		return availNodePaused
	case m.agentPaused > 0:
		return availPaused
	}
	return availUp
}

// noteAvail records a change of the agent's ability to act.
func (m *member) noteAvail() {
	st, inc := m.availNow(), m.inc
	if last := m.avail[len(m.avail)-1]; last.state == st && last.inc == inc {
		return
	}
	m.avail = append(m.avail, availChange{at: m.s.now, state: st, inc: inc})
}

// downDuring returns how the agent incarnation inc was prevented from
// acting at some time in [from, to], or "" when it ran throughout.
func (m *member) downDuring(inc int, from, to time.Duration) string {
	for i, c := range m.avail {
		end := time.Duration(1<<62 - 1)
		if i+1 < len(m.avail) {
			end = m.avail[i+1].at
		}
		if end < from || c.at > to {
			continue
		}
		if c.state != availUp {
			return availNames[c.state]
		}
		if c.inc != inc {
			return "agent restarted"
		}
	}
	return ""
}

// wasSuspended reports whether the host was suspended at some time in
// [from, to].
func (m *member) wasSuspended(from, to time.Duration) bool {
	for i, c := range m.avail {
		end := time.Duration(1<<62 - 1)
		if i+1 < len(m.avail) {
			end = m.avail[i+1].at
		}
		if end >= from && c.at <= to && c.state == availSuspended {
			return true
		}
	}
	return false
}

// procs returns the processes the simulator may resume now.
func (m *member) procs() []*proc {
	a := m.agent
	if a == nil || !m.agentRunning() {
		return nil
	}
	ps := make([]*proc, 0, 2)
	if a.main != nil && !a.main.done {
		ps = append(ps, a.main)
	}
	if a.task != nil && a.task.p != nil && !a.task.p.done {
		ps = append(ps, a.task.p)
	}
	return ps
}

func (m *member) reap() {
	a := m.agent
	if a == nil {
		return
	}
	if a.main.done {
		// The agent's main process returned: it exited (refused or
		// shut down).
		m.killAgent(a.exitReason)
	}
}

// startAgent starts a new agent incarnation.
func (m *member) startAgent() {
	if m.agent != nil {
		return
	}
	m.inc++
	m.agent = newAgent(m, m.inc)
	m.s.tracef("%s: agent started (incarnation %d)", m.name, m.inc)
	m.noteAvail()
}

// killAgent ends the agent process (kill -9, exit or panic). Its fence
// processes notice that the pipe closed.
func (m *member) killAgent(why string) {
	a := m.agent
	if a == nil {
		return
	}
	m.agent = nil
	a.dead = true
	m.pastLoops += a.loops
	if a.task != nil && a.task.p != nil {
		a.task.p.kill()
	}
	if a.main != nil {
		a.main.kill()
	}
	for _, f := range m.fences {
		if f.inc == a.inc {
			f.agentGone()
		}
	}
	m.s.tracef("%s: agent stopped: %s", m.name, why)
	m.noteAvail()
}

// tickTimers fires the agent's lease guard and the fence processes whose
// deadlines passed. A stopped process fires nothing; it fires late once it
// runs again.
func (m *member) tickTimers() {
	if a := m.agent; a != nil && m.agentRunning() {
		a.guard.tick()
	}
	if m.frozen() {
		return
	}
	live := m.fences[:0]
	for _, f := range m.fences {
		f.tick()
		if f.alive {
			live = append(live, f)
		}
	}
	m.fences = live
}

// fenceProc is the agent's fence process: armed with the lease deadline
// plus half the fence timeout, it SIGKILLs the postmaster unless a later
// deadline arrives first. It outlives a killed agent: with the pipe closed
// it keeps the last deadline, fires if armed, and exits.
type fenceProc struct {
	m        *member
	inc      int
	alive    bool
	deadline time.Time // zero: disarmed
	last     string
	orphan   bool
}

func (f *fenceProc) update(holds bool, confirmedSentAt time.Time, dyn cluster.DynamicConfig) {
	if holds && !confirmedSentAt.IsZero() {
		// Keyed by the deadline, not the renewal, as in package agent: a
		// ttl change moves the deadline of the same renewal.
		at := confirmedSentAt.Add(dyn.RenewDeadline() + dyn.FenceTimeoutDuration()/2)
		key := "arm:" + at.String()
		if f.last == key {
			return
		}
		f.last = key
		f.deadline = at
		f.m.s.wakeAt(f.m, f.deadline)
		return
	}
	if f.last == "disarm" {
		return
	}
	f.last = "disarm"
	f.deadline = time.Time{}
}

func (f *fenceProc) agentGone() {
	f.orphan = true
	if f.deadline.IsZero() {
		f.alive = false
	}
}

func (f *fenceProc) stop() { f.alive = false }

func (f *fenceProc) tick() {
	if !f.alive || f.deadline.IsZero() || f.m.mono().Before(f.deadline) {
		return
	}
	m := f.m
	if m.pg.running {
		m.s.tracef("%s: fence process: deadline passed without renewal, SIGKILL postmaster", m.name)
		m.s.check.stats.Fences++
		m.pg.kill("fence process")
	}
	f.deadline = time.Time{}
	if f.orphan {
		f.alive = false
	}
}
