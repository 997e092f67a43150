package cluster

import "strings"

// SlotName converts a member name into the name of the physical replication
// slot the leader keeps for it: lower-case, characters other than
// [a-z0-9_] replaced by '_', at most 63 bytes. The status key's slots are
// keyed by these names.
func SlotName(member string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(member) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 63 {
			break
		}
	}
	return b.String()
}

// Position is the WAL position of replica m to compare with the leader's
// optime: the larger of the xlog_location m published (max(received,
// replayed) when m last looked) and the position the leader saw m flush
// when it wrote the status key (Status.Slots, read from
// pg_stat_replication in the same observation as Status.Optime).
//
// m's key alone can be a whole loop older than the optime: a replica
// observed just as its WAL receiver started, before a WAL switch on the
// leader reached it, keeps publishing a position a full segment behind
// for a loop although it caught up milliseconds later. Comparing it with
// a later optime reports lag that does not exist. The slot position was
// taken together with the optime, so optime minus Position never exceeds
// the lag the leader itself observed. ok is false when neither is known.
func (c *Cluster) Position(m *Member) (lsn int64, ok bool) {
	if m == nil {
		return 0, false
	}
	if m.XLogLocation != nil {
		lsn, ok = *m.XLogLocation, true
	}
	if c != nil {
		if s, found := c.Status.Slots[SlotName(m.Name)]; found && s > lsn {
			lsn, ok = s, true
		}
	}
	return lsn, ok
}

// Lag is how many bytes of WAL replica m is behind the status key's optime
// (by Position), at least 0; ok is false when the optime or m's position
// is unknown.
func (c *Cluster) Lag(m *Member) (lag int64, ok bool) {
	pos, known := c.Position(m)
	if c == nil || !known || c.Status.Optime <= 0 {
		return 0, false
	}
	return max(c.Status.Optime-pos, 0), true
}

// StatusFrom is the status key a leader named self writes: its WAL
// position optime and, in Slots, the position every other member of c has
// flushed according to pg_stat_replication (flush, keyed by
// application_name, which is the member name), keyed by slot name. Members
// without a reported position are left out. Both must come from one
// reading of the leader's PostgreSQL, so that optime minus a slot position
// is the member's lag at one moment.
func StatusFrom(c *Cluster, self string, optime int64, flush map[string]int64) Status {
	st := Status{Optime: optime}
	for name, lsn := range flush {
		if lsn <= 0 || name == self || c.Member(name) == nil {
			continue
		}
		if st.Slots == nil {
			st.Slots = map[string]int64{}
		}
		st.Slots[SlotName(name)] = lsn
	}
	return st
}
