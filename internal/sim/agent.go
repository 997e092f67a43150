package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
)

// minLoopGap is the agent's pause after a wake-up (watch event, postmaster
// exit) before the next loop.
const minLoopGap = 20 * time.Millisecond

// syncSettle is package agent's wait after a synchronous_standby_names
// change before the primary's WAL position is taken as SyncSetLSN.
const syncSettle = 500 * time.Millisecond

// releaseAttempt bounds one leader-key release request while retrying.
const releaseAttempt = time.Second

// agentVersion is the version the simulated agents advertise.
const agentVersion = "sim"

// errRefused stops the agent (ha.Refuse).
var errRefused = errors.New("refused")

// agent is one incarnation of a member's agent process, modelled on
// package agent: the same loop (renew the lease first, load the view,
// confirm ownership, arm the fences, observe PostgreSQL, Decide, execute,
// publish), the same lease guard, fence process, suspend check, background
// tasks and DCS client semantics. Its state dies with the process.
type agent struct {
	m    *member
	s    *Sim
	inc  int
	main *proc
	dead bool
	// exitReason is set when the main process returns (refused, shut
	// down).
	exitReason string
	loops      int

	requestTimeout time.Duration
	cl             dcsClient

	dyn               cluster.DynamicConfig
	keyOnMyLease      bool
	lease             leaseState
	downSince         time.Time
	expectRunning     bool
	startFailed       bool
	rejoin            rejoinRetry
	notStreamingSince time.Time
	lastKnownPrimary  bool
	following         string
	lastTimeline      int
	replicaTimeline   int
	upstream          string
	lastDecision      ha.Decision
	checkpointPending bool
	// pgSyncNames is the postgres.Instance's synchronous_standby_names:
	// process memory, read back from the data directory's postgresql.conf
	// when the agent starts and written to it whenever the agent writes
	// the configuration (writeConfig).
	pgSyncNames []string
	pgSyncAny   int // k of ANY k (pgSyncNames); 0: FIRST n
	// syncSetLSN and syncSetAt mirror package agent: the primary's WAL
	// position at the first observation syncSettle after the last
	// SetSyncStandbys (ha.Postgres.SyncSetLSN), and when that was.
	syncSetLSN int64
	syncSetAt  time.Time
	// releasePending: a release of the leader key got no answer and may
	// still be applied (package agent's releasePending).
	releasePending bool

	task  *task
	guard guard
	susp  struct {
		lastMono time.Time
		lastBoot time.Duration
	}
	fence *fenceProc

	// wake is the loop's wake-up channel (watch events, postmaster exit).
	wake         bool
	watching     bool
	watchPending bool
	apiUp        bool
	snap         snapshot
	stopRequest  bool
}

// snapshot is what the agent's REST API answers (GET /patroni).
type snapshot struct {
	set                bool
	role, state        string
	timeline           int
	xlog, recv, replay int64
	priority           int
}

func newAgent(m *member, inc int) *agent {
	a := &agent{m: m, s: m.s, inc: inc, dyn: m.s.dyn}
	a.requestTimeout = a.dyn.RetryTimeoutDuration()
	a.cl.ttl = a.dyn.TTLDuration() // the member file's bootstrap.dcs.ttl
	a.guard.a = a
	// postgres.New reads synchronous_standby_names back from the managed
	// postgresql.conf: it survives an agent restart.
	if d := m.pg.data; d != nil {
		a.pgSyncNames, a.pgSyncAny = slices.Clone(d.confSyncNames), d.confSyncAny
	}
	a.main = newProc(fmt.Sprintf("agent#%d", inc), func(p *proc) { a.run(&actx{a: a, p: p}) })
	return a
}

func (a *agent) tracef(format string, args ...any) {
	a.s.tracef("%s: %s", a.m.name, fmt.Sprintf(format, args...))
}

