package bench

import (
	"fmt"
	"github.com/regent-ha/regent/internal/procfs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTime returns the CPU time used so far by pid (with its reaped
// children).
func cpuTime(pid int) (time.Duration, error) {
	st, err := procfs.ReadStat(pid)
	return st.CPU, err
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
func alive(pid int) bool { return procfs.Alive(pid) }

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
