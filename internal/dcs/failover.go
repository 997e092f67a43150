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