// run is agent.Run: connect, then loop until told to stop.
func (a *agent) run(c *actx) {
	c.connect()
	// The duplicate-name check reads the member key once.
	_, _ = c.rpc(c.req(c.deadline(a.requestTimeout)), func(d *dcsServer) (any, error) { return nil, nil })
	c.readDynamicConfig()
	a.apiUp, a.watching = true, true
	for {
		c.loop()
		if a.exitReason != "" {
			return
		}
		start := c.mono()
		wait := a.loopWait()
		c.p.waitFor(func() bool {
			return a.wake || a.taskDone() || a.stopRequest || !a.m.mono().Before(start.Add(wait))
		})
		switch {
		case a.stopRequest:
			c.shutdown()
			a.exitReason = "shut down"
			return
		case a.taskDone():
			a.finishTask(a.task)
		case a.wake:
			a.wake = false
			c.sleep(minLoopGap)
		}
	}
}

// readDynamicConfig is package agent's: the cluster's dynamic
// configuration is adopted before the first lease is granted, so that the
// lease has the cluster's ttl; without an answer the first loop reads it
// and moves the lease (followTTL).
func (c *actx) readDynamicConfig() {
	view, err := c.load(c.deadline(c.a.dyn.RetryTimeoutDuration()))
	if err != nil || view.Config == nil {
		return
	}
	c.a.applyDynamic(*view.Config)
}

// loopWait is the pause before the next loop: loop_wait, or at most a
// second while the lease has another TTL than the configured one.
func (a *agent) loopWait() time.Duration {
	d := a.dyn.LoopWaitDuration()
	if a.cl.leaseTTLOutdated() {
		d = min(d, time.Second)
	}
	return d
}

// applyDynamic adopts the DCS configuration if it is valid, and the ttl
// for the leases granted from now on (dcs.Client.SetTTL). With
// Config.DeadlinesFromConfiguredTTL (the agent before ttl changes were
// followed) the client keeps asking for the ttl it started with.
func (a *agent) applyDynamic(cfg cluster.DynamicConfig) {
	if cfg.Validate() != nil {
		return
	}
	if cfg.TTL != a.dyn.TTL {
		a.tracef("dynamic configuration: ttl %ds (was %ds)", cfg.TTL, a.dyn.TTL)
	}
	a.dyn = cfg
	if !a.s.cfg.DeadlinesFromConfiguredTTL {
		a.cl.ttl = cfg.TTLDuration()
	}
	a.requestTimeout = cfg.RetryTimeoutDuration() // dcs.Client.SetRequestTimeout
}

// timing is package agent's timing(): the dynamic configuration whose
// deadlines apply to the lease this agent holds (ttl: the smaller of the
// configured one and the lease's). With Config.DeadlinesFromConfiguredTTL
// it is the configured one, as before the fix.
func (a *agent) timing() cluster.DynamicConfig {
	if a.s.cfg.DeadlinesFromConfiguredTTL {
		return a.dyn
	}
	return a.dyn.ForLease(a.lease.TTL)
}

// notifyWatch delivers a DCS watch event after a network hop.
func (a *agent) notifyWatch() {
	if !a.watching || a.watchPending {
		return
	}
	a.watchPending = true
	s := a.s
	s.after(s.latency(), func() {
		a.watchPending = false
		if !a.dead && s.dcsReachable(a.m) {
			a.wake = true
		}
	})
}

// loop is one HA cycle: observe, decide, execute, publish.
func (c *actx) loop() {
	a := c.a
	a.loops++
	obs := c.observe()
	d := ha.Decide(obs)
	if d.Is(ha.ProbePeers) {
		obs.Peers = c.probePeers(obs.Cluster)
		obs.PeersProbed = true
		d = ha.Decide(obs)
	}
	if d.Reason != a.lastDecision.Reason || d.Summary() != a.lastDecision.Summary() {
		a.tracef("%s [%s] %s", roleOf(obs.PG), d.Summary(), d.Reason)
	}
	err := c.execute(obs, d)
	a.lastDecision = d
	c.publish(obs)
	if errors.Is(err, errRefused) {
		a.exitReason = err.Error()
		a.s.check.stats.Refused++
		return
	}
	if err != nil {
		a.tracef("action failed: %v", err)
	}
}

