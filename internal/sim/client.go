package sim

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// dialTimeout bounds the agent's initial connection check (dcs.Open).
const dialTimeout = 2 * time.Second

// leaseState mirrors dcs.LeaseState, plus the true send time of the
// confirmed request for the checker.
type leaseState struct {
	ID int64
	// TTL is the TTL the DCS granted the lease with; while a move is
	// unresolved (moveLease), the smaller of the two leases' TTLs.
	TTL time.Duration
	// Requested is the TTL the agent asked for when the lease was granted;
	// a lease whose Requested differs from the configured ttl is moved.
	Requested time.Duration
	// ConfirmedSentAt is when the confirmed request was sent; while a move
	// is unresolved, the earlier of the two leases' confirmations.
	ConfirmedSentAt time.Time
	Regranted       bool
	sentTrue        time.Duration
}

// dcsClient is the state package dcs keeps in its Client: the TTL to ask
// for, the lease, the lease a move is under way to, and the write caches.
// It belongs to one agent incarnation.
type dcsClient struct {
	ttl       time.Duration // TTL of leases granted from now on (SetTTL)
	lease     leaseState
	leaseGone bool
	// moving is the lease moveLease granted and is moving the keys to,
	// while the DCS has not answered the move (nil otherwise).
	moving *leaseState
	member writeCache
	status writeCache
}

// effectiveLease is dcs.Client.Lease: the current lease, combined with the
// new one while a move is unresolved (the keys may be on either).
func (cl *dcsClient) effectiveLease() leaseState {
	st := cl.lease
	if mv := cl.moving; mv != nil {
		st.TTL = min(st.TTL, mv.TTL)
		if mv.ConfirmedSentAt.Before(st.ConfirmedSentAt) {
			st.ConfirmedSentAt, st.sentTrue = mv.ConfirmedSentAt, mv.sentTrue
		}
		st.Regranted = false
	}
	return st
}

// leaseTTLOutdated is dcs.Client.LeaseTTLOutdated: the current lease was
// granted with another TTL than the configured one, or a move is
// unresolved.
func (cl *dcsClient) leaseTTLOutdated() bool {
	if cl.lease.ID == 0 || cl.leaseGone {
		return false
	}
	return cl.moving != nil || cl.lease.Requested != wholeSeconds(cl.ttl)
}

// wholeSeconds rounds a TTL up to whole seconds, as package dcs grants.
func wholeSeconds(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + time.Second - 1) / time.Second * time.Second
}

type writeCache struct {
	valid bool
	value any
	lease int64
}

// actx is a blocking context: the agent and the process (loop or task)
// making the calls.
type actx struct {
	a *agent
	p *proc
}

func (c *actx) mono() time.Time { return c.a.m.mono() }

// sleep waits d on the member's monotonic clock.
func (c *actx) sleep(d time.Duration) {
	until := c.mono().Add(d)
	c.p.waitFor(func() bool { return !c.a.m.mono().Before(until) })
}

// deadline is now + d on the member's monotonic clock.
func (c *actx) deadline(d time.Duration) time.Time { return c.mono().Add(d) }

// req bounds one request by the client's request timeout (retry_timeout)
// and the caller's deadline.
func (c *actx) req(parent time.Time) time.Time {
	d := c.deadline(c.a.requestTimeout)
	if parent.Before(d) {
		return parent
	}
	return d
}

// rpc sends one request to the DCS. op runs on the server when, and if,
// the request arrives; its answer counts only if the reply arrives before
// the deadline. A timed-out request may still have taken effect.
func (c *actx) rpc(deadline time.Time, op func(d *dcsServer) (any, error)) (any, error) {
	a, s, m := c.a, c.a.s, c.a.m
	type call struct {
		done   bool
		gaveUp bool
		res    any
		err    error
	}
	r := &call{}
	if !a.m.mono().Before(deadline) {
		return nil, errTimeout // an expired context sends nothing
	}
	s.after(s.latency(), func() {
		if !s.dcsReachable(m) {
			return
		}
		s.dcs.late = r.gaveUp
		res, err := op(s.dcs)
		s.dcs.late = false
		s.after(s.latency(), func() {
			if s.dcsReachable(m) {
				r.done, r.res, r.err = true, res, err
			}
		})
	})
	c.p.waitFor(func() bool { return r.done || !a.m.mono().Before(deadline) })
	if !r.done {
		r.gaveUp = true
		return nil, errTimeout
	}
	return r.res, r.err
}

