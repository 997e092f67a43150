// Package slots decides which replication slots a member keeps, creates,
// advances and drops. It is pure: the caller passes the slots that exist,
// the cluster view, the configuration and the time, and applies the Plan.
//
// Ownership, the rule that keeps Regent away from other tools' slots: Regent
// owns a slot only if its name is
//
//   - the slot name (cluster.SlotName) of a member in the view,
//   - the slot name of a member that left less than member_slots_ttl ago,
//     or whose retention ran out in this agent's lifetime (Retention), or
//     that the leader's status key lists in retain_slots,
//   - or the name of a permanent slot in the configuration (slots).
//
// Only owned slots are ever dropped, and never one matching ignore_slots
// or one that is active; a logical one only on a replica (below). A slot made by pg_receivewal,
// barman or a logical consumer under any other name is left alone. (Patroni
// drops every slot it does not know unless ignore_slots matches it.)
//
// Which owned slots are kept: on every member with use_slots, one physical
// slot per other member (for members gone from the view, until
// member_slots_ttl has passed) and the permanent physical slots; on the
// leader the permanent logical slots too. A replica keeps its copies of
// these physical slots advanced to the positions the leader publishes in
// the status key, so that a replica promoted after a failover already holds
// the WAL every member and permanent slot still needs.
//
// Permanent logical slots, as Patroni 4 keeps them: the leader creates
// them (from PostgreSQL 17 with failover => true, and its replicas run
// sync_replication_slots instead of the rules below). Below 17, a
// replica that may become the leader keeps a copy of each: a missing copy
// is copied from the leader's pg_replslot/<name>/state (CopyLogical), an
// existing one is advanced to the leader's confirmed flush position, never
// past the replica's replay LSN; both only once hot_standby_feedback is on
// and the leader's slot for this member carries an xmin. A copy that is
// ahead of the leader's (a demoted or rewound primary's slot) or has
// another database or plugin is dropped and copied again.
//
// nostream: a replica tagged nostream streams from nobody, so no member
// keeps a physical slot for it, and it keeps no copies, physical or
// logical.
package slots

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Slot is a replication slot that exists on the server.
type Slot struct {
	Name     string
	Type     string // cluster.SlotPhysical or cluster.SlotLogical
	Active   bool
	Database string
	Plugin   string
	// RestartLSN is the oldest WAL the slot needs; 0 when it reserves none.
	RestartLSN int64
	// ConfirmedFlushLSN is a logical slot's confirmed position.
	ConfirmedFlushLSN int64
}

// Position is the WAL position a slot stands for in the status key: the
// restart LSN of a physical slot, the confirmed flush LSN of a logical one.
func (s Slot) Position() int64 {
	if s.Type == cluster.SlotLogical {
		return s.ConfirmedFlushLSN
	}
	return s.RestartLSN
}

// Input is what Decide needs.
type Input struct {
	// Self is this member's name.
	Self string
	// Primary is true when this member is the running primary holding the
	// leader key; false on a running replica.
	Primary bool
	// Members are the names of the members in the view.
	Members []string
	// NoFailover is this member's tag: such a replica never becomes the
	// leader and keeps no copies of the others' slots.
	NoFailover bool
	// NoStream is this member's nostream tag: it recovers from the archive
	// only and keeps no slot copies, physical or logical.
	NoStream bool
	// NoStreamMembers are the members tagged nostream: no member keeps a
	// physical slot for them.
	NoStreamMembers []string
	// ServerVersion is server_version_num (150000 for 15). From 17 on,
	// permanent logical slots are failover slots that PostgreSQL itself
	// synchronises to replicas (sync_replication_slots); below, a replica
	// keeps copies of them.
	ServerVersion int
	// ReplayLSN is a replica's replay position: a logical copy is never
	// advanced past it.
	ReplayLSN int64
	// FeedbackReady is true on a replica whose hot_standby_feedback is on
	// and whose physical slot on the leader carries an xmin: without it
	// the leader may remove catalog rows a logical copy still needs, so
	// no copy is made or advanced.
	FeedbackReady bool
	// Retained are member slot names kept for absent members
	// (Retention.Retained) and Expired those whose time ran out
	// (Retention.Expired).
	Retained, Expired []string
	// StatusRetain is the status key's retain_slots.
	StatusRetain []string
	// Positions are the status key's slots (name -> LSN): where a
	// replica advances its copies to.
	Positions map[string]int64
	Config    cluster.DynamicConfig
	Existing  []Slot
}

// LogicalSlot is a logical slot to create.
type LogicalSlot struct {
	Name, Database, Plugin string
	// Failover creates it with failover => true (PostgreSQL 17 and later).
	Failover bool
}

// failoverSlotsVersion is the first server_version_num with failover
// slots and sync_replication_slots.
const failoverSlotsVersion = 170000

