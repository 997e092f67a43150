package dcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
)

// historyAttempts bounds AppendHistory's retries on concurrent updates.
const historyAttempts = 5

// errHistoryConflict is returned when every attempt lost a race.
var errHistoryConflict = errors.New("history key kept changing")

// AppendHistory appends a line to the history key with a read-modify-write
// guarded by the key's mod_revision, retried on conflict. A line for a
// timeline already recorded is not added again, so retrying after an
// ambiguous failure is safe. An undecodable history is replaced.
func (c *Client) AppendHistory(ctx context.Context, e cluster.HistoryEntry) error {
	for range historyAttempts {
		done, err := c.appendHistoryOnce(ctx, e)
		if err != nil {
			return fmt.Errorf("dcs: append history: %w", err)
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("dcs: append history: %w after %d attempts", errHistoryConflict, historyAttempts)
}

// appendHistoryOnce makes one compare-and-set attempt and reports whether
// it succeeded.
func (c *Client) appendHistoryOnce(ctx context.Context, e cluster.HistoryEntry) (bool, error) {
	key := c.key(KeyHistory)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Get(rctx, key)
	if err != nil {
		return false, err
	}
	var hist []cluster.HistoryEntry
	var rev int64
	if len(resp.Kvs) > 0 {
		rev = resp.Kvs[0].ModRevision
		if err := json.Unmarshal(resp.Kvs[0].Value, &hist); err != nil {
			c.log.Warn("replacing undecodable history key", "key", key, "err", err)
			hist = nil
		}
	}
	for _, h := range hist {
		// A line for this or a later timeline means a newer promotion was
		// recorded while this agent was delayed: appending now would put
		// the history out of order.
		if h.Timeline >= e.Timeline {
			return true, nil
		}
	}
	v, err := json.Marshal(append(hist, e))
	if err != nil {
		return false, fmt.Errorf("encode: %w", err)
	}
	txn, err := c.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(v))).
		Commit()
	if err != nil {
		return false, err
	}
	return txn.Succeeded, nil
}
