package agent

import (
	"context"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
	"github.com/regent-ha/regent/internal/slots"
)

// syncSlots brings this server's replication slots to what internal/slots
// decides for the view: on the primary (the leader's housekeeping and
// right after promotion) and, every loop, on a running replica, which
// keeps its copies of the members' and permanent physical slots advanced
// to the leader's published positions. It returns the slots that exist
// afterwards as far as it knows (for the status key).
func (a *Agent) syncSlots(ctx context.Context, view *cluster.Cluster, primary bool) ([]slots.Slot, error) {
	existing, err := a.pg.ReplicationSlots(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ttl := a.dyn.MemberSlotsTTL.Duration()
	in := slots.Input{
		Self: a.cfg.Name, Primary: primary, Members: memberNames(view), NoFailover: a.cfg.Tags.NoFailover,
		NoStream: a.cfg.Tags.NoStream, NoStreamMembers: noStreamMembers(view),
		ServerVersion: a.lastPG.ServerVersion,
		Retained: a.slotRetention.Retained(now, ttl), Expired: a.slotRetention.Expired(now, ttl),
		StatusRetain: view.Status.RetainSlots, Positions: view.Status.Slots,
		Config: a.dyn, Existing: existing,
	}
	p := slots.Decide(in)
	for _, pr := range p.Problems {
		a.log.Warn("skipping a permanent replication slot", "problem", pr)
	}
	if a.dyn.Pause {
		p.Drop, p.Forget = nil, nil // maintenance mode: drop nothing
	}
	if p.Empty() {
		a.slotRetention.Forget(p.Forget)
		return existing, nil
	}
	if err := a.pg.ApplySlots(ctx, p); err != nil {
		return existing, err
	}
	a.slotRetention.Forget(p.Forget)
	return a.pg.ReplicationSlots(ctx)
}

// observeSlotMembers records, every loop on every member, which member
// slots are current: the members in the view and, while another member
// leads, the slots it retains for absent members. A member promoted later
// keeps those for member_slots_ttl from its last sight of them.
func (a *Agent) observeSlotMembers(view *cluster.Cluster) {
	if view == nil {
		return
	}
	var retain []string
	if view.LeaderName() != a.cfg.Name {
		retain = view.Status.RetainSlots
	}
	a.slotRetention.Observe(time.Now(), memberNames(view), retain)
}

// replicaSlots keeps a running replica's slot copies in step with the
// leader; problems are logged, never fatal to the loop.
func (a *Agent) replicaSlots(ctx context.Context, o ha.Observation) {
	if o.Cluster == nil || a.task != nil || !o.PG.Running || !o.PG.Answered || !o.PG.InRecovery ||
		o.Cluster.LeaderName() == "" || o.Cluster.LeaderName() == a.cfg.Name {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	if _, err := a.syncSlots(sctx, o.Cluster, false); err != nil {
		a.log.Warn("keeping replication slot copies on this replica", "err", err)
	}
}

// leaderStatus is the status key: the optime, the position of every
// streaming member (by slot name), this member's own slot name at the
// optime and every permanent slot's position on this server (so replicas
// advance their copies), and the member slots retained for absent members.
func (a *Agent) leaderStatus(o ha.Observation, existing []slots.Slot) cluster.Status {
	st := ha.LeaderStatus(o)
	add := func(name string, lsn int64) {
		if lsn <= 0 {
			return
		}
		if st.Slots == nil {
			st.Slots = map[string]int64{}
		}
		st.Slots[name] = max(st.Slots[name], lsn)
	}
	add(cluster.SlotName(a.cfg.Name), st.Optime)
	for _, s := range existing {
		if _, permanent := a.dyn.Slots[s.Name]; permanent {
			add(s.Name, s.Position())
		}
	}
	if a.dyn.PostgreSQL.UseSlots {
		for _, n := range a.slotRetention.Retained(time.Now(), a.dyn.MemberSlotsTTL.Duration()) {
			if _, permanent := a.dyn.Slots[n]; !permanent {
				st.RetainSlots = append(st.RetainSlots, n)
			}
		}
	}
	return st
}

func memberNames(view *cluster.Cluster) []string {
	if view == nil {
		return nil
	}
	out := make([]string, 0, len(view.Members))
	for n := range view.Members {
		out = append(out, n)
	}
	return out
}

// noStreamMembers are the members tagged nostream: they stream from
// nobody, so no member keeps a slot for them.
func noStreamMembers(view *cluster.Cluster) []string {
	if view == nil {
		return nil
	}
	var out []string
	for n, m := range view.Members {
		if m.EffectiveTags().NoStream {
			out = append(out, n)
		}
	}
	return out
}
