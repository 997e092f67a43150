// Package fence is Regent's watchdog of last resort for hosts without
// /dev/watchdog: a small process, started by the agent, that SIGKILLs the
// postmaster when the agent stops renewing its deadline.
//
// The agent writes one line per change to the fence's standard input:
//
//	arm <deadline>   deadline in nanoseconds of CLOCK_MONOTONIC
//	disarm
//	exit
//
// While armed, the fence kills the postmaster at the deadline unless a later
// one arrives first. A SIGSTOPped, hung or killed agent therefore cannot
// leave a writable primary behind after its lease may have expired: when the
// agent dies, its end of the pipe closes and the fence keeps the last
// deadline, fires if it is armed, and exits.
package fence

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Now reads CLOCK_MONOTONIC, the clock deadlines are expressed in; it is
// shared by every process on the host.
func Now() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Run reads commands from r and calls kill when an armed deadline passes.
// It returns when told to exit, or after r ends and any armed deadline has
// been handled.
func Run(r io.Reader, kill func() bool, log *slog.Logger) error {
	cmds := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			cmds <- strings.TrimSpace(sc.Text())
		}
		readErr <- sc.Err()
		close(cmds)
	}()
	var (
		deadline int64 // 0 = disarmed
		timer    <-chan time.Time
	)
	arm := func(d int64) {
		deadline = d
		timer = nil
		if d != 0 {
			timer = time.After(time.Duration(max(d-Now(), 0)))
		}
	}
	for {
		select {
		case cmd, ok := <-cmds:
			if !ok {
				if deadline == 0 {
					log.Info("agent gone and fence disarmed: exiting")
					return <-readErr
				}
				log.Warn("agent gone while armed: keeping the last deadline",
					"in", time.Duration(deadline-Now()).Round(time.Millisecond))
				cmds = nil
				continue
			}
			switch {
			case cmd == "exit":
				return nil
			case cmd == "disarm":
				arm(0)
			case strings.HasPrefix(cmd, "arm "):
				d, err := strconv.ParseInt(strings.TrimPrefix(cmd, "arm "), 10, 64)
				if err != nil || d <= 0 {
					return fmt.Errorf("fence: bad command %q", cmd)
				}
				arm(d)
			case cmd == "":
			default:
				return fmt.Errorf("fence: unknown command %q", cmd)
			}
		case <-timer:
			if Now() < deadline { // re-armed later than the timer knew
				arm(deadline)
				continue
			}
			killed := kill()
			log.Error("deadline passed without renewal from the agent: killed the postmaster",
				"action", "fence", "killed", killed)
			arm(0)
			if cmds == nil {
				return nil
			}
		}
	}
}