// observe gathers the observation; the lease renewal is sent first.
func (c *actx) observe() ha.Observation {
	a := c.a
	c.checkSuspend()
	a.collectTask()
	obs := ha.Observation{
		Self:   ha.Self{Name: a.m.name, Tags: a.m.tags},
		Config: a.dyn,
	}
	c.retryPendingRelease()
	c.refreshLease()
	view, err := c.load(c.deadline(a.dyn.RetryTimeoutDuration()))
	if err != nil {
		obs.DCSError = err.Error()
	} else {
		if view.Config != nil {
			a.applyDynamic(*view.Config)
		}
		obs.Config = a.dyn
		if a.releasePending && view.LeaderName() != a.m.name {
			a.releaseResolved("the leader key no longer names this member")
		}
		c.confirmOwnership(view)
		c.followTTL(view)
		a.noteUpstream(view)
		obs.Cluster = view
	}
	a.armFences()
	obs.PG = c.observePostgres()
	leaseTTL := a.lease.TTL
	if a.s.cfg.DeadlinesFromConfiguredTTL {
		leaseTTL = a.dyn.TTLDuration() // the core of old knew only the configured ttl
	}
	obs.Lease = ha.Lease{ConfirmedSentAt: a.lease.ConfirmedSentAt, TTL: leaseTTL, KeyOnMyLease: a.keyOnMyLease}
	if a.task != nil {
		obs.Task = a.task.name
	}
	obs.Now = c.mono()
	obs.Wall = obs.Now
	return obs
}

// checkSuspend treats a gap between the boot-time and the monotonic clock
// (a host suspend) as a lost lease, before anything else; it reports the
// gap and whether it exceeded safety_margin. stillHoldsClaim runs it again
// before an action that can make PostgreSQL writable.
func (c *actx) checkSuspend() (time.Duration, bool) {
	a := c.a
	mono, boot := c.mono(), a.m.boot()
	var gap time.Duration
	if !a.susp.lastMono.IsZero() {
		gap = (boot - a.susp.lastBoot) - mono.Sub(a.susp.lastMono)
	}
	a.susp.lastMono, a.susp.lastBoot = mono, boot
	margin := time.Duration(a.dyn.SafetyMargin * float64(time.Second))
	if gap <= margin {
		return gap, false
	}
	a.tracef("clock gap of %s detected: treating the lease as lost", gap.Round(time.Millisecond))
	if a.keyOnMyLease || a.lastKnownPrimary {
		c.fenceNow("suspend gap exceeds safety_margin")
	}
	a.keyOnMyLease = false
	a.lease.ConfirmedSentAt = time.Time{}
	a.guard.disarm()
	return gap, true
}

// stillHoldsClaim is package agent's re-check before an action that can
// make PostgreSQL writable (Promote, StartPrimary): no suspend gap since
// the last check, no unresolved release, the key on our lease and the last
// confirmed renewal sent less than the renew deadline ago.
func (c *actx) stillHoldsClaim() error {
	a := c.a
	if gap, lost := c.checkSuspend(); lost {
		return fmt.Errorf("%w: clock gap of %s since the last check", errClaimLost, gap.Round(time.Millisecond))
	}
	if a.releasePending {
		return fmt.Errorf("%w: an earlier leader-key release is unresolved", errClaimLost)
	}
	if !a.keyOnMyLease {
		return fmt.Errorf("%w: the leader key is not on this member's lease", errClaimLost)
	}
	sent := a.lease.ConfirmedSentAt
	if sent.IsZero() {
		return fmt.Errorf("%w: no confirmed lease renewal", errClaimLost)
	}
	if age, rd := c.mono().Sub(sent), a.timing().RenewDeadline(); age >= rd {
		return fmt.Errorf("%w: the last confirmed lease renewal was sent %s ago, renew deadline is %s",
			errClaimLost, age.Round(time.Millisecond), rd)
	}
	return nil
}

