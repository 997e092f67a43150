package bench

import (
	"context"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Member is one member of a benchmarked cluster.
type Member struct {
	Name    string
	PGPort  int
	APIPort int
	DataDir string
}

// System is one HA manager running a three-member cluster on 127.0.0.1.
// The scenarios drive it only through this interface, PostgreSQL and the
// Patroni-compatible REST API, so Regent and Patroni are measured the same
// way.
type System interface {
	// Name is "regent" or "patroni".
	Name() string
	// Start creates and starts the cluster's agents; it does not wait for
	// them to be healthy.
	Start(ctx context.Context) error
	// Stop stops every agent and PostgreSQL it started, killing what does
	// not stop in time.
	Stop()
	Members() []Member
	// Superuser returns the PostgreSQL superuser name and password.
	Superuser() (user, password string)
	// APIURL is the base URL of a member's REST API.
	APIURL(name string) string
	// AgentPID is the PID of the member's agent process (0 if none).
	AgentPID(name string) int
	// StartAgent starts a member's agent again after KillAgent.
	StartAgent(name string) error
	// KillAgent sends SIGKILL to the member's agent and waits for it.
	KillAgent(name string) error
	// Switchover asks the cluster to hand the leader role from leader to
	// candidate and returns when the system's API reports it done.
	Switchover(ctx context.Context, leader, candidate string) error
	// LogPath is the member agent's log file.
	LogPath(name string) string
	// SyncStandbys returns the members the system has published as
	// synchronous standbys of leader: the ones it may promote in
	// synchronous mode (nil when none, or when it cannot tell).
	SyncStandbys(ctx context.Context, leader string) []string
}

// member returns the named member of s.
func member(s System, name string) Member {
	for _, m := range s.Members() {
		if m.Name == name {
			return m
		}
	}
	return Member{}
}

func memberNames(s System) []string {
	var out []string
	for _, m := range s.Members() {
		out = append(out, m.Name)
	}
	sort.Strings(out)
	return out
}

// processes started by the bench (etcd, agents): killed on exit if still
// running, so no run leaves anything behind even when it fails.
var (
	trackedMu sync.Mutex
	tracked   = map[int]bool{}
	dataDirs  = map[string]bool{}
)

func track(pid int) {
	trackedMu.Lock()
	tracked[pid] = true
	trackedMu.Unlock()
}

func untrack(pid int) {
	trackedMu.Lock()
	delete(tracked, pid)
	trackedMu.Unlock()
}

// trackDataDir records a data directory whose PostgreSQL processes are
// killed on exit.
func trackDataDir(dir string) {
	trackedMu.Lock()
	dataDirs[dir] = true
	trackedMu.Unlock()
}

// KillLeftovers kills every tracked process still running and every
// PostgreSQL process running in a tracked data directory. The bench calls
// it on exit, after the orderly stops, as the last line of defence.
func KillLeftovers() {
	trackedMu.Lock()
	pids := make([]int, 0, len(tracked))
	for p := range tracked {
		pids = append(pids, p)
	}
	dirs := make([]string, 0, len(dataDirs))
	for d := range dataDirs {
		dirs = append(dirs, d)
	}
	trackedMu.Unlock()
	for _, p := range pids {
		if alive(p) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	for _, d := range dirs {
		killPostgresIn(d, 5*time.Second)
	}
}
