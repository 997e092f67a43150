package sim

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// systemID is the cluster's PostgreSQL system identifier.
const systemID = "7300000000000000001"

// Sizes of the WAL records the model writes, in bytes.
const (
	checkpointRecord = 100
	minCommitRecord  = 50
	maxCommitRecord  = 2000
)

// walReceiverTimeout is PostgreSQL's wal_receiver_timeout: a standby whose
// upstream stalls (partitioned or frozen, the connection still open) keeps
// reporting "streaming" this long.
const walReceiverTimeout = 60 * time.Second

// seg is a stretch of WAL written by one writer (a branch) on one timeline:
// the bytes after the previous segment's end up to end.
type seg struct {
	branch int
	tl     int
	end    int64
}

// wal is a data directory's WAL history from the start of the cluster.
// Branch identities are unique per writable term, so two histories agree on
// a range exactly when the same branch wrote it in both.
type wal []seg

func (w wal) end() int64 {
	if len(w) == 0 {
		return 0
	}
	return w[len(w)-1].end
}

func (w wal) tl() int {
	if len(w) == 0 {
		return 0
	}
	return w[len(w)-1].tl
}

func (w wal) clone() wal { return slices.Clone(w) }

// appendBytes writes n bytes on branch (timeline tl).
func (w *wal) appendBytes(branch, tl int, n int64) {
	if k := len(*w); k > 0 && (*w)[k-1].branch == branch {
		(*w)[k-1].end += n
		return
	}
	*w = append(*w, seg{branch: branch, tl: tl, end: w.end() + n})
}

// truncate cuts the history at pos.
func (w *wal) truncate(pos int64) {
	out := (*w)[:0]
	for _, sg := range *w {
		if sg.end <= pos {
			out = append(out, sg)
			continue
		}
		prev := out.end()
		if prev < pos {
			sg.end = pos
			out = append(out, sg)
		}
		break
	}
	*w = out
}

// commonPrefix is the position up to which a and b hold the same WAL.
func commonPrefix(a, b wal) int64 {
	var pos int64
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].branch != b[j].branch {
			return pos
		}
		e := min(a[i].end, b[j].end)
		pos = e
		if a[i].end == e {
			i++
		}
		if b[j].end == e {
			j++
		}
	}
	return pos
}

// isPrefix reports whether a is a prefix of b: a standby with a can stream
// from b.
func isPrefix(a, b wal) bool { return commonPrefix(a, b) >= a.end() }

// has reports whether w holds the byte range ending at pos written by
// branch.
func (w wal) has(branch int, pos int64) bool {
	var start int64
	for _, sg := range w {
		if pos > start && pos <= sg.end {
			return sg.branch == branch
		}
		start = sg.end
	}
	return false
}

// tlAt returns the timeline of the WAL just after pos (the first byte past
// it), or 0 beyond the end.
func (w wal) tlAt(pos int64) int {
	for _, sg := range w {
		if pos < sg.end {
			return sg.tl
		}
	}
	return 0
}

// pgData is a data directory.
type pgData struct {
	sysid string
	wal   wal
	// ckptTL and ckptLSN describe the latest checkpoint in pg_control.
	ckptTL  int
	ckptLSN int64
	// minRecTL is pg_control's minRecoveryPointTLI (a standby's replay
	// timeline); 0 on a primary.
	minRecTL int
	// inRecovery: the cluster was a standby when it last ran.
	inRecovery bool
	// maxTLSeen is the highest timeline whose history file is in pg_wal.
	maxTLSeen int
	// confSyncNames is synchronous_standby_names in the postgresql.conf
	// the agent wrote (agent.writeConfig); a base backup or rewind copies
	// the source's until the agent rewrites it.
	confSyncNames []string
	confSyncAny   int // k of ANY k (confSyncNames); 0: FIRST n
}

func (d *pgData) clone() *pgData {
	cp := *d
	cp.wal = d.wal.clone()
	return &cp
}

// controlTimeline is what the agent reads from pg_control.
func (d *pgData) controlTimeline() int { return max(d.ckptTL, d.minRecTL) }

// pendingCommit is a commit waiting for synchronous standbys.
type pendingCommit struct {
	branch int
	pos    int64
	at     time.Duration
}

