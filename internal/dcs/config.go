package dcs

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
)

// SetConfig writes the dynamic configuration with compare-and-set: with
// modRevision 0 only if the config key does not exist, otherwise only if
// its mod_revision still equals modRevision (Cluster.ConfigRevision). It
// returns false when the comparison failed.
func (c *Client) SetConfig(ctx context.Context, cfg cluster.DynamicConfig, modRevision int64) (bool, error) {
	v, err := json.Marshal(cfg)
	if err != nil {
		return false, fmt.Errorf("dcs: set config: encode: %w", err)
	}
	key := c.key(KeyConfig)
	cmp := clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)
	if modRevision == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Txn(rctx).If(cmp).Then(clientv3.OpPut(key, string(v))).Commit()
	if err != nil {
		return false, fmt.Errorf("dcs: set config: %w", err)
	}
	return resp.Succeeded, nil
}

// PutConfig writes the dynamic configuration unconditionally, replacing
// whatever the config key holds (PUT /config).
func (c *Client) PutConfig(ctx context.Context, cfg cluster.DynamicConfig) error {
	v, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("dcs: put config: encode: %w", err)
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	if _, err := c.cli.Put(rctx, c.key(KeyConfig), string(v)); err != nil {
		return fmt.Errorf("dcs: put config: %w", err)
	}
	return nil
}
