package dcs

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Re-watch backoff after the watch stream failed.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 2 * time.Second
)

// Watch signals on the returned channel (buffer 1, never blocking the
// watcher) whenever a key that calls for a prompt decision changes: leader,
// config, failover, sync, initialize or failsafe (see relevant). It watches
// from the revision of the client's last Load, so no change after that Load
// is missed; without a Load it starts now. A broken watch is re-established
// from the last seen revision; if that revision was compacted a signal is
// sent so the caller re-reads. The channel is closed when ctx ends or the
// client is closed.
func (c *Client) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	next := c.loadedRev + 1
	c.mu.Unlock()
	if next == 1 {
		next = 0
	}
	go func() {
		defer close(ch)
		c.watchLoop(ctx, next, ch)
	}()
	return ch
}

// watchLoop runs watch streams until ctx ends; next is the first revision
// to watch (0 = now).
func (c *Client) watchLoop(ctx context.Context, next int64, ch chan<- struct{}) {
	backoff := watchRetryMin
	for {
		progressed, err := c.watchOnce(ctx, &next, ch)
		if ctx.Err() != nil || c.cli.Ctx().Err() != nil {
			return
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			c.log.Warn("watch revision compacted; re-reading", "revision", next)
			next = 0
			if rev, err := c.headRevision(ctx); err == nil {
				next = rev + 1
			}
			notify(ch)
		} else if err != nil {
			c.log.Warn("watch failed; re-establishing", "revision", next, "err", err)
		}
		if progressed {
			backoff = watchRetryMin
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, watchRetryMax)
	}
}

// watchOnce runs one watch stream from *next until it ends, advancing *next
// past every revision seen. It reports whether any response arrived.
func (c *Client) watchOnce(ctx context.Context, next *int64, ch chan<- struct{}) (bool, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithProgressNotify()}
	if *next > 0 {
		opts = append(opts, clientv3.WithRev(*next))
	}
	progressed := false
	for resp := range c.cli.Watch(wctx, c.prefix, opts...) {
		if resp.CompactRevision != 0 {
			return progressed, rpctypes.ErrCompacted
		}
		if err := resp.Err(); err != nil {
			return progressed, err
		}
		progressed = true
		if resp.IsProgressNotify() {
			// Sent only to synced watchers: every revision up to the
			// header's has been delivered.
			*next = max(*next, resp.Header.Revision+1)
			continue
		}
		changed := false
		for _, ev := range resp.Events {
			*next = max(*next, ev.Kv.ModRevision+1)
			if c.relevant(string(ev.Kv.Key)) {
				changed = true
			}
		}
		if changed {
			notify(ch)
		}
	}
	return progressed, ctx.Err()
}

// relevant reports whether a change to key should wake the HA loop: the
// keys whose change calls for a prompt decision (a lost or new leader, an
// operator request, a configuration or sync change, bootstrap). Member keys
// and the status key are not among them: every member rewrites its key
// when its WAL position moves, and the leader the status key every loop, so
// under write load waking on them made every member loop many times a
// second. They are read at the next loop_wait tick instead.
func (c *Client) relevant(key string) bool {
	rel, ok := strings.CutPrefix(key, c.prefix)
	if !ok {
		return false
	}
	switch rel {
	case KeyLeader, KeyConfig, KeyFailover, KeySync, KeyInitialize, KeyFailsafe:
		return true
	}
	return false
}

// headRevision returns the current revision of the store.
func (c *Client) headRevision(ctx context.Context) (int64, error) {
	rctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cli.Get(rctx, c.key(KeyLeader), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// notify sends a signal unless one is already pending.
func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
