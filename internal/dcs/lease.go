package dcs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// LeaseState describes this client's lease after the last successful
// RefreshLease or MoveLease.
type LeaseState struct {
	// ID is the etcd lease; 0 before the first grant.
	ID clientv3.LeaseID
	// TTL is the TTL etcd granted or returned with the keep-alive. While a
	// move to a new lease is unresolved (see MoveLease) it is the smaller
	// of the two leases' TTLs, since the keys may be on either.
	TTL time.Duration
	// Requested is the TTL this client asked for when the lease was
	// granted (etcd may grant more, never less). A lease whose Requested
	// differs from the configured ttl is due to be moved.
	Requested time.Duration
	// ConfirmedSentAt is when the request that etcd confirmed was sent.
	// etcd cannot expire the lease before ConfirmedSentAt + TTL (up to
	// clock drift), which is what the leader's fencing deadline is
	// computed from. While a move is unresolved it is the earlier of the
	// two leases' confirmations.
	ConfirmedSentAt time.Time
	// Regranted is true when that request granted a new lease because the
	// previous one was gone, so keys on the previous lease are gone or
	// must be re-attached.
	Regranted bool
}

// Lease returns the state of the last successful RefreshLease, combined
// with the new lease while a move is unresolved.
func (c *Client) Lease() LeaseState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.effectiveLease()
}

// effectiveLease is Lease with c.mu held.
func (c *Client) effectiveLease() LeaseState {
	st := c.lease
	if mv := c.moving; mv != nil {
		st.TTL = min(st.TTL, mv.TTL)
		if mv.ConfirmedSentAt.Before(st.ConfirmedSentAt) {
			st.ConfirmedSentAt = mv.ConfirmedSentAt
		}
		st.Regranted = false
	}
	return st
}

// SetTTL sets the TTL of leases granted from now on: the ttl of the dynamic
// configuration, which may change while the agent runs. The current lease
// keeps the TTL it was granted with until MoveLease replaces it.
func (c *Client) SetTTL(ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ttl = ttl
}

// LeaseTTLOutdated reports whether the current lease was granted with
// another TTL than the configured one, or a move is unresolved: MoveLease
// is due.
func (c *Client) LeaseTTLOutdated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease.ID == 0 || c.leaseGone {
		return false
	}
	return c.moving != nil || c.lease.Requested != wholeSeconds(c.ttl)
}

// RefreshLease renews this client's lease with one keep-alive, or grants a
// new lease when there is none yet or etcd reports it gone. A move left
// unresolved by MoveLease is resolved first. On error the returned state
// is the last confirmed one.
func (c *Client) RefreshLease(ctx context.Context) (LeaseState, error) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	c.mu.Lock()
	ttl, moving := ttlSeconds(c.ttl), c.moving != nil
	c.mu.Unlock()
	if ttl <= 0 {
		return c.Lease(), errors.New("dcs: refresh lease: client has no TTL")
	}
	if moving {
		// Half of the renewal's time at most: the keep-alive below must
		// still be sent if etcd does not answer the move.
		mctx, cancel := halfOf(ctx)
		_, err := c.finishMove(mctx)
		cancel()
		if err != nil {
			c.log.Warn("moving keys to the new lease is still unresolved", "err", err)
			// The keys may be on either lease: keep both alive, so that
			// the earlier of the two confirmations stays fresh.
			c.keepAliveMoving(ctx)
		}
	}
	c.mu.Lock()
	cur, gone := c.lease, c.leaseGone
	c.mu.Unlock()

	if cur.ID != 0 && !gone {
		err := c.keepAlive(ctx, cur.ID)
		if err == nil {
			return c.Lease(), nil
		}
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return c.Lease(), fmt.Errorf("dcs: refresh lease %x: %w", int64(cur.ID), err)
		}
		c.log.Warn("lease expired; granting a new one", "lease", fmt.Sprintf("%x", int64(cur.ID)))
		c.markLeaseGone(cur.ID)
	}
	st, err := c.grant(ctx, ttl)
	if err != nil {
		return c.Lease(), fmt.Errorf("dcs: grant lease: %w", err)
	}
	st.Regranted = true
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lease, c.leaseGone, c.moving = st, false, nil
	return c.effectiveLease(), nil
}

