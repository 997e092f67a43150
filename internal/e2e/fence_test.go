package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
	"github.com/regent-ha/regent/internal/procfs"
)

// TestKilledLeaderAgentIsFenced kills -9 only the leader's agent, leaving
// its PostgreSQL running as primary: the fence process must kill that
// postmaster before any replica is promoted, so the old primary cannot
// acknowledge writes once the new one can.
func TestKilledLeaderAgentIsFenced(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, 3)
	leader := waitFor(t, c, 3*time.Minute, "a healthy cluster", func(v *cluster.Cluster) bool {
		return localcluster.Healthy(v, 3)
	}).LeaderName()
	pm := c.PostmasterPID(leader)
	if pm == 0 {
		t.Fatal("no postmaster pid")
	}
	died := make(chan time.Time, 1)
	go func() {
		for alive(pm) {
			time.Sleep(5 * time.Millisecond) // sampling the old postmaster's liveness
		}
		died <- time.Now()
	}()
	killed := time.Now()
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	v := waitFor(t, c, time.Minute, "a new leader", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.Name != leader && l.State == cluster.StateRunning && len(v.History) > 0
	})
	var deathAt time.Time
	select {
	case deathAt = <-died:
	case <-time.After(10 * time.Second):
		t.Fatalf("the old leader's postmaster (pid %d) is still running after a new leader was promoted", pm)
	}
	promotedAt := v.History[len(v.History)-1].Time
	t.Logf("agent killed; postmaster fenced after %s; new leader %s promoted %s after the kill",
		deathAt.Sub(killed).Round(time.Millisecond), v.LeaderName(), promotedAt.Sub(killed).Round(time.Millisecond))
	if !deathAt.Before(promotedAt) {
		t.Fatalf("old postmaster died at %s, after the promotion at %s", deathAt, promotedAt)
	}
}

// alive reports whether pid runs; a zombie (killed, not yet reaped because
// its parent, the agent, is gone) does not.
func alive(pid int) bool { return procfs.Alive(pid) }

// TestFrozenLeaderAgentIsFenced SIGSTOPs the leader's agent: its fence
// process kills the postmaster before a replica is promoted, and after
// SIGCONT the old agent rejoins as a replica instead of leading again.
func TestFrozenLeaderAgentIsFenced(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, 3)
	leader := waitFor(t, c, 3*time.Minute, "a healthy cluster", func(v *cluster.Cluster) bool {
		return localcluster.Healthy(v, 3)
	}).LeaderName()
	pm, agent := c.PostmasterPID(leader), c.AgentPID(leader)
	died := make(chan time.Time, 1)
	go func() {
		for alive(pm) {
			time.Sleep(5 * time.Millisecond) // sampling the old postmaster's liveness
		}
		died <- time.Now()
	}()
	if err := syscall.Kill(agent, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(agent, syscall.SIGCONT)
		}
	}()
	v := waitFor(t, c, time.Minute, "a new leader", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.Name != leader && l.State == cluster.StateRunning && len(v.History) > 0
	})
	var deathAt time.Time
	select {
	case deathAt = <-died:
	case <-time.After(10 * time.Second):
		t.Fatalf("the frozen leader's postmaster (pid %d) still runs after %s was promoted", pm, v.LeaderName())
	}
	if promotedAt := v.History[len(v.History)-1].Time; !deathAt.Before(promotedAt) {
		t.Fatalf("old postmaster died at %s, after the promotion at %s", deathAt, promotedAt)
	}
	newLeader := v.LeaderName()
	if err := syscall.Kill(agent, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	waitFor(t, c, 2*time.Minute, leader+" back as a streaming replica of "+newLeader, func(v *cluster.Cluster) bool {
		m := v.Member(leader)
		return v.LeaderName() == newLeader && m != nil && m.ReplicationState == cluster.ReplicationStreaming &&
			localcluster.Healthy(v, 3)
	})
}