// pgServer is a member's PostgreSQL: its data directory and, while a
// postmaster runs, the server state. It acts on its own (replication,
// commits, delayed stops and starts) regardless of the agent.
type pgServer struct {
	m    *member
	s    *Sim
	data *pgData // nil: empty data directory

	running bool // a postmaster is alive
	ready   bool // it accepts connections
	standby bool // in recovery
	gen     int  // postmaster generation: events for an older one are void

	upstream  string // primary_conninfo target ("": none)
	streaming bool   // pg_stat_wal_receiver status streaming
	stallAt   time.Duration
	stalled   bool

	syncNames []string // effective synchronous_standby_names
	syncAny   int      // k of ANY k (syncNames); 0: FIRST n
	fastStop  bool     // a fast shutdown is in progress: no new commits
	stopping  bool     // an immediate stop was requested (SIGQUIT sent)
	promoting bool

	branch  int // branch of the current writable term
	term    *term
	pending []pendingCommit
	// writableReqAt is when the server was last asked to become writable
	// (promotion or start as primary), for the checker.
	writableReqAt time.Duration
}

func newPG(m *member) *pgServer { return &pgServer{m: m, s: m.s} }

func (p *pgServer) tl() int {
	if p.data == nil {
		return 0
	}
	return p.data.wal.tl()
}

func (p *pgServer) lsn() int64 {
	if p.data == nil {
		return 0
	}
	return p.data.wal.end()
}

// writable reports whether the server can acknowledge commits now.
func (p *pgServer) writable() bool {
	return p.running && p.ready && !p.standby && !p.m.frozen() && !p.fastStop
}

// primaryRole reports whether the server runs as a primary (possibly
// frozen or shutting down).
func (p *pgServer) primaryRole() bool { return p.running && p.ready && !p.standby }

// later runs fn after d for the current postmaster generation, postponed
// while the host is frozen.
func (p *pgServer) later(d time.Duration, fn func()) {
	gen := p.gen
	var run func()
	run = func() {
		if p.gen != gen || !p.running {
			return
		}
		if p.m.frozen() {
			p.s.after(p.s.cfg.Step, run)
			return
		}
		fn()
	}
	p.s.after(d, run)
}

// start launches a postmaster; it accepts connections after a short
// recovery. A standby follows upstream. synchronous_standby_names comes
// from the configuration file the agent wrote.
func (p *pgServer) start(standby bool, upstream string, syncNames []string, syncAny int) error {
	switch {
	case p.running:
		return errors.New("start: PostgreSQL is already running")
	case p.data == nil:
		return errors.New("start: data directory is not initialized")
	}
	p.gen++
	p.running, p.ready, p.standby = true, false, standby
	p.upstream, p.streaming, p.stalled = upstream, false, false
	p.syncNames, p.syncAny = slices.Clone(syncNames), syncAny
	p.fastStop, p.promoting, p.stopping = false, false, false
	if !standby {
		p.writableReqAt = p.s.now
	}
	mode := "primary"
	if standby {
		mode = "standby of " + quoteOr(upstream, "nobody")
	}
	sync := ""
	if len(syncNames) > 0 {
		sync = ", synchronous_standby_names " + joinNames(syncNames)
	}
	p.s.tracef("%s: postgres starting as %s (timeline %d, lsn %d%s)", p.m.name, mode, p.tl(), p.lsn(), sync)
	p.later(p.s.uniform(300*time.Millisecond, 1500*time.Millisecond), func() {
		if p.stopping || p.fastStop {
			return // SIGQUIT during startup: the postmaster exits instead
		}
		p.ready = true
		if p.standby {
			p.data.inRecovery = true
			p.data.minRecTL = max(p.data.minRecTL, p.tl())
			return
		}
		// Crash recovery ends with a checkpoint; without standby.signal a
		// former standby continues on its timeline (no timeline switch).
		p.becomeWritable("start")
		p.data.inRecovery = false
		p.data.minRecTL = 0
		p.writeCheckpoint()
		p.s.check.wrote(p.m)
	})
	return nil
}

// becomeWritable starts a writable term on a new branch.
func (p *pgServer) becomeWritable(how string) {
	p.branch = p.s.newBranch()
	p.term = p.s.check.termStart(p.m, p.tl(), how)
}

func (p *pgServer) endTerm() {
	if p.term != nil {
		p.s.check.termEnd(p.term)
		p.term = nil
	}
	p.pending = nil
}

// writeCheckpoint writes a checkpoint record (primary) and updates
// pg_control.
func (p *pgServer) writeCheckpoint() {
	d := p.data
	if !p.standby {
		d.ckptLSN = d.wal.end()
		d.wal.appendBytes(p.branch, d.wal.tl(), checkpointRecord)
	} else {
		d.ckptLSN = d.wal.end()
	}
	d.ckptTL = d.wal.tl()
}

