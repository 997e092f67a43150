package agent

import (
	"time"

	"golang.org/x/sys/unix"
)

// suspendDetector notices that the host was suspended (or the agent frozen
// in a way the monotonic clock did not see): Go's monotonic clock is
// CLOCK_MONOTONIC, which stops during a suspend, while CLOCK_BOOTTIME keeps
// counting. After such a gap the lease arithmetic underestimates how long
// ago the last renewal was sent, so the lease must be treated as lost before
// anything else happens.
type suspendDetector struct {
	lastMono time.Time
	lastBoot time.Duration
}

// check records a pair of clock readings and returns how much longer the
// boot-time clock advanced than the monotonic one since the last call.
func (d *suspendDetector) check(mono time.Time, boot time.Duration) time.Duration {
	defer func() { d.lastMono, d.lastBoot = mono, boot }()
	if d.lastMono.IsZero() {
		return 0
	}
	return (boot - d.lastBoot) - mono.Sub(d.lastMono)
}

// bootTime reads CLOCK_BOOTTIME, or returns ok=false where it is missing.
func bootTime() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
