package dcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
)

// TouchMember writes this member's key on the current lease. The write is
// skipped when value and lease equal the last successful write and no
// later Load has shown the key changed or gone.
func (c *Client) TouchMember(ctx context.Context, m *cluster.Member) error {
	if err := c.requireName("touch member"); err != nil {
		return err
	}
	id, err := c.currentLease()
	if err != nil {
		return fmt.Errorf("dcs: touch member: %w", err)
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("dcs: touch member: encode: %w", err)
	}
	c.mu.Lock()
	unchanged := c.member.valid && c.member.value == string(v) && c.member.lease == id
	c.mu.Unlock()
	if unchanged {
		return nil
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	if _, err := c.cli.Put(rctx, c.key(KeyMembers+c.opts.Name), string(v), clientv3.WithLease(id)); err != nil {
		c.noteLeaseError(id, err)
		return fmt.Errorf("dcs: touch member: %w", err)
	}
	c.mu.Lock()
	c.member = writeCache{valid: true, value: string(v), lease: id}
	c.mu.Unlock()
	return nil
}

// DeleteMember deletes this member's key (at clean shutdown).
func (c *Client) DeleteMember(ctx context.Context) error {
	if err := c.requireName("delete member"); err != nil {
		return err
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	if _, err := c.cli.Delete(rctx, c.key(KeyMembers+c.opts.Name)); err != nil {
		return fmt.Errorf("dcs: delete member: %w", err)
	}
	c.mu.Lock()
	c.member = writeCache{}
	c.mu.Unlock()
	return nil
}

// MemberNameTaken reports whether this member's key exists on a live lease
// that is not this client's: another agent runs with the same name.
func (c *Client) MemberNameTaken(ctx context.Context) (bool, error) {
	if err := c.requireName("check member name"); err != nil {
		return false, err
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Get(rctx, c.key(KeyMembers+c.opts.Name))
	if err != nil {
		return false, fmt.Errorf("dcs: check member name: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].Lease == 0 {
		return false, nil
	}
	lease := clientv3.LeaseID(resp.Kvs[0].Lease)
	if lease == c.Lease().ID {
		return false, nil
	}
	ttl, err := c.cli.TimeToLive(rctx, lease)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dcs: check member name: lease %x: %w", int64(lease), err)
	}
	return ttl.TTL > 0, nil
}