// kill ends the postmaster at once (SIGKILL, crash, end of an immediate
// stop).
func (p *pgServer) kill(why string) {
	if !p.running {
		return
	}
	wasPrimary := p.primaryRole()
	p.gen++
	p.running, p.ready, p.streaming, p.stalled = false, false, false, false
	p.fastStop, p.promoting, p.stopping = false, false, false
	p.endTerm()
	role := "standby"
	if wasPrimary {
		role = "primary"
	}
	p.s.tracef("%s: postgres (%s, timeline %d, lsn %d) stopped: %s", p.m.name, role, p.tl(), p.lsn(), why)
	if a := p.m.agent; a != nil {
		a.wake = true // the postmaster exit wakes the loop
	}
}

// fenceDelay is how long an immediate stop takes until PostgreSQL can
// acknowledge no further commit: usually a few milliseconds (SIGQUIT ends
// every session), sometimes up to half the fence timeout, rarely until the
// SIGKILL escalation. FenceOverrun > 1 makes every stop take between
// fence_timeout and FenceOverrun × fence_timeout, breaking the timing
// assumption so that the checker must find violations.
func (p *pgServer) fenceDelay() time.Duration {
	ft := p.s.dyn.FenceTimeoutDuration()
	if o := p.s.cfg.Faults.FenceOverrun; o > 1 {
		return p.s.uniform(ft, time.Duration(float64(ft)*o))
	}
	var d time.Duration
	switch r := p.s.rng.Float64(); {
	case r < 0.85:
		d = p.s.uniform(0, 30*time.Millisecond)
	case r < 0.97:
		d = p.s.uniform(30*time.Millisecond, ft/2)
	default:
		d = p.s.uniform(ft/2, ft)
	}
	return d
}

// stopImmediate starts an immediate shutdown (SIGQUIT, escalating to
// SIGKILL); the caller waits for !running.
func (p *pgServer) stopImmediate(why string) {
	if !p.running {
		return
	}
	if p.writable() {
		p.s.check.stats.Fences++
	}
	p.s.tracef("%s: postgres immediate stop requested: %s", p.m.name, why)
	p.stopping = true
	p.later(p.fenceDelay(), func() { p.kill("immediate stop: " + why) })
}

// stopFast starts a fast shutdown: sessions end at once, a primary writes
// its shutdown checkpoint and its walsenders send it to connected
// standbys before the postmaster exits.
func (p *pgServer) stopFast(why string) {
	if !p.running || p.fastStop {
		return
	}
	p.fastStop = true
	if p.primaryRole() {
		p.endTerm()
	}
	p.s.tracef("%s: postgres fast stop requested: %s", p.m.name, why)
	p.later(p.s.uniform(100*time.Millisecond, 800*time.Millisecond), func() {
		if p.ready {
			p.writeCheckpoint()
			if !p.standby {
				for _, o := range p.s.members {
					op := o.pg
					if o != p.m && op.running && op.ready && op.standby && op.upstream == p.m.name &&
						op.canReceiveFrom(p) && isPrefix(op.data.wal, p.data.wal) {
						o.pg.data.wal = p.data.wal.clone()
					}
				}
			} else {
				p.data.minRecTL = p.tl()
			}
		}
		p.kill("fast stop: " + why)
	})
}

// promote ends recovery: the standby switches to a new timeline and
// becomes writable.
func (p *pgServer) promote() error {
	if !p.running || !p.ready || !p.standby {
		return errors.New("promote: not a running standby")
	}
	if p.promoting {
		return errors.New("promote: already promoting")
	}
	p.promoting = true
	p.writableReqAt = p.s.now
	p.later(p.s.uniform(50*time.Millisecond, 500*time.Millisecond), func() {
		p.promoting = false
		if p.stopping || p.fastStop {
			return // the startup process was told to quit
		}
		d := p.data
		old := d.wal.tl()
		newTL := max(old, d.maxTLSeen) + 1
		d.maxTLSeen = newTL
		p.standby, p.upstream, p.streaming, p.stalled = false, "", false, false
		d.inRecovery, d.minRecTL = false, 0
		p.branch = p.s.newBranch()
		d.wal.appendBytes(p.branch, newTL, checkpointRecord) // end-of-recovery record
		p.term = p.s.check.termStart(p.m, newTL, "promote")
		p.s.check.wrote(p.m)
		p.s.check.stats.Promotions++
		p.s.tracef("%s: postgres promoted: timeline %d -> %d at lsn %d", p.m.name, old, newTL, d.wal.end())
	})
	return nil
}