// Plan is what to change, each entry with its reason.
type Plan struct {
	// Create are physical slots to create, reserving WAL at once.
	Create []string
	// CreateLogical are permanent logical slots to create (primary only).
	CreateLogical []LogicalSlot
	// Advance moves inactive physical slots forward (name -> LSN).
	Advance map[string]int64
	// CopyLogical are permanent logical slots missing on this replica
	// (PostgreSQL below 17): their state file is copied from the leader
	// while this server is stopped.
	CopyLogical []LogicalSlot
	// AdvanceLogical moves a replica's inactive logical copies forward
	// (name -> LSN: the leader's confirmed flush, at most the replay LSN).
	AdvanceLogical map[string]int64
	// SyncReplicationSlots is true on a replica of PostgreSQL 17 or later
	// that is to have sync_replication_slots on (it keeps the failover
	// slots itself).
	SyncReplicationSlots bool
	// Drop are owned, inactive slots no longer kept.
	Drop []string
	// Reasons says why each named slot is created, advanced or dropped.
	Reasons map[string]string
	// Problems are configuration entries that were skipped.
	Problems []string
	// Forget are expired names whose slots are gone once the plan is
	// applied (Retention.Forget).
	Forget []string
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return len(p.Create)+len(p.CreateLogical)+len(p.Advance)+len(p.Drop)+len(p.CopyLogical)+len(p.AdvanceLogical) == 0
}

