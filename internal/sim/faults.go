package sim

import (
	"fmt"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/operate"
)

// FaultKind is a kind of injected fault.
type FaultKind int

// Fault kinds.
const (
	// KillAgent is kill -9 of the agent; PostgreSQL keeps running. The
	// agent restarts after the fault's duration.
	KillAgent FaultKind = iota
	// KillNode is kill -9 of the agent and the postmaster (a process-level
	// host loss); the agent restarts after the duration.
	KillNode
	// PauseAgent is SIGSTOP of the agent process only; PostgreSQL (a
	// separate process) and the fence process keep running.
	PauseAgent
	// PauseNode freezes every process of the host (cgroup freezer, VM
	// pause); clocks keep running.
	PauseNode
	// SuspendNode suspends the host: every process stops and the
	// monotonic clock stops too (the boot-time clock does not).
	SuspendNode
	// PartitionDCS cuts the member off from the DCS.
	PartitionDCS
	// PartitionPeers cuts the member off from the other members (or from
	// Fault.Peer only): replication, probes, copies.
	PartitionPeers
	// Isolate cuts the member off from the DCS and the other members.
	Isolate
	// DCSOutage makes the whole DCS unavailable (quorum loss): no request
	// succeeds and no lease expires.
	DCSOutage
	// ClockSkew sets the member's clock rate to a random value within
	// ±clock_drift (or Fault.Rate).
	ClockSkew
	// KillPostmaster is kill -9 of the postmaster only.
	KillPostmaster
	// Switchover has an operator request a switchover (to a random member
	// or to the best one) through the failover key.
	Switchover
	// RestartAgent shuts the agent down cleanly (stop PostgreSQL, release
	// the key) and starts it again after the duration.
	RestartAgent
	// ChangeTTL has an operator change ttl in the config key, as
	// `regent edit-config -s ttl=N` does (a write pinned to the revision
	// read): to Fault.TTL, or at random between the run's ttl and three
	// times it, often back to the run's ttl. Agents adopt it at their next
	// view load (woken by the watch event) and move their keys onto a
	// lease with the new TTL.
	ChangeTTL
	numFaultKinds
)

var faultNames = [...]string{
	KillAgent: "kill_agent", KillNode: "kill_node", PauseAgent: "pause_agent", PauseNode: "pause_node",
	SuspendNode: "suspend_node", PartitionDCS: "partition_dcs", PartitionPeers: "partition_peers",
	Isolate: "isolate", DCSOutage: "dcs_outage", ClockSkew: "clock_skew", KillPostmaster: "kill_postmaster",
	Switchover: "switchover", RestartAgent: "restart_agent", ChangeTTL: "change_ttl",
}

func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultNames) {
		return faultNames[k]
	}
	return fmt.Sprintf("fault(%d)", int(k))
}

// DefaultWeights are the relative frequencies of random faults.
var DefaultWeights = map[FaultKind]int{
	KillAgent: 6, KillNode: 8, PauseAgent: 6, PauseNode: 8, SuspendNode: 2,
	PartitionDCS: 10, PartitionPeers: 6, Isolate: 8, DCSOutage: 4, ClockSkew: 4,
	KillPostmaster: 6, Switchover: 5, RestartAgent: 3, ChangeTTL: 3,
}

// Fault is one injected fault.
type Fault struct {
	At   time.Duration
	Kind FaultKind
	// Member is the target: a member name, "leader" (the holder of the
	// leader key when the fault starts, else a random member) or "" (a
	// random member, or the leader with probability LeaderBias).
	Member string
	// Peer narrows PartitionPeers to one link.
	Peer string
	// Duration is how long the fault lasts (not used by ClockSkew,
	// KillPostmaster, Switchover and ChangeTTL).
	Duration time.Duration
	// Rate is ClockSkew's clock rate (0: random within ±clock_drift).
	Rate float64
	// TTL is ChangeTTL's new ttl in seconds (0: random).
	TTL int
}

