package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// term is one writable period of one member's PostgreSQL.
type term struct {
	id          int
	m           *member
	tl          int
	how         string
	start, end  time.Duration
	ended       bool
	commits     int
	first, last time.Duration
	stale       bool // a stale commit of this term was already recorded
}

func (t *term) public() Term {
	pt := Term{Member: t.m.name, Timeline: t.tl, How: t.how, Start: t.start, Commits: t.commits,
		FirstCommit: t.first, LastCommit: t.last}
	if t.ended {
		pt.End = t.end
	}
	return pt
}

// commitRec is one acknowledged commit.
type commitRec struct {
	m      *member
	t      *term
	branch int
	pos    int64
	at     time.Duration
	sync   bool // acknowledged after synchronous standbys confirmed it
	// unsynced: acknowledged without waiting while the sync key published
	// standbys for this leader.
	unsynced bool
	stale    bool // acknowledged after another member became writable
	lost     bool
}

// checker records terms and commits and checks the invariants.
type checker struct {
	s          *Sim
	terms      []*term
	commits    []*commitRec
	violations []Violation
	stats      Stats

	histLen  int
	primary  bool // a writable primary existed at some point
	gapStart time.Duration
	inGap    bool
	// stallFrom is when the current period with a writable primary but
	// without acknowledged commits began (-1: none).
	stallFrom time.Duration
}

func newChecker(s *Sim) *checker {
	return &checker{s: s, stallFrom: -1, stats: Stats{Faults: map[string]int{}, NeedsWatchdog: map[string]int{}}}
}

// termStart records that m became a writable primary on timeline tl.
func (c *checker) termStart(m *member, tl int, how string) *term {
	t := &term{id: len(c.terms) + 1, m: m, tl: tl, how: how, start: c.s.now}
	c.terms = append(c.terms, t)
	c.s.tracef("%s: writable primary on timeline %d (%s)", m.name, tl, how)
	return t
}

// wrote is called after a new primary wrote its first record (the
// end-of-recovery checkpoint): its WAL now shows whether it forked a
// timeline or lacks acknowledged commits.
func (c *checker) wrote(m *member) {
	if c.checkKey(m) {
		return
	}
	c.checkFork(m)
	c.checkLost(m)
}

// checkKey checks that a member becoming writable holds the leader key in
// the DCS: the core only promotes or starts a primary while it holds the
// lease, and the lease cannot expire before the renew deadline. It
// reports whether it found a violation.
func (c *checker) checkKey(m *member) bool {
	s := c.s
	e := s.dcs.get(keyLeader)
	if e != nil && e.value == m.name {
		if l := s.dcs.leases[e.lease]; l != nil && l.owner == m {
			return false
		}
	}
	holder := "nobody"
	if e != nil {
		holder = e.value.(string)
	}
	cl := m.claim
	stall := ""
	if cl.inc != 0 {
		stall = m.downDuring(cl.inc, cl.sentTrue, s.now)
	}
	if stall != "" && s.cfg.NoFenceProcess && stall != availNames[availSuspended] {
		c.stats.NeedsWatchdog[stall]++
		s.tracef("NEEDS WATCHDOG (%s): %s became writable without the leader key (held by %s)", stall, m.name, holder)
		return false
	}
	detail := fmt.Sprintf("%s became a writable primary while the leader key is held by %s; %s", m.name, holder, c.claimInfo(m))
	known := ""
	switch {
	case stall != "":
		detail += "; the agent was stopped since (" + stall + ")"
		// Only a stop that began after PostgreSQL was asked to become
		// writable is the known issue; the agent must not issue that
		// request after a stop (stillHoldsClaim).
		if m.downDuring(cl.inc, cl.sentTrue, m.pg.writableReqAt) == "" {
			detail += fmt.Sprintf(", which began after it asked PostgreSQL to become writable at %s", fmtDur(m.pg.writableReqAt))
			known = "action-after-stall"
		}
	case m.lateRelease > 0 && s.now-m.lateRelease < s.dcs.maxTTL():
		detail += fmt.Sprintf("; its own release of the leader key, which it had given up on as failed, was applied at %s", fmtDur(m.lateRelease))
	}
	s.violateKnown("writable-without-key", detail, known)
	return true
}

func (c *checker) termEnd(t *term) {
	if !t.ended {
		t.ended, t.end = true, c.s.now
	}
}

