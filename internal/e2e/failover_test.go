package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// TestClusterLifecycle walks one real three-member cluster through the
// core scenarios in order: bootstrap and replication, a postmaster crash on
// the leader (restarted in place, no failover), host loss of the leader
// (a replica takes over and accepts writes), and the old leader's return
// (it rejoins as a streaming replica on the new timeline).
func TestClusterLifecycle(t *testing.T) {
	c, _ := startCluster(t, 3)

	view := waitFor(t, c, 3*time.Minute, "a healthy cluster", func(v *cluster.Cluster) bool {
		return localcluster.Healthy(v, 3)
	})
	leader := view.LeaderName()
	t.Logf("bootstrapped: %s", describe(view))
	assertListShows(t, c, leader)
	assertHealthChecks(t, c, leader)

	if err := execOn(t, c, leader, "CREATE TABLE items (id int PRIMARY KEY, phase text)"); err != nil {
		t.Fatal(err)
	}
	if err := execOn(t, c, leader, "INSERT INTO items SELECT g, 'bootstrap' FROM generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Spec.Members {
		if m.Name == leader {
			continue
		}
		eventually(t, 30*time.Second, "rows replicated to "+m.Name, func() error {
			if n := count(t, c, m.Name, "items"); n != 100 {
				return fmt.Errorf("%s has %d rows", m.Name, n)
			}
			return nil
		})
	}

	t.Run("postmaster crash is repaired in place", func(t *testing.T) {
		before := c.PostmasterPID(leader)
		if err := c.KillPostmaster(leader); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "writes on the restarted leader", func() error {
			if pid := c.PostmasterPID(leader); pid == before {
				return fmt.Errorf("postmaster not restarted yet")
			}
			return execOn(t, c, leader, "INSERT INTO items VALUES (1000, 'after crash')")
		})
		v := waitFor(t, c, 30*time.Second, "leader "+leader+" running again", func(v *cluster.Cluster) bool {
			m := v.LeaderMember()
			return m != nil && m.State == cluster.StateRunning
		})
		if v.LeaderName() != leader {
			t.Fatalf("leader changed from %s to %s after a postmaster crash", leader, v.LeaderName())
		}
		if len(v.History) != 0 {
			t.Fatalf("a crash restart must not fail over: history %v", v.History)
		}
		if tl := v.Member(leader).Timeline; tl != 1 {
			t.Fatalf("timeline changed to %d by a crash restart", tl)
		}
	})

	// Make sure every replica holds the rows before the host loss, so the
	// assertion below is about failover, not asynchronous lag.
	for _, m := range c.Spec.Members {
		if m.Name != leader {
			eventually(t, 30*time.Second, "row 1000 on "+m.Name, func() error {
				if n := count(t, c, m.Name, "items"); n != 101 {
					return fmt.Errorf("%s has %d rows", m.Name, n)
				}
				return nil
			})
		}
	}

	oldLeader := leader
	t.Run("host loss of the leader fails over", func(t *testing.T) {
		pm := c.PostmasterPID(oldLeader)
		if err := c.Kill(oldLeader); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		v := waitFor(t, c, 60*time.Second, "a new leader", func(v *cluster.Cluster) bool {
			l := v.LeaderMember()
			return l != nil && l.Name != oldLeader && l.Role == cluster.RolePrimary && l.State == cluster.StateRunning
		})
		leader = v.LeaderName()
		t.Logf("new leader %s: %s", leader, describe(v))
		eventually(t, 30*time.Second, "writes on the new leader", func() error {
			return execOn(t, c, leader, "INSERT INTO items SELECT g, 'after failover' FROM generate_series(2001, 2050) g")
		})
		if n := count(t, c, leader, "items"); n != 151 {
			t.Fatalf("new leader has %d rows, want 151", n)
		}
		v = waitFor(t, c, 30*time.Second, "history entry", func(v *cluster.Cluster) bool { return len(v.History) == 1 })
		if h := v.History[0]; h.Timeline != 1 || h.NewLeader != leader {
			t.Fatalf("history = %+v", h)
		}
		assertListShows(t, c, leader)
	})

	t.Run("old leader rejoins on the new timeline", func(t *testing.T) {
		if err := c.Start(oldLeader); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c, 2*time.Minute, oldLeader+" streaming on timeline 2", func(v *cluster.Cluster) bool {
			m := v.Member(oldLeader)
			return v.LeaderName() == leader && m != nil && m.Timeline == 2 &&
				m.ReplicationState == cluster.ReplicationStreaming
		})
		eventually(t, 30*time.Second, "rows written after the failover on "+oldLeader, func() error {
			if n := count(t, c, oldLeader, "items"); n != 151 {
				return fmt.Errorf("%s has %d rows", oldLeader, n)
			}
			return nil
		})
		waitFor(t, c, 60*time.Second, "all three members healthy", func(v *cluster.Cluster) bool {
			return localcluster.Healthy(v, 3)
		})
		assertListShows(t, c, leader)
	})

	// A second host loss: the replicas now stream on timeline 2 and must
	// still be eligible once their WAL receiver has lost its upstream.
	t.Run("second host loss fails over again", func(t *testing.T) {
		second := leader
		pm := c.PostmasterPID(second)
		if err := c.Kill(second); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		v := waitFor(t, c, 60*time.Second, "a third leader", func(v *cluster.Cluster) bool {
			l := v.LeaderMember()
			return l != nil && l.Name != second && l.Role == cluster.RolePrimary && l.State == cluster.StateRunning && l.Timeline == 3
		})
		leader = v.LeaderName()
		eventually(t, 30*time.Second, "writes on the third leader", func() error {
			return execOn(t, c, leader, "INSERT INTO items VALUES (3000, 'after second failover')")
		})
		if n := count(t, c, leader, "items"); n != 152 {
			t.Fatalf("third leader has %d rows, want 152", n)
		}
		// The remaining replica follows the new timeline but has made no
		// restartpoint on it yet: its pg_control still names the old one.
		// Killed now and restarted, it must rejoin (pg_rewind finds nothing
		// to do), not stop in "rewind failed".
		replica := otherThan(c, leader, second)
		waitFor(t, c, time.Minute, replica+" streaming on timeline 3", func(v *cluster.Cluster) bool {
			m := v.Member(replica)
			return m != nil && m.Timeline == 3 && m.ReplicationState == cluster.ReplicationStreaming
		})
		rpm := c.PostmasterPID(replica)
		if err := c.Kill(replica); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(rpm, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(replica); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c, 2*time.Minute, replica+" streaming again after a kill", func(v *cluster.Cluster) bool {
			m := v.Member(replica)
			return m != nil && m.Timeline == 3 && m.ReplicationState == cluster.ReplicationStreaming
		})
		if err := c.Start(second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c, 2*time.Minute, "all three members healthy on timeline 3", func(v *cluster.Cluster) bool {
			return localcluster.Healthy(v, 3) && v.LeaderMember().Timeline == 3
		})
	})
}