var errClaimLost = errors.New("the leader claim this decision was based on no longer holds")

// retryPendingRelease is one more attempt of an unresolved release at the
// start of a loop.
func (c *actx) retryPendingRelease() {
	a := c.a
	if !a.releasePending {
		return
	}
	if ok, err := c.releaseLeaderKey(min(releaseAttempt, a.dyn.RetryTimeoutDuration()), 0); !ok {
		a.tracef("leader-key release still unresolved: %v", err)
		return
	}
	a.releaseResolved("the retried release was answered")
}

// releaseResolved records that the leader key is definitely not ours.
func (a *agent) releaseResolved(why string) {
	if a.releasePending {
		a.tracef("leader-key release resolved: %s", why)
	}
	a.releasePending = false
	a.keyOnMyLease = false
	a.guard.disarm()
}

func (c *actx) refreshLease() {
	a := c.a
	st, err := c.renewLease(c.deadline(a.dyn.RetryTimeoutDuration()))
	if err != nil {
		return
	}
	if st.Regranted && a.keyOnMyLease {
		a.tracef("lease was re-granted; the leader key on the old lease is lost")
		a.keyOnMyLease = false
	}
	a.lease = st
}

// followTTL is package agent's: after a ttl change, move this member's
// keys onto a lease granted with the configured ttl (moveLease). Until the
// DCS answers the move, the lease state keeps the smaller TTL and the
// earlier confirmation of the two leases, and the next loop (at most a
// second later, loopWait) retries.
func (c *actx) followTTL(view *cluster.Cluster) {
	a := c.a
	if !a.cl.leaseTTLOutdated() {
		return
	}
	res, err := c.moveLease(c.deadline(a.dyn.RetryTimeoutDuration()))
	a.lease = a.cl.effectiveLease()
	if err != nil {
		a.tracef("moving to a lease with ttl %s failed; deadlines keep ttl %s: %v", a.dyn.TTLDuration(), a.lease.TTL, err)
		return
	}
	a.keyOnMyLease = res.leaderMoved
	if res.leaderMoved && view.Leader != nil {
		view.Leader.Lease = res.lease.ID
	}
}

// confirmOwnership sets keyOnMyLease from a fresh view, re-attaching a key
// that names this member on another lease.
func (c *actx) confirmOwnership(view *cluster.Cluster) {
	a := c.a
	l := view.Leader
	switch {
	case l == nil || l.Name != a.m.name:
		a.keyOnMyLease = false
	case l.Lease == a.lease.ID && a.lease.ID != 0:
		a.keyOnMyLease = true
	default:
		ok, err := c.updateLeader(c.deadline(a.dyn.RetryTimeoutDuration()))
		a.keyOnMyLease = ok && err == nil
		if a.keyOnMyLease {
			view.Leader.Lease = a.lease.ID
			a.tracef("re-attached the leader key to this agent's lease")
		}
	}
}

// noteUpstream restarts the not-streaming clock when the leader or its
// timeline changes.
func (a *agent) noteUpstream(view *cluster.Cluster) {
	up := ""
	if l := view.LeaderMember(); l != nil {
		up = fmt.Sprintf("%s@%d", l.Name, l.Timeline)
	}
	if up != a.upstream {
		a.upstream = up
		a.notStreamingSince = time.Time{}
		a.rejoin.leaderChanged() // a transient failure: a new chance against a new leader or timeline
	}
}