// commit records an acknowledged commit and checks the single-writer
// invariant: once another member became a writable primary, no older
// primary may acknowledge a commit.
func (c *checker) commit(m *member, t *term, branch int, pos int64) {
	s := c.s
	now := s.now
	if t.commits == 0 {
		t.first = now
	}
	t.commits++
	t.last = now
	c.stats.Commits++
	c.stallFrom = now
	cr := &commitRec{m: m, t: t, branch: branch, pos: pos, at: now, sync: len(m.pg.syncNames) > 0}
	if e := s.dcs.get(keySync); !cr.sync && e != nil {
		if st := e.value.(cluster.SyncState); st.Leader == m.name && len(st.Members) > 0 {
			cr.unsynced = true
		}
	}
	c.commits = append(c.commits, cr)

	var newer *term
	for i := len(c.terms) - 1; i >= 0 && c.terms[i].start > t.start; i-- {
		if y := c.terms[i]; y.m != m && y.start <= now {
			newer = y
		}
	}
	if newer == nil {
		return
	}
	cr.stale = true
	if t.stale {
		return
	}
	t.stale = true
	detail := fmt.Sprintf("%s (writable since %s on timeline %d) acknowledged a commit at lsn %d after %s became a writable primary at %s on timeline %d",
		m.name, fmtDur(t.start), t.tl, pos, newer.m.name, fmtDur(newer.start), newer.tl)
	if newer.commits > 0 {
		detail += fmt.Sprintf(" (its first commit at %s)", fmtDur(newer.first))
	}
	if why := c.excuse(m); why != "" {
		c.stats.NeedsWatchdog[why]++
		s.tracef("NEEDS WATCHDOG (%s): %s", why, detail)
		return
	}
	s.violate("single-writer", detail+"; "+c.claimInfo(m))
}

// excuse returns why a stale primary could not have been prevented by the
// agent as modelled, or "" when it should have been: the host was
// suspended (the monotonic deadlines of the guard and the fence process
// did not advance), or — without the fence process — the agent was not
// running when its lease deadline passed.
func (c *checker) excuse(m *member) string {
	cl := m.claim
	if cl.inc == 0 {
		return ""
	}
	if m.wasSuspended(cl.sentTrue, c.s.now) {
		return "host suspended"
	}
	if !c.s.cfg.NoFenceProcess {
		return ""
	}
	tol := 2 * c.s.cfg.Step
	return m.downDuring(cl.inc, cl.deadlineTrue-tol, cl.deadlineTrue+tol)
}

func (c *checker) claimInfo(m *member) string {
	cl := m.claim
	if cl.inc == 0 {
		return "it never confirmed holding the leader key"
	}
	return fmt.Sprintf("its last confirmed renewal holding the key was sent at %s by agent incarnation %d (guard deadline %s); agent now: %s",
		fmtDur(cl.sentTrue), cl.inc, fmtDur(cl.deadlineTrue), availNames[m.availNow()])
}

// checkLost counts acknowledged commits missing from the WAL of a member
// that just became writable. In synchronous mode no acknowledged commit
// may be missing: a commit either waited for the published synchronous
// standbys, or was acknowledged while none was published and so no member
// could be promoted automatically. Commits of a stale primary are already
// reported as such.
func (c *checker) checkLost(m *member) {
	w := m.pg.data.wal
	for _, cr := range c.commits {
		if cr.lost || w.has(cr.branch, cr.pos) {
			continue
		}
		cr.lost = true
		c.stats.LostCommits++
		if !cr.stale && c.s.dyn.SynchronousMode.Enabled() {
			how := "after its synchronous standbys confirmed it"
			if !cr.sync {
				how = "while running asynchronously (no synchronous standby published)"
			}
			if cr.unsynced {
				how = "with an empty synchronous_standby_names while the sync key named standbys"
			}
			known := ""
			// The sync key still names m as its leader and the writer of
			// the lost commit as a synchronous standby: that standby was
			// promoted and acknowledged commits before it claimed the key.
			if e := c.s.dcs.get(keySync); e != nil && cr.m != m {
				if st := e.value.(cluster.SyncState); st.Leader == m.name && st.Has(cr.m.name) {
					how += fmt.Sprintf("; the sync key still names %s as its leader and %s as a synchronous standby", m.name, cr.m.name)
					// Fixed (the core claims the sync key before Promote):
					// reported as a new violation if it comes back.
				}
			}
			c.s.violateKnown("acked-lost", fmt.Sprintf("%s became writable without the commit at lsn %d that %s acknowledged at %s %s",
				m.name, cr.pos, cr.m.name, fmtDur(cr.at), how), known)
			return
		}
	}
}

// checkFork counts a new primary whose WAL diverges from another member's
// on the same timeline: PostgreSQL and the core tell histories apart by
// timeline, so such a fork cannot be detected (no rewind, no rejoin).
func (c *checker) checkFork(m *member) {
	w := m.pg.data.wal
	for _, o := range c.s.members {
		if o == m || o.pg.data == nil {
			continue
		}
		ow := o.pg.data.wal
		cp := commonPrefix(w, ow)
		if cp >= w.end() || cp >= ow.end() {
			continue
		}
		if tl := w.tlAt(cp); tl == ow.tlAt(cp) {
			c.stats.TimelineForks++
			c.s.tracef("TIMELINE FORK: %s and %s hold different WAL on timeline %d after lsn %d", m.name, o.name, tl, cp)
		}
	}
}