// pgOp is an operation the agent waits for.
type pgOp struct {
	done bool
	err  error
}

// checkpoint runs CHECKPOINT; op completes unless the postmaster exits
// first (the waiter watches the generation).
func (p *pgServer) checkpoint(op *pgOp) {
	if !p.running || !p.ready {
		op.done, op.err = true, errors.New("checkpoint: not running")
		return
	}
	p.later(p.s.uniform(100*time.Millisecond, 1500*time.Millisecond), func() {
		if p.ready {
			p.writeCheckpoint()
			op.done = true
		}
	})
}

// canReceiveFrom reports whether a standby here can get WAL from up now.
func (p *pgServer) canReceiveFrom(up *pgServer) bool {
	return p.s.peerReachable(p.m, up.m) && up.running && up.ready && !up.m.frozen()
}

// tick advances replication, restartpoints and synchronous commits.
func (p *pgServer) tick() {
	if !p.running || !p.ready || p.m.frozen() {
		return
	}
	if p.standby {
		p.replicate()
		if p.s.chance(float64(p.s.cfg.Step) / float64(30*time.Second)) {
			p.writeCheckpoint() // restartpoint
		}
		return
	}
	p.releaseSyncCommits()
}

// replicate streams WAL from the upstream when possible.
func (p *pgServer) replicate() {
	d := p.data
	if p.upstream == "" {
		p.streaming = false
		return
	}
	um := p.s.byName[p.upstream]
	if um == nil || um == p.m {
		p.streaming = false
		return
	}
	up := um.pg
	if !up.running || !up.ready || up.data == nil {
		p.streaming = false // connection refused or closed
		return
	}
	if !p.s.peerReachable(p.m, um) || um.frozen() {
		// The connection stalls: the receiver notices only after
		// wal_receiver_timeout.
		if p.streaming && !p.stalled {
			p.stalled, p.stallAt = true, p.s.now
		}
		if p.stalled && p.s.now-p.stallAt >= walReceiverTimeout {
			p.streaming, p.stalled = false, false
		}
		return
	}
	p.stalled = false
	// The walreceiver fetches the upstream's timeline history files.
	d.maxTLSeen = max(d.maxTLSeen, up.data.maxTLSeen, up.tl())
	if !isPrefix(d.wal, up.data.wal) {
		// "requested timeline is not a child of this server's history"
		// or "requested starting point is ahead of the WAL flush
		// position": the receiver keeps failing.
		p.streaming = false
		return
	}
	p.streaming = true
	if d.wal.end() < up.data.wal.end() && p.s.chance(0.8) {
		d.wal = up.data.wal.clone()
		d.minRecTL = d.wal.tl()
	}
}

// walSenders lists the standbys streaming from this server, in name order.
func (p *pgServer) walSenders() []*member {
	var out []*member
	for _, o := range p.s.members {
		if o == p.m || !o.pg.running || o.pg.upstream != p.m.name || !o.pg.streaming {
			continue
		}
		out = append(out, o)
	}
	return out
}

// syncStandbys returns the standbys PostgreSQL may wait for (FIRST n of
// synchronous_standby_names, "*" = any one; with ANY k every connected
// listed one), and whether enough are connected.
func (p *pgServer) syncStandbys() ([]*member, bool) {
	if len(p.syncNames) == 0 {
		return nil, true
	}
	senders := p.walSenders()
	if len(p.syncNames) == 1 && p.syncNames[0] == "*" {
		if len(senders) == 0 {
			return nil, false
		}
		return senders[:1], true
	}
	var out []*member
	for _, n := range p.syncNames {
		for _, o := range senders {
			if o.name == n {
				out = append(out, o)
			}
		}
	}
	if p.syncAny > 0 {
		return out, len(out) >= p.syncAny
	}
	return out, len(out) >= len(p.syncNames)
}

// syncStates is pg_stat_replication's sync_state per connected standby.
func (p *pgServer) syncStates() map[string]string {
	st := map[string]string{}
	sync, _ := p.syncStandbys()
	for _, o := range p.walSenders() {
		st[o.name] = "async"
		if slices.Contains(p.syncNames, o.name) || (len(p.syncNames) == 1 && p.syncNames[0] == "*") {
			st[o.name] = "potential"
		}
	}
	for _, o := range sync {
		st[o.name] = "sync"
		if p.syncAny > 0 {
			st[o.name] = "quorum"
		}
	}
	return st
}