func (f Fault) String() string {
	s := fmt.Sprintf("%s at %s", f.Kind, fmtDur(f.At))
	if f.Member != "" {
		s += " on " + f.Member
	}
	if f.Duration > 0 {
		s += " for " + fmtDur(f.Duration)
	}
	if f.TTL > 0 {
		s += fmt.Sprintf(" to ttl %ds", f.TTL)
	}
	return s
}

// FaultConfig describes the random fault schedule and scripted faults.
type FaultConfig struct {
	// MeanInterval is the mean time between random faults (0: no random
	// faults).
	MeanInterval time.Duration
	// MinDuration and MaxDuration bound a random fault's duration
	// (defaults 200 ms and 3×TTL).
	MinDuration, MaxDuration time.Duration
	// Weights are the relative frequencies of the random fault kinds
	// (nil: DefaultWeights).
	Weights map[FaultKind]int
	// LeaderBias is the probability that a random fault targets the
	// current leader (default 0.6).
	LeaderBias float64
	// Heal is the fault-free time at the end of the run: every fault ends
	// before it, and the run then checks that the cluster healed
	// (default 45 s when random faults are on).
	Heal time.Duration
	// Script lists faults injected at fixed times.
	Script []Fault
	// SlowRequests is the probability that one network hop is slow
	// (50 ms–1.5 s); default 0.005. Negative: never.
	SlowRequests float64
	// FenceOverrun > 1 makes PostgreSQL's immediate stop take between
	// fence_timeout and FenceOverrun × fence_timeout, breaking the timing
	// assumption on purpose: the checker must then find violations.
	FenceOverrun float64
}

func (f FaultConfig) withDefaults(dyn cluster.DynamicConfig) FaultConfig {
	if f.MinDuration <= 0 {
		f.MinDuration = 200 * time.Millisecond
	}
	if f.MaxDuration <= 0 {
		f.MaxDuration = 3 * dyn.TTLDuration()
	}
	if f.Weights == nil {
		f.Weights = DefaultWeights
	}
	if f.LeaderBias == 0 {
		f.LeaderBias = 0.6
	}
	if f.Heal == 0 && f.MeanInterval > 0 {
		f.Heal = 45 * time.Second
	}
	switch {
	case f.SlowRequests == 0:
		f.SlowRequests = 0.005
	case f.SlowRequests < 0:
		f.SlowRequests = 0
	}
	return f
}

// scheduleFaults plans the scripted and random faults.
func (s *Sim) scheduleFaults() {
	fc := s.cfg.Faults
	for _, f := range fc.Script {
		s.scheduleFault(f)
	}
	if fc.MeanInterval <= 0 {
		return
	}
	total := 0
	for k := range numFaultKinds {
		total += fc.Weights[k]
	}
	if total == 0 {
		return
	}
	end := s.cfg.Duration - fc.Heal
	// The first fault comes after the cluster had time to bootstrap.
	t := 15*time.Second + s.uniform(0, 2*fc.MeanInterval)
	for t < end {
		r := s.rng.IntN(total)
		kind := FaultKind(0)
		for k := range numFaultKinds {
			if r < fc.Weights[k] {
				kind = k
				break
			}
			r -= fc.Weights[k]
		}
		d := s.uniform(fc.MinDuration, fc.MaxDuration)
		if t+d > end {
			d = end - t
		}
		s.scheduleFault(Fault{At: t, Kind: kind, Duration: d})
		t += s.uniform(fc.MeanInterval/4, 2*fc.MeanInterval)
	}
}

func (s *Sim) scheduleFault(f Fault) {
	s.at(f.At, func() { s.inject(f) })
}

// target resolves a fault's member.
func (s *Sim) target(name string) *member {
	switch name {
	case "":
		if s.chance(s.cfg.Faults.LeaderBias) {
			if m := s.byName[s.dcs.leaderName()]; m != nil {
				return m
			}
		}
		return s.members[s.rng.IntN(len(s.members))]
	case "leader":
		if m := s.byName[s.dcs.leaderName()]; m != nil {
			return m
		}
		return s.members[s.rng.IntN(len(s.members))]
	}
	return s.byName[name]
}

