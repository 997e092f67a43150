package agent

import (
	"context"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
)

// refusalRepeat is how often a refusal that persists is recorded again.
const refusalRepeat = time.Minute

// recordRefusal writes a refused promotion (a replica that does not take
// over a leaderless cluster, and why) to the DCS events key: at the start
// of every episode of refusals and then once a minute while it lasts, so
// that an operator finds the reason after the fact (GET /events).
func (a *Agent) recordRefusal(ctx context.Context, o ha.Observation, d ha.Decision) {
	if !d.PromotionRefused {
		a.refusalRecordedAt = time.Time{}
		return
	}
	if o.Cluster == nil || (!a.refusalRecordedAt.IsZero() && time.Since(a.refusalRecordedAt) < refusalRepeat) {
		return
	}
	ev := cluster.Event{Kind: cluster.EventPromotionRefused, Reason: d.Reason, Timeline: o.PG.Timeline, LSN: o.PG.LSN()}
	if err := a.recordEvent(ctx, ev); err != nil {
		a.log.Warn("recording the refused promotion in the DCS", "err", err)
		return
	}
	a.refusalRecordedAt = time.Now()
}

// recordEvent appends ev, stamped with this member and the time, to the
// DCS events key, bounded by retry_timeout.
func (a *Agent) recordEvent(ctx context.Context, ev cluster.Event) error {
	rctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	ev.Time = time.Now().UTC().Format(time.RFC3339Nano)
	ev.Member = a.cfg.Name
	return a.dcs.AppendEvent(rctx, ev)
}