// releaseSyncCommits acknowledges the commits every synchronous standby
// has received (with ANY k: that k of the listed standbys have received).
func (p *pgServer) releaseSyncCommits() {
	if len(p.pending) == 0 {
		return
	}
	if len(p.syncNames) == 0 {
		// synchronous_standby_names was cleared: waiters are released.
		for _, c := range p.pending {
			p.ack(c)
		}
		p.pending = nil
		return
	}
	sync, ok := p.syncStandbys()
	if !ok {
		return
	}
	var flushed []int64
	for _, o := range sync {
		if isPrefix(o.pg.data.wal, p.data.wal) {
			flushed = append(flushed, o.pg.lsn())
		}
	}
	need := len(sync)
	if p.syncAny > 0 {
		need = p.syncAny
	}
	if len(flushed) < need {
		return
	}
	// The need-th highest flush position: that many standbys have it.
	slices.Sort(flushed)
	upto := min(p.lsn(), flushed[len(flushed)-need])
	n := 0
	for _, c := range p.pending {
		if c.pos > upto {
			break
		}
		p.ack(c)
		n++
	}
	p.pending = p.pending[n:]
}

func (p *pgServer) ack(c pendingCommit) {
	if p.term == nil || !p.writable() {
		return
	}
	p.s.check.commit(p.m, p.term, c.branch, c.pos)
}

// commitTick lets a writable primary commit one transaction. Clients
// start writing once the cluster is initialized (the initialize key holds
// the system identifier), not while it is being bootstrapped.
func (p *pgServer) commitTick() {
	if !p.writable() || p.term == nil || !p.s.chance(p.s.cfg.CommitProbability) {
		return
	}
	if e := p.s.dcs.get(keyInitialize); e == nil || e.value == "" {
		return
	}
	n := minCommitRecord + p.s.rng.Int64N(maxCommitRecord-minCommitRecord)
	p.data.wal.appendBytes(p.branch, p.tl(), n)
	c := pendingCommit{branch: p.branch, pos: p.lsn(), at: p.s.now}
	if len(p.syncNames) > 0 {
		p.pending = append(p.pending, c)
		p.releaseSyncCommits()
		return
	}
	p.ack(c)
}

// setUpstream changes primary_conninfo (reload): the receiver reconnects.
func (p *pgServer) setUpstream(u string) {
	if p.upstream != u {
		p.upstream, p.streaming, p.stalled = u, false, false
	}
}

// receivedLSN is pg_last_wal_receive_lsn() as a peer sees it.
func (p *pgServer) receivedLSN() (int64, error) {
	if !p.running || !p.ready || !p.standby {
		return 0, fmt.Errorf("%s is not a running standby", p.m.name)
	}
	return p.lsn(), nil
}

// initdb creates a new cluster's data directory.
func (p *pgServer) initdb() {
	b := p.s.newBranch()
	p.data = &pgData{sysid: systemID, wal: wal{{branch: b, tl: 1, end: checkpointRecord}}, ckptTL: 1, maxTLSeen: 1}
}

// baseBackup copies src's data directory (pg_basebackup -X stream).
func (p *pgServer) baseBackup(src *pgServer) {
	d := src.data.clone()
	d.inRecovery = true
	d.minRecTL = d.wal.tl()
	d.ckptTL = d.wal.tl()
	d.ckptLSN = d.wal.end()
	p.data = d
}

// rewind runs pg_rewind against src and reports what it did. pg_rewind
// compares the timelines of the two control files: on the same timeline it
// does nothing, even if the histories diverged.
func (p *pgServer) rewind(src *pgServer) string {
	d, sd := p.data, src.data
	srcTL := sd.ckptTL
	if src.standby {
		srcTL = max(srcTL, sd.minRecTL)
	}
	if d.controlTimeline() == srcTL {
		return "source and target cluster are on the same timeline: no rewind required"
	}
	if isPrefix(d.wal, sd.wal) {
		// The target's WAL is part of the source's history: it can
		// simply follow.
		return "no rewind required"
	}
	p.data = sd.clone()
	p.data.inRecovery = true
	p.data.minRecTL = sd.wal.tl()
	return "rewound"
}

func quoteOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// sortedNames returns the names of members, sorted.
func sortedNames(ms []*member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.name
	}
	sort.Strings(out)
	return out
}