// validName is the form PostgreSQL and Patroni accept for slot names.
var validName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Decide computes the plan for one member.
func Decide(in Input) Plan {
	p := Plan{Advance: map[string]int64{}, AdvanceLogical: map[string]int64{}, Reasons: map[string]string{}}
	self := cluster.SlotName(in.Self)
	useSlots := in.Config.PostgreSQL.UseSlots
	keepCopies := in.Primary || (!in.NoFailover && !in.NoStream)
	failoverSlots := in.ServerVersion >= failoverSlotsVersion
	noStream := map[string]bool{}
	for _, m := range in.NoStreamMembers {
		noStream[cluster.SlotName(m)] = true
	}

	owned := map[string]bool{}
	want := map[string]string{} // name -> type
	why := map[string]string{}
	for _, m := range in.Members {
		n := cluster.SlotName(m)
		owned[n] = true
		if n != self && useSlots && keepCopies && !noStream[n] {
			want[n], why[n] = cluster.SlotPhysical, "slot of member "+m
		}
	}
	for _, list := range [][]string{in.Retained, in.StatusRetain} {
		for _, n := range list {
			owned[n] = true
			if _, ok := want[n]; !ok && n != self && useSlots && keepCopies {
				want[n], why[n] = cluster.SlotPhysical, "slot of a member that left less than member_slots_ttl ago"
			}
		}
	}
	for _, n := range in.Expired {
		owned[n] = true
	}
	logical := map[string]LogicalSlot{}
	for _, n := range sortedNames(in.Config.Slots) {
		ps := in.Config.Slots[n]
		if !validName.MatchString(n) {
			p.Problems = append(p.Problems, fmt.Sprintf("permanent slot %q: a slot name may contain only a-z, 0-9 and _ (at most 63)", n))
			continue
		}
		switch ps.Kind() {
		case cluster.SlotPhysical:
			owned[n] = true
			if n != self && useSlots && keepCopies {
				if _, isMember := want[n]; !isMember {
					want[n], why[n] = cluster.SlotPhysical, "permanent physical slot"
				}
			}
		case cluster.SlotLogical:
			if ps.Database == "" || ps.Plugin == "" {
				p.Problems = append(p.Problems, fmt.Sprintf("permanent slot %q: a logical slot needs database and plugin", n))
				continue
			}
			if _, isMember := want[n]; isMember {
				p.Problems = append(p.Problems, fmt.Sprintf("permanent logical slot %q has the name of a member's slot", n))
				continue
			}
			owned[n] = true
			if useSlots && (in.Primary || keepCopies) {
				logical[n] = LogicalSlot{Name: n, Database: ps.Database, Plugin: ps.Plugin, Failover: failoverSlots}
			}
		default:
			p.Problems = append(p.Problems, fmt.Sprintf("permanent slot %q: type must be physical or logical, got %q", n, ps.Type))
		}
	}

	have := map[string]Slot{}
	for _, s := range in.Existing {
		have[s.Name] = s
	}
	for _, n := range sortedKeys(want) {
		s, ok := have[n]
		switch {
		case !ok:
			p.Create = append(p.Create, n)
			p.Reasons[n] = why[n]
		case s.Type != cluster.SlotPhysical:
			// A logical slot under a member's name: not Regent's to touch.
		case !in.Primary && !s.Active && s.RestartLSN > 0 && in.Positions[n] > s.RestartLSN:
			p.Advance[n] = in.Positions[n]
			p.Reasons[n] = why[n] + ": advanced to the leader's position"
		}
	}
	var dropLogical []string
	for _, n := range sortedKeys(logical) {
		ls := logical[n]
		s, ok := have[n]
		switch {
		case in.Primary && !ok:
			p.CreateLogical = append(p.CreateLogical, ls)
			p.Reasons[n] = "permanent logical slot"
		case in.Primary:
		case failoverSlots:
			// PostgreSQL 17+: the replica's slot sync worker keeps it.
			p.SyncReplicationSlots = true
		case ok && (s.Type != cluster.SlotLogical || s.Active):
			// Under another type, or in use: not Regent's to touch.
		case ok && (s.Database != ls.Database || s.Plugin != ls.Plugin):
			dropLogical = append(dropLogical, n)
			p.Reasons[n] = "logical copy with another database or plugin than configured: dropped, to be copied again from the leader"
		case in.Positions[n] == 0:
			// The leader publishes no position: it has no such slot yet.
		case ok && s.ConfirmedFlushLSN > in.Positions[n]:
			// A demoted or rewound primary's slot is ahead of the
			// leader's: its position names changes the new timeline
			// may not have, so the leader's copy replaces it.
			dropLogical = append(dropLogical, n)
			p.Reasons[n] = "logical slot ahead of the leader's (a former primary's): dropped, to be copied again from the leader"
		case !in.FeedbackReady:
			// Not copied or advanced until hot_standby_feedback is on and
			// the leader's slot for this member carries an xmin (Patroni's
			// "physical slot required" check): the leader could have
			// removed catalog rows the copy needs.
		case !ok:
			p.CopyLogical = append(p.CopyLogical, ls)
			p.Reasons[n] = "permanent logical slot: copied from the leader so that it survives a failover"
		default:
			if to := min(in.Positions[n], in.ReplayLSN); to > s.ConfirmedFlushLSN {
				p.AdvanceLogical[n] = to
				p.Reasons[n] = "permanent logical slot: copy advanced to the leader's confirmed position"
			}
		}
	}
	for _, s := range in.Existing {
		if s.Type == cluster.SlotLogical && owned[s.Name] && !s.Active && !in.Primary && !failoverSlots &&
			(!useSlots || !keepCopies) && !ignored(in.Config.IgnoreSlots, s) {
			dropLogical = append(dropLogical, s.Name)
			p.Reasons[s.Name] = dropReason(s.Name, self, useSlots, keepCopies, nil, in.NoStream)
		}
	}
	p.Drop = append(p.Drop, dropLogical...)
	for _, s := range in.Existing {
		if !owned[s.Name] || s.Active || s.Type != cluster.SlotPhysical {
			continue
		}
		if _, ok := want[s.Name]; ok {
			continue
		}
		if ignored(in.Config.IgnoreSlots, s) {
			continue
		}
		p.Drop = append(p.Drop, s.Name)
		p.Reasons[s.Name] = dropReason(s.Name, self, useSlots, keepCopies, in.Expired, in.NoStream)
	}
	sort.Strings(p.Drop)
	for _, n := range in.Expired {
		if _, kept := want[n]; kept {
			continue
		}
		if s, exists := have[n]; !exists || contains(p.Drop, n) || s.Type != cluster.SlotPhysical {
			p.Forget = append(p.Forget, n)
		}
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func dropReason(name, self string, useSlots, keepCopies bool, expired []string, noStream bool) string {
	switch {
	case !useSlots:
		return "use_slots is off"
	case name == self:
		return "this member's own slot"
	case !keepCopies && noStream:
		return "a nostream replica keeps no slot copies"
	case !keepCopies:
		return "a nofailover replica keeps no member slots"
	}
	for _, e := range expired {
		if e == name {
			return "member left more than member_slots_ttl ago"
		}
	}
	return "no longer a member or permanent slot"
}

func ignored(ms []cluster.IgnoreSlot, s Slot) bool {
	for _, m := range ms {
		if m.Matches(s.Name, s.Type, s.Database, s.Plugin) {
			return true
		}
	}
	return false
}

// Retention remembers when each member slot name was last seen in the
// view, so that a member's slot outlives its member key by
// member_slots_ttl (Patroni 4 keeps the same list in the status key's
// retain_slots, which a new leader adopts with the time of its
// promotion). The zero value is ready to use; it is not safe for
// concurrent use.
type Retention struct {
	seen map[string]time.Time
}

// Observe records that the slot names of members (and, on a replica, the
// status key's retain_slots: the leader still keeps them) were current
// at now.
func (r *Retention) Observe(now time.Time, members []string, retain []string) {
	if r.seen == nil {
		r.seen = map[string]time.Time{}
	}
	for _, m := range members {
		r.seen[cluster.SlotName(m)] = now
	}
	for _, n := range retain {
		r.seen[n] = now
	}
}

// Retained are the names seen less than ttl before now, sorted.
func (r *Retention) Retained(now time.Time, ttl time.Duration) []string {
	var out []string
	for n, t := range r.seen {
		if now.Sub(t) < ttl {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Expired are the names last seen ttl or more before now, sorted.
func (r *Retention) Expired(now time.Time, ttl time.Duration) []string {
	var out []string
	for n, t := range r.seen {
		if now.Sub(t) >= ttl {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Forget removes names whose slots are gone.
func (r *Retention) Forget(names []string) {
	for _, n := range names {
		delete(r.seen, n)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedNames(m map[string]*cluster.PermanentSlot) []string { return sortedKeys(m) }
