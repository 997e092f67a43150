package agent

import (
	"log/slog"
	"sync"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// leaseGuard enforces the renew deadline between HA loops. The core fences
// when it sees the deadline pass, but a loop may be blocked in an etcd call
// at that moment; the guard's timer fires at ConfirmedSentAt + R regardless
// and fences at once. It is re-armed after every loop.
type leaseGuard struct {
	mu    sync.Mutex
	timer *time.Timer
	at    time.Time
	fence func(reason string, fenceTimeout time.Duration)
	log   *slog.Logger
}

func newLeaseGuard(fence func(reason string, fenceTimeout time.Duration), log *slog.Logger) *leaseGuard {
	return &leaseGuard{fence: fence, log: log}
}

// arm sets the deadline when the member holds the key, and disarms it
// otherwise.
func (g *leaseGuard) arm(holds bool, confirmedSentAt time.Time, dyn cluster.DynamicConfig) {
	if !holds || confirmedSentAt.IsZero() {
		g.disarm()
		return
	}
	renewDeadline, fenceTimeout := dyn.RenewDeadline(), dyn.FenceTimeoutDuration()
	deadline := confirmedSentAt.Add(renewDeadline)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil && g.at.Equal(deadline) {
		return
	}
	if g.timer != nil {
		g.timer.Stop()
	}
	g.at = deadline
	g.timer = time.AfterFunc(time.Until(deadline), func() {
		g.fence("renew deadline "+renewDeadline.String()+" passed without a confirmed lease renewal", fenceTimeout)
	})
}

func (g *leaseGuard) disarm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	g.at = time.Time{}
}
