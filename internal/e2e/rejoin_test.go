package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
	"github.com/regent-ha/regent/internal/localcluster"
)

// TestRewindRetriedWhileLeaderRestarts reproduces the fault-injection
// finding of issue 10: the old primary runs pg_rewind against the new
// leader while the new leader's PostgreSQL cannot serve it and is restarted
// in place (same leader, same timeline). The failed pg_rewind is transient:
// the member must retry it with backoff and end up streaming, without an
// operator, and without its data directory ever being moved or removed.
//
// Every member publishes its PostgreSQL address through a gate in front of
// the real port, so the test can make the new leader refuse connections
// (and drop the ones it has) for as long as it wants.
func TestRewindRetriedWhileLeaderRestarts(t *testing.T) {
	etcd := startEtcd(t)
	spec := localcluster.Spec{Dir: testDir(t), Binary: binary, Scope: "e2e", Etcd: etcd, DCS: fastDCS()}
	gates := map[string]*gate{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("m%d", i)
		pg := freePort(t)
		g := newGate(t, fmt.Sprintf("127.0.0.1:%d", pg))
		gates[name] = g
		spec.Members = append(spec.Members, localcluster.MemberSpec{Name: name, PGPort: pg, APIPort: freePort(t), PGConnect: g.addr})
	}
	c := runSpec(t, spec)

	view := waitFor(t, c, 3*time.Minute, "a healthy cluster", func(v *cluster.Cluster) bool { return localcluster.Healthy(v, 3) })
	old := view.LeaderName()
	if err := execOn(t, c, old, "CREATE TABLE rejoin (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}

	// Host loss of the leader: a replica takes over on timeline 2.
	pm := c.PostmasterPID(old)
	if err := c.Kill(old); err != nil {
		t.Fatal(err)
	}
	killPID(pm)
	view = waitFor(t, c, time.Minute, "a new leader with its post-promote checkpoint done", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.Name != old && l.State == cluster.StateRunning && l.Timeline == 2 &&
			l.CheckpointAfterPromote != nil && *l.CheckpointAfterPromote
	})
	leader := view.LeaderName()
	if err := execOn(t, c, leader, "INSERT INTO rejoin VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	dataDir := c.DataDir(old)
	before, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}

	// The new leader stops serving other members; the old one comes back
	// and its first pg_rewind fails against it.
	gates[leader].down()
	logAt := logSize(t, c, old)
	if err := c.Start(old); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, old+" logging a failed pg_rewind", func() error {
		if !logHas(t, c, old, logAt, `msg="task failed"`, "task=rewind", "Connection refused") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	// While the member backs off, the leader's PostgreSQL crashes and is
	// restarted in place: leader and timeline stay what they were.
	leaderPM := c.PostmasterPID(leader)
	if err := c.KillPostmaster(leader); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, leader+" restarted in place", func() error {
		if pid := c.PostmasterPID(leader); pid == 0 || pid == leaderPM {
			return fmt.Errorf("postmaster not restarted yet")
		}
		return execOn(t, c, leader, "INSERT INTO rejoin VALUES (2)")
	})
	gates[leader].up()

	view = waitFor(t, c, 3*time.Minute, "every member streaming from "+leader, func(v *cluster.Cluster) bool {
		return localcluster.Healthy(v, 3) && v.LeaderName() == leader
	})
	if len(view.History) != 1 {
		t.Fatalf("want exactly one failover, history %v", view.History)
	}
	if !logHas(t, c, old, logAt, "rejoin step failed transiently", "step=pg_rewind") || !logHas(t, c, old, logAt, "retrying pg_rewind") {
		t.Error("the member streams, but its log does not show a transient pg_rewind failure and a retry")
	}
	if logHas(t, c, old, logAt, "waiting for an operator") {
		t.Error("a transient failure made the member wait for an operator")
	}
	eventually(t, 30*time.Second, "rows written after the failover on "+old, func() error {
		if n := count(t, c, old, "rejoin"); n != 2 {
			return fmt.Errorf("%s has %d rows", old, n)
		}
		return nil
	})
	after, err := os.Stat(dataDir)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("the data directory %s was replaced (%v)", dataDir, err)
	}
	if moved, _ := filepath.Glob(dataDir + ".diverged-*"); len(moved) > 0 {
		t.Errorf("the data directory was moved aside for a transient failure: %v", moved)
	}
	assertListShows(t, c, leader)
}

// startEtcd starts the embedded etcd and returns its endpoints.
func startEtcd(t *testing.T) []string {
	t.Helper()
	return etcdtest.Start(t).Endpoints()
}

func killPID(pid int) {
	if p, err := os.FindProcess(pid); err == nil && pid > 0 {
		_ = p.Kill()
	}
}

func logSize(t *testing.T, c *localcluster.Cluster, name string) int64 {
	t.Helper()
	st, err := os.Stat(c.LogPath(name))
	if err != nil {
		return 0
	}
	return st.Size()
}

// logHas reports whether a line of the member's agent log after offset
// contains every one of parts.
func logHas(t *testing.T, c *localcluster.Cluster, name string, offset int64, parts ...string) bool {
	t.Helper()
	b, err := os.ReadFile(c.LogPath(name))
	if err != nil || int64(len(b)) < offset {
		return false
	}
lines:
	for _, l := range strings.Split(string(b[offset:]), "\n") {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue lines
			}
		}
		return true
	}
	return false
}

// gate is a TCP forwarder on a fixed 127.0.0.1 port. Down closes the
// listener and every forwarded connection (clients see "connection
// refused" and "server closed the connection unexpectedly"); up listens
// again on the same port.
type gate struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	g := &gate{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), target: target, conns: map[net.Conn]bool{}}
	g.up()
	t.Cleanup(g.down)
	return g
}

func (g *gate) up() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		return
	}
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", g.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		g.t.Errorf("gate %s: %v", g.addr, err)
		return
	}
	g.ln = ln
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go g.forward(client)
		}
	}()
}

func (g *gate) down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		g.ln.Close()
		g.ln = nil
	}
	for c := range g.conns {
		c.Close()
	}
	g.conns = map[net.Conn]bool{}
}

func (g *gate) track(cs ...net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		return false
	}
	for _, c := range cs {
		g.conns[c] = true
	}
	return true
}

func (g *gate) forward(client net.Conn) {
	server, err := net.DialTimeout("tcp", g.target, 3*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !g.track(client, server) {
		client.Close()
		server.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
	g.mu.Lock()
	delete(g.conns, client)
	delete(g.conns, server)
	g.mu.Unlock()
}
