package e2e

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// TestSynchronousMode runs a three-member cluster with synchronous_mode on:
// one replica is published as synchronous only once PostgreSQL waits for
// it; losing it moves the role to the other replica; losing the leader
// promotes the synchronous standby and no acknowledged write is lost.
func TestSynchronousMode(t *testing.T) {
	dyn := fastDCS()
	dyn.SynchronousMode = cluster.SyncOn
	c, _ := startClusterDCS(t, 3, nil, dyn)
	syncOf := func(v *cluster.Cluster) string {
		if v.Sync == nil || v.Sync.Leader != v.LeaderName() || len(v.Sync.Members) != 1 {
			return ""
		}
		return v.Sync.Members[0]
	}
	v := waitFor(t, c, 3*time.Minute, "a healthy cluster with a published synchronous standby", func(v *cluster.Cluster) bool {
		return localcluster.Healthy(v, 3) && syncOf(v) != ""
	})
	leader, standby := v.LeaderName(), syncOf(v)
	t.Logf("leader %s, synchronous standby %s", leader, standby)
	assertWaitsFor(t, c, leader, standby)

	if err := execOn(t, c, leader, "CREATE TABLE acked (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}

	t.Run("losing the synchronous standby moves the role", func(t *testing.T) {
		pm := c.PostmasterPID(standby)
		if err := c.Kill(standby); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		other := otherThan(c, leader, standby)
		waitFor(t, c, time.Minute, "the other replica published as synchronous", func(v *cluster.Cluster) bool {
			return syncOf(v) == other
		})
		assertWaitsFor(t, c, leader, other)
		old := standby
		standby = other
		if err := c.Start(old); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c, 2*time.Minute, "three members healthy", func(v *cluster.Cluster) bool {
			return localcluster.Healthy(v, 3) && syncOf(v) == standby
		})
	})

	t.Run("host loss promotes the synchronous standby with every acknowledged write", func(t *testing.T) {
		acked := 0
		for id := 1; id <= 200; id++ {
			if err := execOn(t, c, leader, "INSERT INTO acked VALUES ($1)", id); err != nil {
				t.Fatal(err)
			}
			acked = id
		}
		pm := c.PostmasterPID(leader)
		if err := c.Kill(leader); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		v := waitFor(t, c, time.Minute, "a new leader", func(v *cluster.Cluster) bool {
			l := v.LeaderMember()
			return l != nil && l.Name != leader && l.State == cluster.StateRunning && l.Role == cluster.RolePrimary
		})
		if v.LeaderName() != standby {
			t.Fatalf("promoted %s, but the synchronous standby was %s", v.LeaderName(), standby)
		}
		if n := count(t, c, standby, "acked"); n != acked {
			t.Fatalf("new leader has %d of %d acknowledged rows", n, acked)
		}
	})
}

// assertWaitsFor checks that the leader's PostgreSQL names exactly standby
// in synchronous_standby_names and reports it as sync.
func assertWaitsFor(t *testing.T, c *localcluster.Cluster, leader, standby string) {
	t.Helper()
	eventually(t, 30*time.Second, "PostgreSQL on "+leader+" waiting for "+standby, func() error {
		conn, err := connect(t, c, leader)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var ssn string
		if err := conn.QueryRow(context.Background(), "SHOW synchronous_standby_names").Scan(&ssn); err != nil {
			return err
		}
		if want := fmt.Sprintf(`FIRST 1 ("%s")`, standby); ssn != want {
			return fmt.Errorf("synchronous_standby_names = %q, want %q", ssn, want)
		}
		rows, err := conn.Query(context.Background(), "SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'")
		if err != nil {
			return err
		}
		var names []string
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			names = append(names, n)
		}
		if !slices.Equal(names, []string{standby}) {
			return fmt.Errorf("sync standbys reported: %v", names)
		}
		return nil
	})
}
