package sim

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Keys of the in-memory DCS, relative to the cluster prefix, as in package
// dcs.
const (
	keyInitialize = "initialize"
	keyConfig     = "config"
	keyLeader     = "leader"
	keyStatus     = "status"
	keyHistory    = "history"
	keyFailover   = "failover"
	keySync       = "sync"
	keyMembers    = "members/"
)

// DCS errors as the agent sees them.
var (
	errLeaseNotFound = errors.New("etcdserver: requested lease not found")
	errTimeout       = errors.New("context deadline exceeded")
)

// entry is one key: its value, the lease it is attached to (0: none) and
// its revisions, as in etcd.
type entry struct {
	value       any
	lease       int64
	create, mod int64
}

// lease is an etcd lease. It expires on the DCS's own (true) clock TTL
// after the last keep-alive the server received.
type lease struct {
	id      int64
	ttl     time.Duration
	expires time.Duration
	owner   *member
}

// dcsServer is an in-memory etcd: a revisioned key space with leases,
// transactions and watches, evaluated at the virtual time a request
// arrives.
type dcsServer struct {
	s         *Sim
	rev       int64
	kv        map[string]*entry
	leases    map[int64]*lease
	nextLease int64
	// late is set while a request runs whose sender already timed out.
	late bool
}

func newDCS(s *Sim) *dcsServer {
	return &dcsServer{s: s, rev: 1, kv: map[string]*entry{}, leases: map[int64]*lease{}, nextLease: 0x1000}
}

func (d *dcsServer) get(key string) *entry { return d.kv[key] }

// put writes key, attached to leaseID (0: no lease).
func (d *dcsServer) put(key string, value any, leaseID int64) error {
	if leaseID != 0 && d.leases[leaseID] == nil {
		return errLeaseNotFound
	}
	d.rev++
	e := d.kv[key]
	if e == nil {
		e = &entry{create: d.rev}
		d.kv[key] = e
	}
	e.value, e.lease, e.mod = value, leaseID, d.rev
	d.changed(key)
	return nil
}

func (d *dcsServer) del(key string) bool {
	if d.kv[key] == nil {
		return false
	}
	d.rev++
	delete(d.kv, key)
	d.changed(key)
	return true
}

// changed notifies the watchers and checks the history invariant. As in
// package dcs (Client.relevant), only leader, config, failover, sync and
// initialize changes wake the agents; member, status and history changes
// are read at the next loop_wait tick.
func (d *dcsServer) changed(key string) {
	switch key {
	case keyHistory:
		d.s.check.historyChanged()
		return
	case keyLeader:
		if e := d.kv[key]; e != nil {
			d.s.tracef("dcs: leader key = %s (lease %x)", e.value, e.lease)
		} else {
			d.s.tracef("dcs: leader key deleted")
		}
	case keyFailover:
		if e := d.kv[key]; e != nil {
			f := e.value.(cluster.Failover)
			d.s.tracef("dcs: failover key = leader %q member %q", f.Leader, f.Member)
		} else {
			d.s.tracef("dcs: failover key deleted")
		}
	}
	switch key {
	case keyLeader, keyConfig, keyFailover, keySync, keyInitialize:
	default:
		return
	}
	for _, m := range d.s.members {
		if a := m.agent; a != nil {
			a.notifyWatch()
		}
	}
}

// grant creates a lease with the TTL the client asked for, as etcd does
// (its minimum TTL is below any valid ttl).
func (d *dcsServer) grant(owner *member, ttl time.Duration) *lease {
	d.nextLease++
	l := &lease{id: d.nextLease, ttl: ttl, owner: owner}
	l.expires = d.s.now + l.ttl
	d.leases[l.id] = l
	return l
}

func (d *dcsServer) keepAlive(id int64) (time.Duration, bool) {
	l := d.leases[id]
	if l == nil {
		return 0, false
	}
	l.expires = d.s.now + l.ttl
	return l.ttl, true
}

// revoke deletes a lease and the keys attached to it (an unknown lease is
// not an error here: package dcs ignores ErrLeaseNotFound on revoke).
func (d *dcsServer) revoke(id int64) {
	if d.leases[id] != nil {
		d.drop(id, "revoked")
	}
}