// historyChanged checks that the history's timelines strictly increase.
func (c *checker) historyChanged() {
	h := c.s.dcs.history()
	for i := 1; i < len(h); i++ {
		if h[i].Timeline <= h[i-1].Timeline {
			known := ""
			if i == len(h)-1 {
				// The line just appended: was its writer's agent stopped
				// since it promoted?
				if m := c.s.byName[h[i].NewLeader]; m != nil && m.downDuring(m.inc, c.lastTermStart(m), c.s.now) != "" {
					known = "late-history-append"
				}
			}
			c.s.violateKnown("history", fmt.Sprintf("history timelines do not strictly increase: entry %d has timeline %d after %d (%s)",
				i, h[i].Timeline, h[i-1].Timeline, historyString(h)), known)
			return
		}
	}
	if len(h) < c.histLen {
		c.s.violate("history", fmt.Sprintf("history shrank from %d to %d entries", c.histLen, len(h)))
		return
	}
	c.histLen = len(h)
	if len(h) > 0 {
		c.s.tracef("dcs: history %s", historyString(h))
	}
}

// afterStep checks the per-step invariants and availability.
func (c *checker) afterStep() {
	s := c.s
	if s.stopped {
		return
	}
	if ln := s.dcs.leaderName(); ln != "" {
		if l := s.byName[ln]; l != nil && l.pg.writable() && l.agent != nil && l.agent.keyOnMyLease {
			tl := l.pg.tl()
			if last := c.lastHistTimeline(); tl <= last {
				s.violate("leader-timeline", fmt.Sprintf("leader %s is writable on timeline %d, but the history already records timeline %d",
					ln, tl, last))
				return
			}
			for _, o := range s.members {
				if o != l && o.pg.data != nil && o.pg.tl() > tl {
					s.violate("leader-timeline", fmt.Sprintf("leader %s is writable on timeline %d, but %s's data directory is on timeline %d",
						ln, tl, o.name, o.pg.tl()))
					return
				}
			}
		}
	}
	writable := 0
	for _, m := range s.members {
		if m.pg.writable() {
			writable++
		}
	}
	switch {
	case writable == 0 && c.primary && !c.inGap:
		c.inGap, c.gapStart = true, s.now
	case writable > 0 && !c.primary:
		c.primary = true
		c.stats.FirstPrimary = s.now
	case writable > 0 && c.inGap:
		c.inGap = false
		c.stats.NoPrimary = append(c.stats.NoPrimary, s.now-c.gapStart)
	}
	if writable > 1 {
		c.stats.DualPrimary += s.cfg.Step
	}
	switch {
	case writable == 0:
		c.stallFrom = -1
	case c.stallFrom < 0:
		c.stallFrom = s.now
	default:
		c.stats.MaxCommitStall = max(c.stats.MaxCommitStall, s.now-c.stallFrom)
	}
}

// lastTermStart is when m last became writable.
func (c *checker) lastTermStart(m *member) time.Duration {
	for i := len(c.terms) - 1; i >= 0; i-- {
		if c.terms[i].m == m {
			return c.terms[i].start
		}
	}
	return 0
}

func (c *checker) lastHistTimeline() int {
	last := 0
	for _, h := range c.s.dcs.history() {
		last = max(last, h.Timeline)
	}
	return last
}

// finish closes the statistics and checks whether the cluster healed.
func (c *checker) finish() {
	s := c.s
	if c.inGap {
		c.stats.NoPrimary = append(c.stats.NoPrimary, s.now-c.gapStart)
	}
	for _, m := range s.members {
		if m.agent != nil {
			c.stats.Loops += m.agent.loops
		}
		c.stats.Loops += m.pastLoops
	}
	var problems []string
	var primaries []*member
	for _, m := range s.members {
		if m.pg.writable() {
			primaries = append(primaries, m)
		}
	}
	leader := s.dcs.leaderName()
	switch {
	case len(primaries) != 1:
		problems = append(problems, fmt.Sprintf("%d writable primaries %s", len(primaries), joinNames(sortedNames(primaries))))
	case primaries[0].name != leader:
		problems = append(problems, fmt.Sprintf("writable primary %s does not hold the leader key (%q)", primaries[0].name, leader))
	}
	for _, m := range s.members {
		if m.name == leader {
			continue
		}
		p := m.pg
		why := ""
		switch {
		case m.agent == nil:
			problems = append(problems, m.name+" has no agent")
			continue
		case !p.running:
			why = m.name + " is not running"
		case !p.standby:
			why = m.name + " is not a standby"
		case p.upstream != leader || !p.streaming:
			why = fmt.Sprintf("%s does not stream from the leader (upstream %q, streaming %t)", m.name, p.upstream, p.streaming)
		default:
			continue
		}
		problems = append(problems, why+" (agent: "+m.agent.lastDecision.Reason+")")
	}
	if c.stallFrom >= 0 && s.now-c.stallFrom > 10*time.Second {
		problems = append(problems, fmt.Sprintf("no commit acknowledged for %s", fmtDur(s.now-c.stallFrom)))
	}
	c.stats.Healed = len(problems) == 0
	c.stats.Unhealed = strings.Join(problems, "; ")
	if !c.stats.Healed {
		s.tracef("not healed at the end: %s", c.stats.Unhealed)
	}
}

// historyString renders the history's timelines and switch points.
func historyString(h []cluster.HistoryEntry) string {
	parts := make([]string, len(h))
	for i, e := range h {
		parts[i] = fmt.Sprintf("%d@%d:%s", e.Timeline, e.SwitchLSN, e.NewLeader)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
