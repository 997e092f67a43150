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
	return c.updateList(ctx, KeyHistory, func(cur []byte) ([]byte, error) {
		var hist []cluster.HistoryEntry
		if cur != nil {
			if err := json.Unmarshal(cur, &hist); err != nil {
				c.log.Warn("replacing undecodable history key", "key", c.key(KeyHistory), "err", err)
				hist = nil
			}
		}
		for _, h := range hist {
			// A line for this or a later timeline means a newer promotion
			// was recorded while this agent was delayed: appending now
			// would put the history out of order.
			if h.Timeline >= e.Timeline {
				return nil, nil
			}
		}
		return json.Marshal(append(hist, e))
	})
}

// keepEvents is how many events the events key keeps.
const keepEvents = 50

// AppendEvent adds an event to the events key, keeping the latest
// keepEvents, with the same compare-and-set as AppendHistory.
func (c *Client) AppendEvent(ctx context.Context, e cluster.Event) error {
	for range historyAttempts {
		done, err := c.updateList(ctx, KeyEvents, func(cur []byte) ([]byte, error) {
			var ev []cluster.Event
			if cur != nil && json.Unmarshal(cur, &ev) != nil {
				ev = nil // undecodable: start again
			}
			ev = append(ev, e)
			if len(ev) > keepEvents {
				ev = ev[len(ev)-keepEvents:]
			}
			return json.Marshal(ev)
		})
		if err != nil {
			return fmt.Errorf("dcs: append event: %w", err)
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("dcs: append event: %w after %d attempts", errHistoryConflict, historyAttempts)
}

// updateList reads the key name, asks update for its new value (nil: no
// change wanted) and writes it only if the key did not change meanwhile
// (mod_revision). It reports whether the update is done (written, or not
// wanted).
func (c *Client) updateList(ctx context.Context, name string, update func(cur []byte) ([]byte, error)) (bool, error) {
	key := c.key(name)
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Get(rctx, key)
	if err != nil {
		return false, err
	}
	var cur []byte
	var rev int64
	if len(resp.Kvs) > 0 {
		cur, rev = resp.Kvs[0].Value, resp.Kvs[0].ModRevision
	}
	v, err := update(cur)
	if err != nil {
		return false, fmt.Errorf("encode: %w", err)
	}
	if v == nil {
		return true, nil
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
