package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// procStat holds the fields of /proc/<pid>/stat Regent needs.
type procStat struct {
	state byte
	ppid  int
	pgrp  int
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
	f := strings.Fields(string(b[j+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	return procStat{state: f[0][0], ppid: ppid, pgrp: pgrp}, nil
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := readProcStat(pid)
	if err != nil {
		// No /proc entry (or not Linux): trust kill(0).
		return !errors.Is(err, os.ErrNotExist)
	}
	return st.state != 'Z' && st.state != 'X'
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readProcStat(n); err == nil && st.ppid == pid {
			out = append(out, n)
		}
	}
	return out
}

// readPidFile returns the PID in the first line of postmaster.pid.
func readPidFile(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("malformed postmaster.pid in %s", dataDir)
	}
	return pid, nil
}

// isPostmasterFor reports whether pid is a live postmaster serving
// dataDir: the process exists, is not a zombie, its command line names
// postgres or postmaster and, when readable, its working directory (the
// postmaster chdirs into its data directory) is dataDir. This keeps a
// stale postmaster.pid, whose PID was reused after a reboot, from being
// mistaken for a running server.
func isPostmasterFor(pid int, dataDir string) bool {
	if !processAlive(pid) {
		return false
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil {
		s := string(cmd)
		if !strings.Contains(s, "postgres") && !strings.Contains(s, "postmaster") {
			return false
		}
	} else if !errors.Is(err, os.ErrPermission) {
		return false
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
		want := dataDir
		if r, err := filepath.EvalSymlinks(dataDir); err == nil {
			want = r
		}
		if filepath.Clean(cwd) != filepath.Clean(want) {
			return false
		}
	}
	return true
}

// postgresProcsIn lists the live postgres processes whose working
// directory is dataDir: a postmaster and its children (which inherit its
// working directory) or their orphans.
func postgresProcsIn(dataDir string) []int {
	want := dataDir
	if r, err := filepath.EvalSymlinks(dataDir); err == nil {
		want = r
	}
	want = filepath.Clean(want)
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
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", n))
		if err != nil || filepath.Clean(cwd) != want {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n))
		if err != nil || !strings.Contains(string(cmd), "postgres") && !strings.Contains(string(cmd), "postmaster") {
			continue
		}
		if processAlive(n) {
			out = append(out, n)
		}
	}
	return out
}

// KillPostmaster SIGKILLs the postmaster of dataDir (only if the PID in
// postmaster.pid really is that postmaster), its children and any other
// postgres process working in dataDir. It is the fence of last resort and
// reports whether it killed anything.
func KillPostmaster(dataDir string) bool {
	killed := false
	if pid, err := readPidFile(dataDir); err == nil && isPostmasterFor(pid, dataDir) {
		children := childrenOf(pid)
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = true
		}
		for _, c := range children {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
	}
	for _, p := range postgresProcsIn(dataDir) {
		if syscall.Kill(p, syscall.SIGKILL) == nil {
			killed = true
		}
	}
	return killed
}

// removeStaleLockFile deletes postmaster.pid when the PID it names is not a
// live postmaster of this data directory: after a kill -9, the old
// postmaster can linger as a zombie (its parent, the agent, died too, and
// not every init reaps orphans promptly), and PostgreSQL's own check
// (kill(pid, 0)) would then refuse to start or to run pg_rewind's crash
// recovery. A zombie has no cmdline, so isPostmasterFor rejects it.
func (i *Instance) removeStaleLockFile() error {
	pid, err := readPidFile(i.dataDir)
	if err != nil || isPostmasterFor(pid, i.dataDir) {
		return nil
	}
	path := filepath.Join(i.dataDir, "postmaster.pid")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", path, err)
	}
	i.log.Warn("removed a stale postmaster.pid", "pid", pid)
	return nil
}
