package dcs

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
)

// Load reads the whole cluster state with one linearizable range read over
// the prefix. Cluster.Revision is the etcd revision the view was read at.
func (c *Client) Load(ctx context.Context) (*cluster.Cluster, error) {
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Get(rctx, c.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("dcs: load %s: %w", c.prefix, err)
	}
	cl, err := decodeCluster(c.prefix, resp.Header.Revision, resp.Kvs, c.log)
	if err != nil {
		return nil, err
	}
	c.noteLoaded(resp)
	return cl, nil
}

// noteLoaded records the revision for Watch and drops the write caches of
// keys whose stored value no longer matches what this client last wrote
// (deleted or overwritten by someone else), so the next write goes through.
func (c *Client) noteLoaded(resp *clientv3.GetResponse) {
	memberKey, statusKey := c.key(KeyMembers+c.opts.Name), c.key(KeyStatus)
	var memberSeen, statusSeen bool
	c.mu.Lock()
	defer c.mu.Unlock()
	if resp.Header.Revision > c.loadedRev {
		c.loadedRev = resp.Header.Revision
	}
	for _, kv := range resp.Kvs {
		switch string(kv.Key) {
		case memberKey:
			memberSeen = true
			if string(kv.Value) != c.member.value || clientv3.LeaseID(kv.Lease) != c.member.lease {
				c.member = writeCache{}
			}
		case statusKey:
			statusSeen = true
			if string(kv.Value) != c.status.value {
				c.status = writeCache{}
			}
		}
	}
	if !memberSeen {
		c.member = writeCache{}
	}
	if !statusSeen {
		c.status = writeCache{}
	}
}
