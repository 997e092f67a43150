package agent

import (
	"time"

	"github.com/regent-ha/regent/internal/sdnotify"
)

// SetNotifier makes the agent report to systemd through n
// (sdnotify.FromEnv); nil reports nothing.
func (a *Agent) SetNotifier(n *sdnotify.Notifier) { a.notify = n }

// loopDone runs after every HA loop that completed. The first one tells
// systemd the agent is ready (the REST API already listens); every one
// feeds systemd's watchdog when the unit has one, at most every half of
// WATCHDOG_USEC (loopWait wakes the loop often enough). A loop that hangs
// stops the feeding, and systemd then kills the agent; the fence process
// stops a leader's PostgreSQL at the lease deadline as for any dead agent.
func (a *Agent) loopDone() {
	if !a.readySent {
		a.readySent = true
		a.notifySystemd(a.notify.Ready, "READY=1")
	}
	iv := a.notify.WatchdogInterval()
	if iv <= 0 {
		return
	}
	if now := time.Now(); a.watchdogFed.IsZero() || now.Sub(a.watchdogFed) >= iv-iv/10 {
		a.watchdogFed = now
		a.notifySystemd(a.notify.Watchdog, "WATCHDOG=1")
	}
}

// notifySystemd sends one notification; a failure is logged, not fatal.
func (a *Agent) notifySystemd(send func() error, what string) {
	if err := send(); err != nil {
		a.log.Warn("cannot notify systemd", "state", what, "err", err)
	}
}
