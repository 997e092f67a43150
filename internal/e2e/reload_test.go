package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// editMemberFile rewrites a member's configuration file through edit.
func editMemberFile(t *testing.T, c *localcluster.Cluster, name string, edit func(doc map[string]any)) {
	t.Helper()
	path := c.ConfigPath(name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSIGHUPReloadsTheLeader sends SIGHUP to the leader's agent, as
// `systemctl reload` does: the agent keeps running and leading (no fence,
// no failover, the same postmaster) and applies the changed member file.
// Before SIGHUP was handled it ended the agent, and the fence process
// then stopped PostgreSQL and a replica took over.
func TestSIGHUPReloadsTheLeader(t *testing.T) {
	c, _ := startCluster(t, 2)
	v := waitFor(t, c, 3*time.Minute, "a healthy cluster", func(v *cluster.Cluster) bool { return localcluster.Healthy(v, 2) })
	leader := leaderOf(t, c)
	timeline := v.LeaderMember().Timeline
	postmaster := c.PostmasterPID(leader)
	agentPID := c.AgentPID(leader)
	if postmaster == 0 || agentPID == 0 {
		t.Fatalf("leader %s: postmaster pid %d, agent pid %d", leader, postmaster, agentPID)
	}

	editMemberFile(t, c, leader, func(doc map[string]any) {
		pg := doc["postgresql"].(map[string]any)
		pg["parameters"] = map[string]any{"work_mem": "7MB"}
		doc["tags"] = map[string]any{"noloadbalance": true}
	})
	if err := syscall.Kill(agentPID, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	eventually(t, time.Minute, "work_mem changed on the leader", func() error {
		conn, err := connect(t, c, leader)
		if err != nil {
			return err
		}
		defer conn.Close(t.Context())
		var got string
		if err := conn.QueryRow(t.Context(), "SHOW work_mem").Scan(&got); err != nil {
			return err
		}
		if got != "7MB" {
			return fmt.Errorf("work_mem = %s", got)
		}
		return nil
	})
	waitFor(t, c, time.Minute, "the leader publishing its new tag", func(v *cluster.Cluster) bool {
		m := v.Member(leader)
		return m != nil && m.EffectiveTags().NoLoadBalance
	})
	// A second SIGHUP while the first one's effects are visible: the agent
	// must still be there to log it.
	if err := syscall.Kill(agentPID, syscall.SIGHUP); err != nil {
		t.Fatalf("agent gone after SIGHUP: %v", err)
	}
	eventually(t, time.Minute, "two SIGHUP reloads logged", func() error {
		b, err := os.ReadFile(c.LogPath(leader))
		if err != nil {
			return err
		}
		if n := strings.Count(string(b), `reason=SIGHUP`); n < 2 {
			return fmt.Errorf("%d reloads by SIGHUP logged", n)
		}
		return nil
	})

	select {
	case <-c.Exited(leader):
		t.Fatalf("the leader's agent exited after SIGHUP: %v", c.ExitError(leader))
	default:
	}
	if got := c.AgentPID(leader); got != agentPID {
		t.Fatalf("agent pid %d, was %d", got, agentPID)
	}
	if got := c.PostmasterPID(leader); got != postmaster {
		t.Fatalf("postmaster pid %d, was %d: PostgreSQL was stopped (fenced?)", got, postmaster)
	}
	after := waitFor(t, c, time.Minute, "a running leader", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.State == cluster.StateRunning
	})
	if after.LeaderName() != leader || after.LeaderMember().Timeline != timeline {
		t.Fatalf("leader %s on timeline %d, was %s on %d: a failover happened", after.LeaderName(), after.LeaderMember().Timeline, leader, timeline)
	}
	if err := execOn(t, c, leader, "CREATE TABLE after_reload (id int)"); err != nil {
		t.Fatalf("the leader does not accept writes after SIGHUP: %v", err)
	}
}