// MoveResult is the outcome of a completed MoveLease.
type MoveResult struct {
	// Lease is the new lease, now current.
	Lease LeaseState
	// LeaderMoved is true when the leader key named this member on the
	// old lease and is now on the new one; false when it was not this
	// member's (then it was left as it was).
	LeaderMoved bool
}

// MoveLease replaces the current lease by one granted with the configured
// TTL, after a ttl change. It grants the new lease, then moves this
// member's key and, when it names this member on the current lease, the
// leader key onto it in one transaction guarded by that comparison, and
// finally revokes the old lease. No key is ever without a lease that
// etcd honours, and nobody can take the leader key in between.
//
// Until etcd has answered the transaction, the keys may be on either
// lease: Lease then reports the smaller TTL and the earlier confirmation
// of the two, so that no deadline outlasts the lease the keys are on, and
// the next MoveLease or RefreshLease retries the (idempotent) transaction.
func (c *Client) MoveLease(ctx context.Context) (MoveResult, error) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	c.mu.Lock()
	ttl, cur, gone, moving := ttlSeconds(c.ttl), c.lease, c.leaseGone, c.moving != nil
	c.mu.Unlock()
	if ttl <= 0 {
		return MoveResult{}, errors.New("dcs: move lease: client has no TTL")
	}
	if cur.ID == 0 || gone {
		return MoveResult{}, errors.New("dcs: move lease: no current lease; RefreshLease first")
	}
	if !moving {
		st, err := c.grant(ctx, ttl)
		if err != nil {
			return MoveResult{}, fmt.Errorf("dcs: move lease: grant a %ds lease: %w", ttl, err)
		}
		c.mu.Lock()
		c.moving = &st
		c.mu.Unlock()
	}
	return c.finishMove(ctx)
}

// finishMove runs the transaction that moves the keys from the current
// lease to c.moving and, once etcd answered, makes the new lease current
// and revokes the old one. Callers hold refreshMu.
func (c *Client) finishMove(ctx context.Context) (MoveResult, error) {
	c.mu.Lock()
	from, to := c.lease, *c.moving
	member := c.member
	c.mu.Unlock()

	leaderKey, memberKey, name := c.key(KeyLeader), c.key(KeyMembers+c.opts.Name), c.opts.Name
	var moveMember []clientv3.Op
	if member.valid {
		moveMember = append(moveMember, clientv3.OpPut(memberKey, member.value, clientv3.WithLease(to.ID)))
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Txn(rctx).
		If(
			clientv3.Compare(clientv3.Value(leaderKey), "=", name),
			clientv3.Compare(clientv3.LeaseValue(leaderKey), "=", int64(from.ID)),
		).
		Then(append([]clientv3.Op{clientv3.OpPut(leaderKey, name, clientv3.WithLease(to.ID))}, moveMember...)...).
		Else(append([]clientv3.Op{clientv3.OpGet(leaderKey)}, moveMember...)...).
		Commit()
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		// The new lease expired unconfirmed: nothing can be on it any
		// more. Stay on the current lease; a later MoveLease grants anew.
		c.mu.Lock()
		c.moving = nil
		c.mu.Unlock()
		return MoveResult{}, fmt.Errorf("dcs: move lease: new lease %x expired before the move: %w", int64(to.ID), err)
	}
	if err != nil {
		return MoveResult{}, fmt.Errorf("dcs: move lease %x to %x: outcome unknown, will retry: %w", int64(from.ID), int64(to.ID), err)
	}
	moved := resp.Succeeded
	if !moved {
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		// Moved by an earlier attempt whose answer was lost.
		moved = len(kvs) > 0 && string(kvs[0].Value) == name && kvs[0].Lease == int64(to.ID)
	}
	c.mu.Lock()
	c.lease, c.leaseGone, c.moving = to, false, nil
	if member.valid {
		c.member.lease = to.ID
	}
	c.mu.Unlock()
	c.log.Info("moved keys to a lease with the configured ttl",
		"lease", fmt.Sprintf("%x", int64(to.ID)), "ttl", to.TTL, "previous_lease", fmt.Sprintf("%x", int64(from.ID)),
		"previous_ttl", from.TTL, "leader_key_moved", moved)
	// Nothing of ours is left on the old lease; revoking it is tidiness
	// (it would expire anyway), so a failure only costs a warning.
	if _, err := c.cli.Revoke(rctx, from.ID); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		c.log.Warn("revoking the previous lease", "lease", fmt.Sprintf("%x", int64(from.ID)), "err", err)
	}
	return MoveResult{Lease: c.Lease(), LeaderMoved: moved}, nil
}

