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
// RefreshLease.
type LeaseState struct {
	// ID is the etcd lease; 0 before the first grant.
	ID clientv3.LeaseID
	// TTL is the TTL etcd granted or returned with the keep-alive.
	TTL time.Duration
	// ConfirmedSentAt is when the request that etcd confirmed was sent.
	// etcd cannot expire the lease before ConfirmedSentAt + TTL (up to
	// clock drift), which is what the leader's fencing deadline is
	// computed from.
	ConfirmedSentAt time.Time
	// Regranted is true when that request granted a new lease, so keys on
	// the previous lease are gone or must be re-attached.
	Regranted bool
}

// Lease returns the state of the last successful RefreshLease.
func (c *Client) Lease() LeaseState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease
}

// RefreshLease renews this client's lease with one keep-alive, or grants a
// new lease when there is none yet or etcd reports it gone. On error the
// returned state is the last confirmed one.
func (c *Client) RefreshLease(ctx context.Context) (LeaseState, error) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	ttl := ttlSeconds(c.opts.TTL)
	if ttl <= 0 {
		return c.Lease(), errors.New("dcs: refresh lease: client has no TTL")
	}
	c.mu.Lock()
	cur, gone := c.lease, c.leaseGone
	c.mu.Unlock()

	if cur.ID != 0 && !gone {
		st, err := c.keepAlive(ctx, cur.ID)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return cur, fmt.Errorf("dcs: refresh lease %x: %w", int64(cur.ID), err)
		}
		c.log.Warn("lease expired; granting a new one", "lease", fmt.Sprintf("%x", int64(cur.ID)))
		c.markLeaseGone(cur.ID)
	}
	st, err := c.grant(ctx, ttl)
	if err != nil {
		return cur, fmt.Errorf("dcs: grant lease: %w", err)
	}
	return st, nil
}

// keepAlive sends one keep-alive for id and records the confirmation.
func (c *Client) keepAlive(ctx context.Context, id clientv3.LeaseID) (LeaseState, error) {
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	sent := time.Now()
	resp, err := c.cli.KeepAliveOnce(rctx, id)
	if err != nil {
		return LeaseState{}, err
	}
	if resp.TTL <= 0 {
		return LeaseState{}, rpctypes.ErrLeaseNotFound
	}
	st := LeaseState{ID: id, TTL: time.Duration(resp.TTL) * time.Second, ConfirmedSentAt: sent}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease.ID != id {
		// The lease was replaced meanwhile; do not move state backwards.
		return st, nil
	}
	c.lease = st
	return st, nil
}

// grant asks for a new lease and makes it current.
func (c *Client) grant(ctx context.Context, ttl int64) (LeaseState, error) {
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	sent := time.Now()
	resp, err := c.cli.Grant(rctx, ttl)
	if err != nil {
		return LeaseState{}, err
	}
	st := LeaseState{
		ID:              resp.ID,
		TTL:             time.Duration(resp.TTL) * time.Second,
		ConfirmedSentAt: sent,
		Regranted:       true,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lease = st
	c.leaseGone = false
	return st, nil
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
