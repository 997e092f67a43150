package dcs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/regent-ha/regent/internal/cluster"
)

// WriteStatus stores the leader's status (optime and slots). It skips the
// write when the encoded value equals the last one this client wrote and a
// later Load has not shown it changed.
func (c *Client) WriteStatus(ctx context.Context, st cluster.Status) error {
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("dcs: write status: encode: %w", err)
	}
	c.mu.Lock()
	unchanged := c.status.valid && c.status.value == string(v)
	c.mu.Unlock()
	if unchanged {
		return nil
	}
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	if _, err := c.cli.Put(rctx, c.key(KeyStatus), string(v)); err != nil {
		return fmt.Errorf("dcs: write status: %w", err)
	}
	c.mu.Lock()
	c.status = writeCache{valid: true, value: string(v)}
	c.mu.Unlock()
	return nil
}