// keepAliveMoving renews the lease of an unresolved move.
func (c *Client) keepAliveMoving(ctx context.Context) {
	c.mu.Lock()
	mv := c.moving
	c.mu.Unlock()
	if mv == nil {
		return
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	sent := time.Now()
	resp, err := c.cli.KeepAliveOnce(rctx, mv.ID)
	if err != nil || resp.TTL <= 0 {
		return // the next move attempt finds out (a gone lease holds nothing)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.moving != nil && c.moving.ID == mv.ID {
		c.moving.TTL = time.Duration(resp.TTL) * time.Second
		c.moving.ConfirmedSentAt = sent
	}
}

// halfOf bounds ctx to half of its remaining time, if it has a deadline.
func halfOf(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(dl)/2)
}

// keepAlive sends one keep-alive for id and records the confirmation.
func (c *Client) keepAlive(ctx context.Context, id clientv3.LeaseID) error {
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	sent := time.Now()
	resp, err := c.cli.KeepAliveOnce(rctx, id)
	if err != nil {
		return err
	}
	if resp.TTL <= 0 {
		return rpctypes.ErrLeaseNotFound
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease.ID != id {
		// The lease was replaced meanwhile; do not move state backwards.
		return nil
	}
	c.lease.TTL = time.Duration(resp.TTL) * time.Second
	c.lease.ConfirmedSentAt = sent
	c.lease.Regranted = false
	return nil
}

// grant asks etcd for a new lease; the caller makes it current.
func (c *Client) grant(ctx context.Context, ttl int64) (LeaseState, error) {
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	sent := time.Now()
	resp, err := c.cli.Grant(rctx, ttl)
	if err != nil {
		return LeaseState{}, err
	}
	return LeaseState{
		ID:              resp.ID,
		TTL:             time.Duration(resp.TTL) * time.Second,
		Requested:       time.Duration(ttl) * time.Second,
		ConfirmedSentAt: sent,
	}, nil
}

// currentLease returns the lease to attach keys to, or an error when there
// is none.
func (c *Client) currentLease() (clientv3.LeaseID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease.ID == 0 {
		return 0, errors.New("no lease yet; RefreshLease first")
	}
	if c.leaseGone {
		return 0, fmt.Errorf("lease %x is gone; RefreshLease first", int64(c.lease.ID))
	}
	return c.lease.ID, nil
}

// markLeaseGone records that etcd no longer knows lease id, so the next
// RefreshLease grants a new one.
func (c *Client) markLeaseGone(id clientv3.LeaseID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease.ID == id {
		c.leaseGone = true
	}
}

// noteLeaseError marks the lease gone when err says so.
func (c *Client) noteLeaseError(id clientv3.LeaseID, err error) {
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		c.markLeaseGone(id)
	}
}

// ttlSeconds rounds a TTL up to whole seconds.
func ttlSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// wholeSeconds is d rounded up to whole seconds, as granted.
func wholeSeconds(d time.Duration) time.Duration { return time.Duration(ttlSeconds(d)) * time.Second }