// connect is dcs.Open: a linearizable read within the dial timeout,
// retried with backoff until it works.
func (c *actx) connect() {
	backoff := time.Second
	for {
		_, err := c.rpc(c.deadline(dialTimeout), func(d *dcsServer) (any, error) { return d.rev, nil })
		if err == nil {
			return
		}
		c.a.tracef("cannot reach etcd; retrying in %s", backoff)
		c.sleep(backoff)
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (c *actx) markLeaseGone(id int64) {
	if c.a.cl.lease.ID == id {
		c.a.cl.leaseGone = true
	}
}

func (c *actx) noteLeaseError(id int64, err error) {
	if errors.Is(err, errLeaseNotFound) {
		c.markLeaseGone(id)
	}
}

// renewLease is dcs.Client.RefreshLease: a move left unresolved is
// retried first, then a keep-alive for the current lease, or a grant when
// there is none or the DCS no longer knows it. On error the last
// confirmed state is returned.
func (c *actx) renewLease(parent time.Time) (leaseState, error) {
	cl := &c.a.cl
	if cl.ttl <= 0 {
		return cl.effectiveLease(), errors.New("refresh lease: client has no TTL")
	}
	if cl.moving != nil {
		// As dcs.Client: half of the renewal's time for the move, then,
		// if still unresolved, keep the new lease alive too.
		half := c.mono().Add(c.req(parent).Sub(c.mono()) / 2)
		if _, err := c.finishMove(half); err != nil {
			c.a.tracef("moving keys to the new lease is still unresolved: %v", err)
			c.keepAliveMoving(parent)
		}
	}
	cur, gone := cl.lease, cl.leaseGone
	if cur.ID != 0 && !gone {
		err := c.keepAlive(parent, cur.ID)
		if err == nil {
			return cl.effectiveLease(), nil
		}
		if !errors.Is(err, errLeaseNotFound) {
			return cl.effectiveLease(), fmt.Errorf("refresh lease %x: %w", cur.ID, err)
		}
		c.markLeaseGone(cur.ID)
	}
	st, err := c.grant(parent, cl.ttl)
	if err != nil {
		return cl.effectiveLease(), fmt.Errorf("grant lease: %w", err)
	}
	st.Regranted = true
	cl.lease, cl.leaseGone, cl.moving = st, false, nil
	return cl.effectiveLease(), nil
}

// keepAliveMoving is dcs.Client.keepAliveMoving: renew the lease of an
// unresolved move.
func (c *actx) keepAliveMoving(parent time.Time) {
	mv := c.a.cl.moving
	if mv == nil {
		return
	}
	id := mv.ID
	ttl, sent, sentTrue, err := c.keepAliveRPC(parent, id)
	if err != nil {
		return
	}
	if mv := c.a.cl.moving; mv != nil && mv.ID == id {
		mv.TTL, mv.ConfirmedSentAt, mv.sentTrue = ttl, sent, sentTrue
	}
}

// keepAliveRPC sends one keep-alive for id: the TTL the DCS returned and
// the request's send times (member clock, true time).
func (c *actx) keepAliveRPC(parent time.Time, id int64) (ttl time.Duration, sent time.Time, sentTrue time.Duration, err error) {
	sent, sentTrue = c.mono(), c.a.s.now
	res, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
		ttl, ok := d.keepAlive(id)
		if !ok {
			return nil, errLeaseNotFound
		}
		return ttl, nil
	})
	if err != nil {
		return 0, sent, sentTrue, err
	}
	return res.(time.Duration), sent, sentTrue, nil
}

