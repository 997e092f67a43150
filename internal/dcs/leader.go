package dcs

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// AcquireLeader creates the leader key with this member's name on the
// current lease if no leader key exists, and reports whether it did.
func (c *Client) AcquireLeader(ctx context.Context) (bool, error) {
	if err := c.requireName("acquire leader"); err != nil {
		return false, err
	}
	id, err := c.currentLease()
	if err != nil {
		return false, fmt.Errorf("dcs: acquire leader: %w", err)
	}
	key := c.key(KeyLeader)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, c.opts.Name, clientv3.WithLease(id))).
		Commit()
	if err != nil {
		c.noteLeaseError(id, err)
		return false, fmt.Errorf("dcs: acquire leader: %w", err)
	}
	return resp.Succeeded, nil
}

// UpdateLeader confirms with a linearizable transaction that the leader key
// holds this member's name on the current lease. If the key holds the name
// on another lease (the lease was re-granted) it is re-attached to the
// current one, guarded by the value as Patroni does. It returns false when
// the key is absent or names someone else; a missing key is not recreated.
func (c *Client) UpdateLeader(ctx context.Context) (bool, error) {
	if err := c.requireName("update leader"); err != nil {
		return false, err
	}
	id, err := c.currentLease()
	if err != nil {
		return false, fmt.Errorf("dcs: update leader: %w", err)
	}
	key, name := c.key(KeyLeader), c.opts.Name
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Txn(rctx).
		If(
			clientv3.Compare(clientv3.Value(key), "=", name),
			clientv3.Compare(clientv3.LeaseValue(key), "=", int64(id)),
		).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("dcs: update leader: %w", err)
	}
	if resp.Succeeded {
		return true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 || string(kvs[0].Value) != name {
		return false, nil
	}
	c.log.Info("re-attaching leader key to the current lease",
		"lease", fmt.Sprintf("%x", int64(id)), "previous_lease", fmt.Sprintf("%x", kvs[0].Lease))
	resp, err = c.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.Value(key), "=", name)).
		Then(clientv3.OpPut(key, name, clientv3.WithLease(id))).
		Commit()
	if err != nil {
		c.noteLeaseError(id, err)
		return false, fmt.Errorf("dcs: update leader: re-attach to lease %x: %w", int64(id), err)
	}
	return resp.Succeeded, nil
}

// ReleaseLeader deletes the leader key if it holds this member's name.
func (c *Client) ReleaseLeader(ctx context.Context) error {
	if err := c.requireName("release leader"); err != nil {
		return err
	}
	key := c.key(KeyLeader)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	_, err := c.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.Value(key), "=", c.opts.Name)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("dcs: release leader: %w", err)
	}
	return nil
}