// armFences sets the lease guard and the fence process to the current
// lease deadline, and records the claim for the checker.
func (a *agent) armFences() {
	holds := a.keyOnMyLease && !a.dyn.Pause
	t := a.timing()
	a.guard.arm(holds, a.lease.ConfirmedSentAt, t)
	if holds && !a.lease.ConfirmedSentAt.IsZero() {
		m := a.m
		m.claim = claim{inc: a.inc, sentTrue: a.lease.sentTrue,
			deadlineTrue: m.clock.trueAfter(a.lease.sentTrue, t.RenewDeadline())}
	}
	if a.s.cfg.NoFenceProcess {
		return
	}
	if a.fence == nil || !a.fence.alive {
		a.fence = &fenceProc{m: a.m, inc: a.inc, alive: true}
		a.m.fences = append(a.m.fences, a.fence)
	}
	a.fence.update(holds, a.lease.ConfirmedSentAt, t)
}

// fenceNow stops PostgreSQL immediately and waits until it is gone.
func (c *actx) fenceNow(reason string) {
	pg := c.a.m.pg
	if !pg.running {
		return
	}
	gen := pg.gen
	if !pg.stopping {
		pg.stopImmediate(reason)
	}
	c.p.waitFor(func() bool { return pg.gen != gen || !pg.running })
}

// guard is the in-process lease guard: a timer at ConfirmedSentAt + R that
// fences regardless of what the loop is doing. It fires once per deadline.
type guard struct {
	a     *agent
	armed bool
	at    time.Time
	fired bool
}

func (g *guard) arm(holds bool, confirmedSentAt time.Time, dyn cluster.DynamicConfig) {
	if !holds || confirmedSentAt.IsZero() {
		g.disarm()
		return
	}
	deadline := confirmedSentAt.Add(dyn.RenewDeadline())
	if g.armed && g.at.Equal(deadline) {
		return
	}
	g.armed, g.at, g.fired = true, deadline, false
	g.a.s.wakeAt(g.a.m, deadline)
}

func (g *guard) disarm() { g.armed, g.at, g.fired = false, time.Time{}, false }

func (g *guard) tick() {
	if !g.armed || g.fired || g.a.m.mono().Before(g.at) {
		return
	}
	g.fired = true
	pg := g.a.m.pg
	if pg.running {
		g.a.tracef("lease guard: renew deadline passed without a confirmed renewal: fencing")
		pg.stopImmediate("lease guard")
	}
}