// keepAlive sends one keep-alive for id and records the confirmation.
func (c *actx) keepAlive(parent time.Time, id int64) error {
	ttl, sent, sentTrue, err := c.keepAliveRPC(parent, id)
	if err != nil {
		return err
	}
	cl := &c.a.cl
	if cl.lease.ID != id {
		return nil // replaced meanwhile: do not move state backwards
	}
	cl.lease.TTL, cl.lease.ConfirmedSentAt, cl.lease.sentTrue = ttl, sent, sentTrue
	cl.lease.Regranted = false
	return nil
}

// grant asks the DCS for a new lease with ttl (rounded up to whole
// seconds); the caller makes it current.
func (c *actx) grant(parent time.Time, ttl time.Duration) (leaseState, error) {
	sent, sentTrue := c.mono(), c.a.s.now
	m := c.a.m
	ttl = wholeSeconds(ttl)
	res, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) { return d.grant(m, ttl), nil })
	if err != nil {
		return leaseState{}, err
	}
	l := res.(*lease)
	return leaseState{ID: l.id, TTL: l.ttl, Requested: ttl, ConfirmedSentAt: sent, sentTrue: sentTrue}, nil
}

// moveResult mirrors dcs.MoveResult.
type moveResult struct {
	lease       leaseState
	leaderMoved bool
}

// moveLease is dcs.Client.MoveLease: grant a lease with the configured
// TTL (unless a move is already under way), then finishMove.
func (c *actx) moveLease(parent time.Time) (moveResult, error) {
	cl := &c.a.cl
	switch {
	case cl.ttl <= 0:
		return moveResult{}, errors.New("dcs: move lease: client has no TTL")
	case cl.lease.ID == 0 || cl.leaseGone:
		return moveResult{}, errors.New("dcs: move lease: no current lease; RefreshLease first")
	}
	if cl.moving == nil {
		st, err := c.grant(parent, cl.ttl)
		if err != nil {
			return moveResult{}, fmt.Errorf("dcs: move lease: grant a %s lease: %w", wholeSeconds(cl.ttl), err)
		}
		cl.moving = &st
	}
	return c.finishMove(parent)
}

// finishMove is package dcs's move transaction: if the leader key names
// this member on the current lease, put it on the new lease, and put the
// member key (when cached) on the new lease, in one transaction; once the
// DCS answered, make the new lease current and revoke the old one. A lost
// request or reply leaves the move unresolved (cl.moving stays) and the
// next call sends the same, idempotent, transaction again.
func (c *actx) finishMove(parent time.Time) (moveResult, error) {
	cl := &c.a.cl
	from, to := cl.lease, *cl.moving
	member := cl.member
	name := c.a.m.name
	memberKey := keyMembers + name
	type txnResult struct {
		succeeded   bool
		leaderValue any
		leaderLease int64
	}
	deadline := c.req(parent)
	res, err := c.rpc(deadline, func(d *dcsServer) (any, error) {
		e := d.get(keyLeader)
		then := e != nil && e.value == name && e.lease == from.ID
		// etcd checks the leases of the branch it runs before applying
		// any of it.
		if (then || member.valid) && d.leases[to.ID] == nil {
			return nil, errLeaseNotFound
		}
		var r txnResult
		if then {
			r.succeeded = true
			_ = d.put(keyLeader, name, to.ID)
		} else if e != nil {
			r.leaderValue, r.leaderLease = e.value, e.lease
		}
		if member.valid {
			_ = d.put(memberKey, copyMember(member.value.(cluster.Member)), to.ID)
		}
		return r, nil
	})
	if errors.Is(err, errLeaseNotFound) {
		// The new lease expired unconfirmed: nothing can be on it any
		// more. Stay on the current lease; a later move grants anew.
		cl.moving = nil
		return moveResult{}, fmt.Errorf("dcs: move lease: new lease %x expired before the move: %w", to.ID, err)
	}
	if err != nil {
		c.a.s.check.stats.UnresolvedMoves++
		return moveResult{}, fmt.Errorf("dcs: move lease %x to %x: outcome unknown, will retry: %w", from.ID, to.ID, err)
	}
	r := res.(txnResult)
	// Moved by an earlier attempt whose answer was lost.
	moved := r.succeeded || (r.leaderValue == name && r.leaderLease == to.ID)
	cl.lease, cl.leaseGone, cl.moving = to, false, nil
	if member.valid {
		cl.member.lease = to.ID
	}
	c.a.tracef("moved keys from lease %x (ttl %s) to lease %x (ttl %s), leader key moved %t", from.ID, from.TTL, to.ID, to.TTL, moved)
	c.a.s.check.stats.LeaseMoves++
	// Nothing of ours is left on the old lease; revoking it is tidiness.
	if _, err := c.rpc(deadline, func(d *dcsServer) (any, error) { d.revoke(from.ID); return nil, nil }); err != nil {
		c.a.tracef("revoking the previous lease %x: %v", from.ID, err)
	}
	return moveResult{lease: cl.effectiveLease(), leaderMoved: moved}, nil
}

