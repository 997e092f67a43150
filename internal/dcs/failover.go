package dcs

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
)

// SetFailover stores a switchover or failover request.
func (c *Client) SetFailover(ctx context.Context, f cluster.Failover) error {
	v, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("dcs: set failover: encode: %w", err)
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	if _, err := c.cli.Put(rctx, c.key(KeyFailover), string(v)); err != nil {
		return fmt.Errorf("dcs: set failover: %w", err)
	}
	return nil
}

// ClearFailover deletes the failover key. With a non-zero modRevision
// (Failover.Revision) it deletes only if the key is unchanged since, and
// returns false otherwise.
func (c *Client) ClearFailover(ctx context.Context, modRevision int64) (bool, error) {
	key := c.key(KeyFailover)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	txn := c.cli.Txn(rctx)
	if modRevision != 0 {
		txn = txn.If(clientv3.Compare(clientv3.ModRevision(key), "=", modRevision))
	}
	resp, err := txn.Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return false, fmt.Errorf("dcs: clear failover: %w", err)
	}
	return resp.Succeeded, nil
}

// CreateFailover stores a switchover or failover request only if none is
// pending, and reports whether it did: of concurrent callers exactly one
// wins. The key counts as free when it does not exist or holds no request
// (empty or "{}", as Patroni leaves it after a switchover); in the latter
// case it is overwritten only if unchanged since it was read.
func (c *Client) CreateFailover(ctx context.Context, f cluster.Failover) (bool, error) {
	v, err := json.Marshal(f)
	if err != nil {
		return false, fmt.Errorf("dcs: create failover: encode: %w", err)
	}
	key := c.key(KeyFailover)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(v))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("dcs: create failover: %w", err)
	}
	if resp.Succeeded {
		return true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 {
		return false, nil // cannot happen: the read is part of the transaction
	}
	if existing, err := decodeFailover(kvs[0].Value); err != nil || existing != nil {
		return false, nil // a pending (or undecodable) request stays
	}
	resp, err = c.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", kvs[0].ModRevision)).
		Then(clientv3.OpPut(key, string(v))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("dcs: create failover: %w", err)
	}
	return resp.Succeeded, nil
}