// observePostgres reads the local instance as package agent does.
func (c *actx) observePostgres() ha.Postgres {
	a := c.a
	pg := a.m.pg
	now := c.mono()
	p := ha.Postgres{
		StartFailed:       a.startFailed,
		Rejoin:            a.rejoin.observation(),
		Following:         a.following,
		CheckpointPending: a.checkpointPending,
	}
	if a.task != nil {
		p.DataDir = ha.DataDirInitialized
		p.Running = pg.running
		p.LastKnownPrimary = a.lastKnownPrimary && p.Running
		return p
	}
	if pg.data == nil {
		p.DataDir = ha.DataDirEmpty
		a.replicaTimeline = 0
		return p
	}
	p.DataDir = ha.DataDirInitialized
	p.Running = pg.running
	if !p.Running {
		p.SystemID = pg.data.sysid
		p.ControlTimeline = pg.data.controlTimeline()
		p.ControlStandby = pg.data.inRecovery
		if a.downSince.IsZero() {
			a.downSince = now
		}
		p.DownSince = a.downSince
		a.lastKnownPrimary = false
		return p
	}
	a.downSince = time.Time{}
	p.LastKnownPrimary = a.lastKnownPrimary
	if !pg.ready {
		return p // not accepting connections yet
	}
	if pg.stopping {
		// An immediate stop (the lease guard's fence) is in progress:
		// package agent reports it as not answering (Agent.fencing).
		return p
	}
	d := pg.data
	p.Answered = true
	p.SystemID = d.sysid
	p.InRecovery = pg.standby
	// Query's timeline: the WAL file's on a primary; on a standby the
	// receiver's while streaming, else the last restartpoint's.
	stTimeline := d.wal.tl()
	if pg.standby && !pg.streaming {
		stTimeline = d.ckptTL
	}
	p.Timeline = stTimeline
	if pg.standby {
		p.Timeline = max(p.Timeline, a.replicaTimeline)
		a.replicaTimeline = p.Timeline
		p.ReceiveLSN, p.ReplayLSN = d.wal.end(), d.wal.end()
		p.Streaming = pg.streaming
	} else {
		p.WriteLSN = d.wal.end()
	}
	p.ControlTimeline = stTimeline
	p.SyncStandbyNames = slices.Clone(pg.syncNames)
	if len(pg.syncNames) > 0 && pg.syncNames[0] != "*" {
		p.SyncQuorum = pg.syncAny
	}
	if !pg.standby {
		states := pg.syncStates()
		p.StandbyFlush = map[string]int64{}
		for _, o := range pg.walSenders() {
			// pg_stat_replication.flush_lsn: what the standby has
			// durably received of this server's WAL.
			if isPrefix(o.pg.data.wal, d.wal) {
				p.StandbyFlush[o.name] = o.pg.lsn()
			}
			if states[o.name] == "sync" || states[o.name] == "quorum" {
				p.SyncReported = append(p.SyncReported, o.name)
			}
		}
		// The first observation syncSettle after a change of
		// synchronous_standby_names fixes the position a newly
		// synchronous standby must reach before it is published.
		if a.syncSetLSN == 0 && now.Sub(a.syncSetAt) >= syncSettle {
			a.syncSetLSN = p.WriteLSN
		}
	} else {
		a.syncSetLSN, a.syncSetAt = 0, now
	}
	p.SyncSetLSN = a.syncSetLSN
	a.lastKnownPrimary = !pg.standby
	p.LastKnownPrimary = a.lastKnownPrimary
	if !pg.standby || p.Streaming {
		a.notStreamingSince = time.Time{}
	} else if a.notStreamingSince.IsZero() {
		a.notStreamingSince = now
	}
	p.NotStreamingSince = a.notStreamingSince
	return p
}

// probePeers asks every other member in the view for its state, in
// parallel, bounded by peer_timeout.
func (c *actx) probePeers(view *cluster.Cluster) []ha.Peer {
	a := c.a
	if view == nil {
		return nil
	}
	type probe struct {
		name string
		r    *peerReq
	}
	var probes []probe
	for _, mv := range view.SortedMembers() {
		to := a.s.byName[mv.Name]
		if mv.Name == a.m.name || mv.APIURL == "" || to == nil {
			continue
		}
		probes = append(probes, probe{mv.Name, a.peerRequest(to, func() (any, bool) {
			ta := to.agent
			if ta == nil || !to.agentRunning() || !ta.apiUp {
				return nil, false
			}
			return ta.snap, true
		})})
	}
	deadline := c.deadline(a.dyn.PeerTimeoutDuration())
	c.p.waitFor(func() bool {
		for _, pr := range probes {
			if !pr.r.done {
				return !a.m.mono().Before(deadline)
			}
		}
		return true
	})
	var peers []ha.Peer
	for _, pr := range probes {
		p := ha.Peer{Name: pr.name}
		if pr.r.done {
			sn := pr.r.res.(snapshot)
			p.Reachable = true
			p.Role, p.State, p.Timeline, p.Priority = sn.role, sn.state, sn.timeline, sn.priority
			if !sn.set {
				p.Role, p.State = cluster.RoleUninitialized, "unknown"
			}
			if sn.state == cluster.StateRunning {
				if sn.role == cluster.RolePrimary {
					p.LSN = sn.xlog
				} else {
					recv := sn.recv
					if recv == 0 {
						recv = sn.replay
					}
					p.LSN = max(recv, sn.replay)
				}
			}
		}
		peers = append(peers, p)
	}
	return peers
}