// assertListShows runs `regent list -f json` and checks it names leader as
// the one Leader, every member running or streaming.
func assertListShows(t *testing.T, c *localcluster.Cluster, leader string) {
	t.Helper()
	cmd := exec.Command(binary, "list", "-f", "json")
	cmd.Env = append(os.Environ(), "REGENT_ETCD="+c.Spec.Etcd[0], "REGENT_SCOPE="+c.Spec.Scope)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("regent list: %v", err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("regent list output: %v\n%s", err, out)
	}
	leaders := 0
	for _, r := range rows {
		if r["Role"] == "Leader" {
			leaders++
			if r["Member"] != leader {
				t.Fatalf("regent list shows leader %v, want %s:\n%s", r["Member"], leader, out)
			}
		}
	}
	if leaders != 1 {
		t.Fatalf("regent list shows %d leaders:\n%s", leaders, out)
	}
}

// assertHealthChecks checks GET /primary and /replica on every member.
func assertHealthChecks(t *testing.T, c *localcluster.Cluster, leader string) {
	t.Helper()
	for _, m := range c.Spec.Members {
		wantPrimary, wantReplica := http.StatusServiceUnavailable, http.StatusOK
		if m.Name == leader {
			wantPrimary, wantReplica = http.StatusOK, http.StatusServiceUnavailable
		}
		eventually(t, 10*time.Second, "health checks of "+m.Name, func() error {
			for path, want := range map[string]int{"/primary": wantPrimary, "/replica": wantReplica} {
				if got := httpStatus(fmt.Sprintf("http://127.0.0.1:%d%s", m.APIPort, path)); got != want {
					return fmt.Errorf("GET %s = %d, want %d", path, got, want)
				}
			}
			return nil
		})
	}
}

func httpStatus(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
