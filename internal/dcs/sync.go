package dcs

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
)

// SetSync writes the sync key if its mod revision is still modRevision (0:
// only if it does not exist). It reports false when someone else changed it.
func (c *Client) SetSync(ctx context.Context, st cluster.SyncState, modRevision int64) (bool, error) {
	v, err := json.Marshal(st)
	if err != nil {
		return false, err
	}
	key := c.key(KeySync)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	cmp := clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)
	if modRevision == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	resp, err := c.cli.Txn(rctx).If(cmp).Then(clientv3.OpPut(key, string(v))).Commit()
	if err != nil {
		return false, fmt.Errorf("dcs: set sync: %w", err)
	}
	return resp.Succeeded, nil
}

// DeleteSync removes the sync key (synchronous mode turned off) if it is
// still at modRevision.
func (c *Client) DeleteSync(ctx context.Context, modRevision int64) (bool, error) {
	key := c.key(KeySync)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return false, fmt.Errorf("dcs: delete sync: %w", err)
	}
	return resp.Succeeded, nil
}

// WriteFailsafe stores the failsafe member list (name → REST API URL) if it
// changed since this client last wrote it.
func (c *Client) WriteFailsafe(ctx context.Context, members map[string]string) error {
	v, err := json.Marshal(members)
	if err != nil {
		return err
	}
	c.mu.Lock()
	same := c.lastFailsafe == string(v)
	c.mu.Unlock()
	if same {
		return nil
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	if _, err := c.cli.Put(rctx, c.key(KeyFailsafe), string(v)); err != nil {
		return fmt.Errorf("dcs: write failsafe: %w", err)
	}
	c.mu.Lock()
	c.lastFailsafe = string(v)
	c.mu.Unlock()
	return nil
}