func (c *actx) currentLease() (int64, error) {
	cl := c.a.cl
	switch {
	case cl.lease.ID == 0:
		return 0, errors.New("no lease yet; RefreshLease first")
	case cl.leaseGone:
		return 0, fmt.Errorf("lease %x is gone; RefreshLease first", cl.lease.ID)
	}
	return cl.lease.ID, nil
}

// load is dcs.Client.Load: one linearizable read of the prefix.
func (c *actx) load(parent time.Time) (*cluster.Cluster, error) {
	res, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) { return d.snapshot(), nil })
	if err != nil {
		return nil, fmt.Errorf("dcs: load: %w", err)
	}
	view := res.(*cluster.Cluster)
	c.noteLoaded(view)
	return view, nil
}

// noteLoaded drops write caches of keys that changed under us.
func (c *actx) noteLoaded(view *cluster.Cluster) {
	cl := &c.a.cl
	if m := view.Member(c.a.m.name); m == nil {
		cl.member = writeCache{}
	} else if cl.member.valid {
		cached := cl.member.value.(cluster.Member)
		cur := copyMember(*m)
		cur.Name, cur.Revision = "", 0
		if !reflect.DeepEqual(cached, cur) {
			cl.member = writeCache{}
		}
	}
	if cl.status.valid && !reflect.DeepEqual(cl.status.value, view.Status) {
		cl.status = writeCache{}
	}
}

// acquireLeader creates the leader key on the current lease if absent.
func (c *actx) acquireLeader(parent time.Time) (bool, error) {
	id, err := c.currentLease()
	if err != nil {
		return false, fmt.Errorf("dcs: acquire leader: %w", err)
	}
	name := c.a.m.name
	res, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
		if d.get(keyLeader) != nil {
			return false, nil
		}
		if err := d.put(keyLeader, name, id); err != nil {
			return false, err
		}
		return true, nil
	})
	if err != nil {
		c.noteLeaseError(id, err)
		return false, fmt.Errorf("dcs: acquire leader: %w", err)
	}
	return res.(bool), nil
}

// updateLeader confirms the leader key holds our name on our lease, and
// re-attaches it (value compare) when it holds our name on another lease.
func (c *actx) updateLeader(parent time.Time) (bool, error) {
	id, err := c.currentLease()
	if err != nil {
		return false, fmt.Errorf("dcs: update leader: %w", err)
	}
	name := c.a.m.name
	deadline := c.req(parent)
	res, err := c.rpc(deadline, func(d *dcsServer) (any, error) {
		e := d.get(keyLeader)
		switch {
		case e != nil && e.value == name && e.lease == id:
			return "ok", nil
		case e == nil || e.value != name:
			return "other", nil
		}
		return "reattach", nil
	})
	if err != nil {
		return false, fmt.Errorf("dcs: update leader: %w", err)
	}
	switch res.(string) {
	case "ok":
		return true, nil
	case "other":
		return false, nil
	}
	res, err = c.rpc(deadline, func(d *dcsServer) (any, error) {
		if e := d.get(keyLeader); e == nil || e.value != name {
			return false, nil
		}
		if err := d.put(keyLeader, name, id); err != nil {
			return false, err
		}
		return true, nil
	})
	if err != nil {
		c.noteLeaseError(id, err)
		return false, fmt.Errorf("dcs: update leader: re-attach: %w", err)
	}
	return res.(bool), nil
}