// expireLeases revokes the leases whose TTL ran out, deleting their keys.
// Nothing expires while the DCS has no quorum.
func (d *dcsServer) expireLeases() {
	if d.s.net.dcsOutage > 0 {
		return
	}
	var ids []int64
	for id, l := range d.leases {
		if d.s.now >= l.expires {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		d.drop(id, "expired")
	}
}

// drop deletes lease id and its keys.
func (d *dcsServer) drop(id int64, how string) {
	l := d.leases[id]
	delete(d.leases, id)
	var keys []string
	for k, e := range d.kv {
		if e.lease == id {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	d.s.tracef("dcs: lease %x (ttl %s) of %s %s (keys %s)", id, l.ttl, l.owner.name, how, joinNames(keys))
	for _, k := range keys {
		d.del(k)
	}
}

// restored is called when the DCS regains quorum: as etcd's new leader
// does, it extends every lease by a full TTL (plus an election timeout).
func (d *dcsServer) restored() {
	for _, l := range d.leases {
		l.expires = d.s.now + l.ttl + time.Second
	}
}

// snapshot is a linearizable read of the whole cluster prefix, decoded as
// package dcs does.
func (d *dcsServer) snapshot() *cluster.Cluster {
	c := &cluster.Cluster{Scope: "sim", Members: map[string]*cluster.Member{}, Revision: d.rev}
	for k, e := range d.kv {
		switch {
		case k == keyInitialize:
			c.Initialize = &cluster.Initialize{SystemID: e.value.(string), Revision: e.mod}
		case k == keyConfig:
			cfg := e.value.(cluster.DynamicConfig)
			c.Config = &cfg
			c.ConfigRevision = e.mod
		case k == keyLeader:
			c.Leader = &cluster.Leader{Name: e.value.(string), ModRevision: e.mod, CreateRevision: e.create, Lease: e.lease}
		case k == keyStatus:
			c.Status = e.value.(cluster.Status)
		case k == keyHistory:
			c.History = slices.Clone(e.value.([]cluster.HistoryEntry))
		case k == keyFailover:
			f := e.value.(cluster.Failover)
			f.Revision = e.mod
			c.Failover = &f
		case k == keySync:
			st := e.value.(cluster.SyncState)
			st.Members = slices.Clone(st.Members)
			st.Revision = e.mod
			c.Sync = &st
		case strings.HasPrefix(k, keyMembers):
			mv := copyMember(e.value.(cluster.Member))
			mv.Name = strings.TrimPrefix(k, keyMembers)
			mv.Revision = e.mod
			c.Members[mv.Name] = &mv
		}
	}
	return c
}

// maxTTL is the larger of the run's ttl and the config key's current one.
func (d *dcsServer) maxTTL() time.Duration {
	ttl := d.s.dyn.TTLDuration()
	if e := d.kv[keyConfig]; e != nil {
		ttl = max(ttl, e.value.(cluster.DynamicConfig).TTLDuration())
	}
	return ttl
}

// history returns the history key's entries.
func (d *dcsServer) history() []cluster.HistoryEntry {
	if e := d.kv[keyHistory]; e != nil {
		return e.value.([]cluster.HistoryEntry)
	}
	return nil
}

// leaderName returns the holder of the leader key, or "".
func (d *dcsServer) leaderName() string {
	if e := d.kv[keyLeader]; e != nil {
		return e.value.(string)
	}
	return ""
}

// copyMember deep-copies a member value so that no two views share
// pointers.
func copyMember(m cluster.Member) cluster.Member {
	cp := func(p *int64) *int64 {
		if p == nil {
			return nil
		}
		v := *p
		return &v
	}
	m.XLogLocation, m.ReceiveLSN, m.ReplayLSN = cp(m.XLogLocation), cp(m.ReceiveLSN), cp(m.ReplayLSN)
	if m.Tags != nil {
		t := *m.Tags
		m.Tags = &t
	}
	if m.CheckpointAfterPromote != nil {
		v := *m.CheckpointAfterPromote
		m.CheckpointAfterPromote = &v
	}
	return m
}

// operatorSwitchover has an operator request a switchover through the
// failover key (create if absent), as `regent ctl switchover` does after
// its prechecks; the operator's own connection to the DCS is assumed to
// work whenever the DCS has quorum.
func (d *dcsServer) operatorSwitchover() {
	s := d.s
	if s.net.dcsOutage > 0 || d.kv[keyFailover] != nil {
		return
	}
	view := d.snapshot()
	leader := view.LeaderName()
	if leader == "" {
		return
	}
	candidate := ""
	if s.chance(0.5) {
		var others []string
		for _, m := range view.SortedMembers() {
			if m.Name != leader {
				others = append(others, m.Name)
			}
		}
		if len(others) > 0 {
			candidate = others[s.rng.IntN(len(others))]
		}
	}
	f, err := checkSwitchover(view, leader, candidate)
	if err != nil {
		s.tracef("operator: switchover %s -> %q refused: %v", leader, candidate, err)
		return
	}
	s.tracef("operator: switchover %s -> %q requested", leader, candidate)
	_ = d.put(keyFailover, f, 0)
}

// operatorChangeTTL has an operator change ttl in the config key, as
// `regent edit-config -s ttl=N` does: read the configuration, check the
// result (cluster.DynamicConfig.Validate, as the REST API does) and write
// it pinned to the revision read. want 0 picks a ttl at random: back to
// the run's ttl in 40 % of the changes away from it, otherwise any other
// value between the run's ttl and three times it. Like a switchover, the
// operator's connection works whenever the DCS has quorum.
func (d *dcsServer) operatorChangeTTL(want int) {
	s := d.s
	e := d.kv[keyConfig]
	if s.net.dcsOutage > 0 || e == nil {
		return
	}
	cur, rev := e.value.(cluster.DynamicConfig), e.mod
	if want == 0 {
		base := s.dyn.TTL
		want = base
		if cur.TTL == base || !s.chance(0.4) {
			for want == cur.TTL {
				want = base + s.rng.IntN(2*base+1)
			}
		}
	}
	next := cur
	next.TTL = want
	if want == cur.TTL {
		return
	}
	if err := next.Validate(); err != nil {
		s.tracef("operator: ttl %d -> %d refused: %v", cur.TTL, want, err)
		return
	}
	// Read and write happen at once here, so the write pinned to rev
	// (If-Match) always applies.
	s.tracef("operator: ttl %d -> %d (config revision %d)", cur.TTL, want, rev)
	s.check.stats.TTLChanges++
	_ = d.put(keyConfig, next, 0)
}
