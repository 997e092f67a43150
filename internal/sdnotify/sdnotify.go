// Package sdnotify tells systemd about a service's state over the
// datagram socket named by $NOTIFY_SOCKET (the sd_notify(3) protocol), so
// that a unit with Type=notify knows when the agent is ready, reloading or
// stopping, and a unit with WatchdogSec= knows it is alive.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends state changes to systemd. The nil Notifier (no
// $NOTIFY_SOCKET: not started by systemd, or Type= is not notify) sends
// nothing, so callers need not check.
type Notifier struct {
	addr *net.UnixAddr
	// watchdog is the interval of WATCHDOG_USEC (0 = no watchdog).
	watchdog time.Duration
}

// FromEnv returns the Notifier of $NOTIFY_SOCKET, or nil when it is not
// set. It also reads $WATCHDOG_USEC (used when $WATCHDOG_PID is unset or
// names this process) and removes the three variables from the
// environment, so that child processes — PostgreSQL, built with systemd
// support, would announce its own readiness — do not inherit them.
func FromEnv() *Notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	usec := os.Getenv("WATCHDOG_USEC")
	pid := os.Getenv("WATCHDOG_PID")
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		_ = os.Unsetenv(k)
	}
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:] // an abstract socket
	}
	n := &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
	if v, err := strconv.ParseInt(usec, 10, 64); err == nil && v > 0 && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		n.watchdog = time.Duration(v) * time.Microsecond
	}
	return n
}

// Notify sends one message of newline-separated VAR=value assignments.
func (n *Notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready says that start-up or a reload is complete (READY=1).
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Reloading says that a reload has begun (RELOADING=1 with the
// CLOCK_MONOTONIC time, which Type=notify-reload requires); Ready ends it.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return n.Notify("RELOADING=1")
	}
	return n.Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10))
}

// Stopping says that the service is shutting down (STOPPING=1).
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Watchdog keeps systemd's watchdog from firing (WATCHDOG=1).
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// WatchdogInterval is how often Watchdog must be called: half of
// WATCHDOG_USEC, as sd_watchdog_enabled(3) advises; 0 when the unit has
// no watchdog.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog / 2
}