// releaseLeader deletes the leader key if it holds our name.
func (c *actx) releaseLeader(parent time.Time) error {
	m := c.a.m
	_, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
		if e := d.get(keyLeader); e != nil && e.value == m.name {
			d.del(keyLeader)
			if d.late {
				m.lateRelease = d.s.now
				d.s.tracef("dcs: %s's release of the leader key arrived after it had given up on it", m.name)
			}
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("dcs: release leader: %w", err)
	}
	return nil
}

// releaseLeaderKey is package agent's releaseLeaderKey: the idempotent
// value-compare delete, retried with short timeouts until the DCS answers
// or budget has passed. It reports whether an answer arrived (the key is
// then not ours any more) and otherwise the last error.
func (c *actx) releaseLeaderKey(attempt, budget time.Duration) (bool, error) {
	until := c.deadline(budget)
	for {
		err := c.releaseLeader(c.deadline(attempt))
		if err == nil {
			return true, nil
		}
		if !c.mono().Add(attempt / 4).Before(until) {
			return false, err
		}
		c.sleep(attempt / 4)
	}
}

// touchMember writes the member key on the current lease, unless unchanged.
func (c *actx) touchMember(parent time.Time, mv cluster.Member) error {
	id, err := c.currentLease()
	if err != nil {
		return fmt.Errorf("dcs: touch member: %w", err)
	}
	cl := &c.a.cl
	if cl.member.valid && cl.member.lease == id && reflect.DeepEqual(cl.member.value, mv) {
		return nil
	}
	key := keyMembers + c.a.m.name
	_, err = c.rpc(c.req(parent), func(d *dcsServer) (any, error) { return nil, d.put(key, copyMember(mv), id) })
	if err != nil {
		c.noteLeaseError(id, err)
		return fmt.Errorf("dcs: touch member: %w", err)
	}
	cl.member = writeCache{valid: true, value: mv, lease: id}
	return nil
}

func (c *actx) deleteMember(parent time.Time) error {
	key := keyMembers + c.a.m.name
	_, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) { d.del(key); return nil, nil })
	if err != nil {
		return err
	}
	c.a.cl.member = writeCache{}
	return nil
}

// writeStatus stores the leader's status unless unchanged.
func (c *actx) writeStatus(parent time.Time, st cluster.Status) error {
	cl := &c.a.cl
	if cl.status.valid && reflect.DeepEqual(cl.status.value, st) {
		return nil
	}
	_, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) { return nil, d.put(keyStatus, st, 0) })
	if err != nil {
		return fmt.Errorf("dcs: write status: %w", err)
	}
	cl.status = writeCache{valid: true, value: st}
	return nil
}

// appendHistory appends a line with a mod-revision guarded
// read-modify-write, skipping a timeline already recorded.
func (c *actx) appendHistory(parent time.Time, e cluster.HistoryEntry) error {
	for range 5 {
		res, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
			if en := d.get(keyHistory); en != nil {
				return entry{value: slices.Clone(en.value.([]cluster.HistoryEntry)), mod: en.mod}, nil
			}
			return entry{}, nil
		})
		if err != nil {
			return fmt.Errorf("dcs: append history: %w", err)
		}
		var hist []cluster.HistoryEntry
		en := res.(entry)
		if en.value != nil {
			hist = en.value.([]cluster.HistoryEntry)
		}
		rev := en.mod
		for _, h := range hist {
			if h.Timeline >= e.Timeline { // as dcs.AppendHistory: never out of order
				return nil
			}
		}
		next := append(slices.Clone(hist), e)
		res, err = c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
			cur := int64(0)
			if en := d.get(keyHistory); en != nil {
				cur = en.mod
			}
			if cur != rev {
				return false, nil
			}
			return true, d.put(keyHistory, next, 0)
		})
		if err != nil {
			return fmt.Errorf("dcs: append history: %w", err)
		}
		if res.(bool) {
			return nil
		}
	}
	return errors.New("dcs: append history: history key kept changing")
}