// inject starts a fault and schedules its end.
func (s *Sim) inject(f Fault) {
	m := s.target(f.Member)
	if m == nil {
		return
	}
	s.check.stats.Faults[f.Kind.String()]++
	inj := f
	inj.At, inj.Member = s.now, m.name
	s.injected = append(s.injected, inj)
	end := func(fn func()) {
		if f.Duration > 0 {
			s.after(f.Duration, fn)
		} else {
			fn()
		}
	}
	dur := ""
	if f.Duration > 0 {
		dur = " for " + fmtDur(f.Duration)
	}
	s.tracef("FAULT %s on %s%s", f.Kind, m.name, dur)
	switch f.Kind {
	case KillAgent, KillNode:
		if m.agent == nil {
			return
		}
		m.killAgent("killed (" + f.Kind.String() + ")")
		if f.Kind == KillNode {
			m.pg.kill("killed with its host")
		}
		end(func() { m.startAgent() })
	case RestartAgent:
		if m.agent == nil {
			return
		}
		a := m.agent
		a.stopRequest = true
		var restart func()
		restart = func() {
			if m.agent == a && !a.dead {
				s.after(time.Second, restart) // still shutting down
				return
			}
			m.startAgent()
		}
		end(restart)
	case PauseAgent:
		m.agentPaused++
		m.noteAvail()
		end(func() { m.agentPaused--; m.noteAvail() })
	case PauseNode:
		m.nodePaused++
		m.noteAvail()
		end(func() { m.nodePaused--; m.noteAvail() })
	case SuspendNode:
		m.suspended++
		if m.suspended == 1 {
			m.clock.setSuspended(s.now, true)
		}
		m.noteAvail()
		end(func() {
			m.suspended--
			if m.suspended == 0 {
				m.clock.setSuspended(s.now, false)
			}
			m.noteAvail()
		})
	case PartitionDCS, Isolate:
		s.net.toDCS[m.idx]++
		if f.Kind == Isolate {
			s.cutPeers(m, "", 1)
		}
		end(func() {
			s.net.toDCS[m.idx]--
			if f.Kind == Isolate {
				s.cutPeers(m, "", -1)
			}
			s.healed()
		})
	case PartitionPeers:
		s.cutPeers(m, f.Peer, 1)
		end(func() { s.cutPeers(m, f.Peer, -1) })
	case DCSOutage:
		s.net.dcsOutage++
		end(func() {
			s.net.dcsOutage--
			if s.net.dcsOutage == 0 {
				s.dcs.restored()
			}
			s.healed()
		})
	case ClockSkew:
		rate := f.Rate
		if rate == 0 {
			eps := s.dyn.ClockDrift
			rate = 1 - eps + 2*eps*s.rng.Float64()
		}
		m.clock.setRate(s.now, rate)
		s.tracef("%s: clock rate %.4f", m.name, rate)
	case KillPostmaster:
		m.pg.kill("postmaster killed")
	case Switchover:
		s.dcs.operatorSwitchover()
	case ChangeTTL:
		s.dcs.operatorChangeTTL(f.TTL)
	}
}

// cutPeers changes the partition counters between m and peer ("" = all).
func (s *Sim) cutPeers(m *member, peer string, delta int) {
	for _, o := range s.members {
		if o == m || (peer != "" && o.name != peer) {
			continue
		}
		s.net.peers[m.idx][o.idx] += delta
		s.net.peers[o.idx][m.idx] += delta
	}
}

// healed wakes the agents after a DCS link came back: their watches
// reconnect and deliver what they missed.
func (s *Sim) healed() {
	for _, m := range s.members {
		if a := m.agent; a != nil {
			a.notifyWatch()
		}
	}
}

// checkSwitchover validates a switchover like `regent ctl switchover`.
func checkSwitchover(view *cluster.Cluster, leader, candidate string) (cluster.Failover, error) {
	return operate.CheckSwitchover(view, leader, candidate, time.Time{}, time.Time{})
}
