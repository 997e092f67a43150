package agent

import (
	"time"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/watchdog"
)

// kernelWatchdog is the agent's use of /dev/watchdog: opened while this
// member holds the leader key, fed right after each confirmed renewal,
// closed with the magic close when it stops leading.
type kernelWatchdog struct {
	dev     *watchdog.Device
	failed  bool   // the last attempt to open it failed
	lastErr string // logged once per distinct error
	fedFor  string // the renewal the device was last fed for
}

// watchdogTick is called by armFences after each loop's renewal.
func (a *Agent) watchdogTick(holds bool) {
	w := &a.watchdog
	mode := a.cfg.Watchdog.Mode
	if mode == watchdog.ModeOff || mode == "" {
		return
	}
	if !holds {
		if w.dev != nil {
			_ = w.dev.Close()
			w.dev = nil
			a.log.Info("watchdog disarmed (magic close)")
		}
		return
	}
	timeout := a.watchdogTimeout()
	if w.dev == nil {
		dev, err := watchdog.Open(a.cfg.Watchdog.Device, timeout)
		if err != nil {
			w.failed = true
			if err.Error() != w.lastErr {
				w.lastErr = err.Error()
				a.log.Warn("watchdog unavailable; the fence process stays the backstop", "mode", mode, "err", err)
			}
			return
		}
		w.dev, w.failed = dev, false
		a.log.Info("watchdog armed", "device", a.cfg.Watchdog.Device, "timeout", dev.Timeout())
	}
	// Feed only for a renewal confirmed since the last feed.
	if key := a.lease.ConfirmedSentAt.String(); key != w.fedFor {
		w.fedFor = key
		if w.dev.Timeout() != timeout {
			// The lease's TTL changed (timing()): the new timeout takes
			// effect with this feed, right after a confirmed renewal.
			if err := w.dev.SetTimeout(timeout); err != nil {
				a.log.Error("changing the watchdog timeout", "timeout", timeout, "err", err)
			} else {
				a.log.Info("watchdog timeout changed with the lease's ttl", "timeout", w.dev.Timeout())
			}
		} else if err := w.dev.Feed(); err != nil {
			a.log.Error("feeding the watchdog", "err", err)
		}
	}
}

// watchdogTimeout is the watchdog timeout the lease allows (timing()).
func (a *Agent) watchdogTimeout() time.Duration {
	t := a.timing()
	return watchdog.Timeout(t.TTLDuration(), t.RetryTimeoutDuration(), t.ClockDrift, t.SafetyMargin)
}

// watchdogMissing tells the core that a required watchdog cannot be used.
func (a *Agent) watchdogMissing() bool {
	return a.cfg.Watchdog.Mode == watchdog.ModeRequired && a.watchdog.failed
}

// probeRequiredWatchdog checks once, at start, that a required watchdog can
// be opened (and disarms it again at once).
func (a *Agent) probeRequiredWatchdog() {
	if a.cfg.Watchdog.Mode != watchdog.ModeRequired {
		return
	}
	timeout := watchdog.Timeout(a.dyn.TTLDuration(), a.dyn.RetryTimeoutDuration(), a.dyn.ClockDrift, a.dyn.SafetyMargin)
	dev, err := watchdog.Open(a.cfg.Watchdog.Device, timeout) // a probe only: closed at once
	if err != nil {
		a.watchdog.failed = true
		a.log.Error("watchdog.mode is required but the watchdog cannot be used: this member will not lead", "err", err)
		return
	}
	_ = dev.Close()
}

// watchdogState is reported in metrics and the API: the kernel watchdog
// when open, else the fence process that stands in for it.
func (a *Agent) watchdogState() string {
	switch {
	case a.watchdog.dev != nil:
		return api.WatchdogActive
	case a.watchdog.failed && a.cfg.Watchdog.Mode == watchdog.ModeRequired:
		return api.WatchdogFailed
	case a.fence != nil && a.fence.alive():
		return api.WatchdogActive
	}
	return api.WatchdogOff
}