// clearFailover deletes the failover key if its mod revision is rev (0:
// unconditionally).
func (c *actx) clearFailover(parent time.Time, rev int64) (bool, error) {
	res, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
		e := d.get(keyFailover)
		if rev != 0 && (e == nil || e.mod != rev) {
			return false, nil
		}
		d.del(keyFailover)
		return true, nil
	})
	if err != nil {
		return false, fmt.Errorf("dcs: clear failover: %w", err)
	}
	return res.(bool), nil
}

// createIfAbsent puts key unless it exists (create_revision == 0 txn).
func (c *actx) createIfAbsent(parent time.Time, key string, value any) (bool, error) {
	res, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
		if d.get(key) != nil {
			return false, nil
		}
		return true, d.put(key, value, 0)
	})
	if err != nil {
		return false, err
	}
	return res.(bool), nil
}

func (c *actx) put(parent time.Time, key string, value any) error {
	_, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) { return nil, d.put(key, value, 0) })
	return err
}

// cancelInitialize deletes the initialize key if it is still empty.
func (c *actx) cancelInitialize(parent time.Time) error {
	_, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
		if e := d.get(keyInitialize); e != nil && e.value == "" {
			d.del(keyInitialize)
		}
		return nil, nil
	})
	return err
}

// setSync writes the sync key if its mod revision is rev (0: absent).
func (c *actx) setSync(parent time.Time, st cluster.SyncState, rev int64) (bool, error) {
	st.Members = slices.Clone(st.Members)
	res, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
		e := d.get(keySync)
		if (rev == 0 && e != nil) || (rev != 0 && (e == nil || e.mod != rev)) {
			return false, nil
		}
		return true, d.put(keySync, st, 0)
	})
	if err != nil {
		return false, fmt.Errorf("dcs: set sync: %w", err)
	}
	return res.(bool), nil
}

// deleteSync removes the sync key if its mod revision is rev.
func (c *actx) deleteSync(parent time.Time, rev int64) (bool, error) {
	res, err := c.rpc(c.req(parent), func(d *dcsServer) (any, error) {
		if e := d.get(keySync); e == nil || e.mod != rev {
			return false, nil
		}
		d.del(keySync)
		return true, nil
	})
	if err != nil {
		return false, fmt.Errorf("dcs: delete sync: %w", err)
	}
	return res.(bool), nil
}

// peerCall sends a request to another member (REST API or PostgreSQL).
// answer runs at the peer when the request arrives; ok=false means no
// answer (unreachable, down) and the caller times out.
func (c *actx) peerCall(to *member, deadline time.Time, answer func() (any, bool)) (any, bool) {
	r := c.a.peerRequest(to, answer)
	c.p.waitFor(func() bool { return r.done || !c.a.m.mono().Before(deadline) })
	return r.res, r.done
}

// peerReq is an outstanding request to a peer.
type peerReq struct {
	done bool
	res  any
}

func (a *agent) peerRequest(to *member, answer func() (any, bool)) *peerReq {
	s, m := a.s, a.m
	r := &peerReq{}
	s.after(s.latency(), func() {
		if !s.peerReachable(m, to) {
			return
		}
		res, ok := answer()
		if !ok {
			return
		}
		s.after(s.latency(), func() {
			if s.peerReachable(m, to) {
				r.done, r.res = true, res
			}
		})
	})
	return r
}
