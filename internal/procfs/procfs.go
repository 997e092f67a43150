// Package procfs reads the few facts about a process Regent needs from
// Linux's /proc: its state, parent, process group and CPU time, and
// whether it is alive (a zombie is not).
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// Stat holds the fields of /proc/<pid>/stat Regent uses.
type Stat struct {
	State byte // R, S, D, Z, X, ...
	PPID  int
	PGRP  int
	// CPU is utime+stime+cutime+cstime: the process's own CPU time and
	// that of the children it has waited for.
	CPU time.Duration
}

// ReadStat parses /proc/<pid>/stat. The command name is in parentheses and
// may contain spaces, so fields are counted after the last ')'.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	j := bytes.LastIndexByte(b, ')')
	if j < 0 {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	// After ')': state(3) ppid(4) pgrp(5) session(6) tty(7) tpgid(8)
	// flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14)
	// stime(15) cutime(16) cstime(17).
	f := strings.Fields(string(b[j+1:]))
	if len(f) < 15 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return Stat{State: f[0][0], PPID: ppid, PGRP: pgrp, CPU: time.Duration(ticks) * time.Second / clockTicks}, nil
}

// Alive reports whether pid exists and is not a zombie (a killed process
// whose parent has not reaped it yet holds no memory and serves nothing).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := ReadStat(pid)
	if err != nil {
		// No /proc entry (or not Linux): trust kill(0).
		return !errors.Is(err, os.ErrNotExist)
	}
	return st.State != 'Z' && st.State != 'X'
}

// Children returns the PIDs whose parent is pid (one scan of /proc).
func Children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := ReadStat(child); err == nil && st.PPID == pid {
			out = append(out, child)
		}
	}
	return out
}
