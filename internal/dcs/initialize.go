package dcs

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RaceInitialize creates the initialize key with an empty value if it does
// not exist, and reports whether this call created it: the winner
// bootstraps the cluster.
func (c *Client) RaceInitialize(ctx context.Context) (bool, error) {
	key := c.key(KeyInitialize)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, "")).
		Commit()
	if err != nil {
		return false, fmt.Errorf("dcs: race for initialize: %w", err)
	}
	return resp.Succeeded, nil
}

// SetInitialize stores the cluster's PostgreSQL system identifier.
func (c *Client) SetInitialize(ctx context.Context, sysid string) error {
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	if _, err := c.cli.Put(rctx, c.key(KeyInitialize), sysid); err != nil {
		return fmt.Errorf("dcs: set initialize: %w", err)
	}
	return nil
}

// CancelInitialize deletes the initialize key if it is still empty (the
// bootstrap failed before a system identifier was stored).
func (c *Client) CancelInitialize(ctx context.Context) error {
	key := c.key(KeyInitialize)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	_, err := c.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.Value(key), "=", "")).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("dcs: cancel initialize: %w", err)
	}
	return nil
}

// ClaimInitialize creates the initialize key holding sysid if it does not
// exist, and reports whether this call created it. It is the race a
// bootstrap runs (RaceInitialize), for a member that adopts an existing
// data directory: the key's value is the system identifier at once, so no
// other member ever sees an empty key it would wait on.
func (c *Client) ClaimInitialize(ctx context.Context, sysid string) (bool, error) {
	if sysid == "" {
		return false, fmt.Errorf("dcs: claim initialize: empty system identifier")
	}
	key := c.key(KeyInitialize)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, sysid)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("dcs: claim initialize: %w", err)
	}
	return resp.Succeeded, nil
}