// memberState is the PostgreSQL state the member reports.
func (a *agent) memberState(p ha.Postgres) string {
	switch {
	case a.task != nil:
		return a.task.state
	case p.DataDir == ha.DataDirEmpty:
		return cluster.StateStopped
	case p.Running && p.Answered:
		return cluster.StateRunning
	case p.Running:
		return cluster.StateStarting
	case a.rejoin.last != nil && a.rejoin.last.NeedsOperator:
		return cluster.StateNeedsReinit
	case a.rejoin.last != nil && a.rejoin.last.Step == "pg_rewind":
		return cluster.StateRewindFailed
	case a.rejoin.last != nil && a.rejoin.last.Step == "start":
		return cluster.StateStartFailed
	case a.startFailed:
		return cluster.StateStartFailed
	case a.expectRunning:
		return cluster.StateCrashed
	}
	return cluster.StateStopped
}

func roleOf(p ha.Postgres) string {
	switch {
	case p.DataDir == ha.DataDirEmpty:
		return cluster.RoleUninitialized
	case p.Running && p.Answered && !p.InRecovery:
		return cluster.RolePrimary
	}
	return cluster.RoleReplica
}

// timeline is the observed timeline, else the last one known.
func (a *agent) timeline(p ha.Postgres) int {
	if tl := max(p.Timeline, p.ControlTimeline); tl > 0 {
		a.lastTimeline = tl
	}
	return a.lastTimeline
}

// publish writes the member key and the REST snapshot.
func (c *actx) publish(o ha.Observation) {
	a := c.a
	p := o.PG
	state := a.memberState(p)
	role := roleOf(p)
	if a.task != nil && role == cluster.RolePrimary {
		role = cluster.RoleReplica
	}
	mv := cluster.Member{
		ConnURL:  "postgres://" + a.m.name + ":5432/postgres",
		APIURL:   "http://" + a.m.name + ":8008/patroni",
		State:    state,
		Role:     role,
		Version:  agentVersion,
		Timeline: a.timeline(p),
		Pause:    a.dyn.Pause,
	}
	if tags := a.m.tags; !tags.IsZero() {
		mv.Tags = &tags
	}
	if p.Answered {
		lsn := p.LSN()
		mv.XLogLocation = &lsn
		if p.InRecovery {
			recv, replay := p.ReceiveLSN, p.ReplayLSN
			mv.ReceiveLSN, mv.ReplayLSN = &recv, &replay
			mv.ReplicationState = cluster.ReplicationArchive
			if p.Streaming {
				mv.ReplicationState = cluster.ReplicationStreaming
			}
		}
	}
	if a.keyOnMyLease {
		done := !a.checkpointPending
		mv.CheckpointAfterPromote = &done
	}
	_ = c.touchMember(c.deadline(a.dyn.RetryTimeoutDuration()), mv)
	a.snap = snapshot{
		set: true, role: role, state: state, timeline: mv.Timeline,
		xlog: p.WriteLSN, recv: p.ReceiveLSN, replay: p.ReplayLSN,
		priority: a.m.tags.Priority(),
	}
}

// shutdown is the agent's clean exit: stop PostgreSQL, then release the
// key, then delete the member key.
func (c *actx) shutdown() {
	a := c.a
	a.guard.disarm()
	if t := a.task; t != nil {
		until := c.deadline(30 * time.Second)
		c.p.waitFor(func() bool { return t.done || !a.m.mono().Before(until) })
		if t.done {
			a.finishTask(t)
		}
	}
	wasLeader := a.keyOnMyLease
	if a.m.pg.running {
		if err := c.pgStop(false, 20*time.Second); err != nil {
			return
		}
	}
	if a.fence != nil {
		a.fence.stop()
	}
	if wasLeader {
		if err := c.releaseLeader(c.deadline(30 * time.Second)); err == nil {
			a.tracef("released the leader key at shutdown")
		}
	}
	_ = c.deleteMember(c.deadline(30 * time.Second))
}
