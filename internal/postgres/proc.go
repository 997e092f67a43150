package postgres

import (
	"errors"
	"fmt"
	"github.com/regent-ha/regent/internal/procfs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool { return procfs.Alive(pid) }

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
		if st, err := procfs.ReadStat(n); err == nil && st.PPID == pid {
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
