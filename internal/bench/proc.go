package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat holds the fields of /proc/<pid>/stat the bench reads.
type procStat struct {
	state byte
	ppid  int
	// cpu is utime+stime+cutime+cstime: the process's own CPU time and
	// that of the children it has waited for (helpers it ran).
	cpu time.Duration
}

// readProcStat parses /proc/<pid>/stat. The command name is in parentheses
// and may contain spaces, so fields are counted after the last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	j := bytes.LastIndexByte(b, ')')
	if j < 0 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	// After ')': state(3) ppid(4) pgrp(5) session(6) tty(7) tpgid(8)
	// flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14)
	// stime(15) cutime(16) cstime(17).
	f := strings.Fields(string(b[j+1:]))
	if len(f) < 15 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return procStat{state: f[0][0], ppid: ppid, cpu: time.Duration(ticks) * time.Second / clockTicks}, nil
}

// cpuTime returns the CPU time used so far by pid (with its reaped
// children).
func cpuTime(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	return st.cpu, err
}

// rssBytes returns VmRSS of pid from /proc/<pid>/status.
func rssBytes(pid int) (int64, error) {
	m, err := memStatus(pid)
	if err != nil {
		return 0, err
	}
	return m["VmRSS"], nil
}

// memStatus returns the memory fields of /proc/<pid>/status given in kB
// (VmRSS, RssAnon, RssFile, ...), in bytes.
func memStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			out[k] = kb * 1024
		}
	}
	if _, ok := out["VmRSS"]; !ok {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return out, nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := readProcStat(pid)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	return st.state != 'Z' && st.state != 'X'
}

// postmasterPID reads the first line of dataDir/postmaster.pid and
// returns it only when that process is a live postgres whose working
// directory is dataDir (a stale file's PID may have been reused).
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	if pid <= 0 || !alive(pid) || !inDir(pid, dataDir) {
		return 0
	}
	return pid
}

// inDir reports whether pid's working directory is dir (a postmaster and
// its children run in their data directory).
func inDir(pid int, dir string) bool {
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	want := dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		want = r
	}
	return filepath.Clean(cwd) == filepath.Clean(want)
}

// postgresProcsIn lists the live processes whose working directory is
// dataDir: the postmaster, its children, and orphans of a killed
// postmaster.
func postgresProcsIn(dataDir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n == self {
			continue
		}
		if inDir(n, dataDir) && alive(n) {
			out = append(out, n)
		}
	}
	return out
}

// killPostgresIn sends SIGKILL to every process running in dataDir and
// waits up to timeout for them to be gone.
func killPostgresIn(dataDir string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		pids := postgresProcsIn(dataDir)
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitGone waits until pid no longer runs or timeout passes.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
