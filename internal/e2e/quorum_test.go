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

// TestQuorumMode runs a three-member cluster with synchronous_mode quorum:
// the leader makes PostgreSQL wait for ANY 1 of both replicas and
// publishes them in the sync key with quorum 1; losing the leader's host
// promotes a replica that holds every acknowledged write.
func TestQuorumMode(t *testing.T) {
	dyn := fastDCS()
	dyn.SynchronousMode = cluster.SyncQuorum
	c, _ := startClusterDCS(t, 3, nil, dyn)
	quorumKey := func(v *cluster.Cluster) bool {
		s := v.Sync
		return s != nil && s.Leader == v.LeaderName() && len(s.Members) == 2 && s.Quorum == 1
	}
	v := waitFor(t, c, 3*time.Minute, "a healthy cluster with both replicas published with quorum 1", func(v *cluster.Cluster) bool {
		return localcluster.Healthy(v, 3) && quorumKey(v)
	})
	leader := v.LeaderName()
	replicas := slices.Clone(v.Sync.Members)
	slices.Sort(replicas)
	for _, r := range replicas {
		if r == leader || v.Member(r) == nil {
			t.Fatalf("sync key %+v does not list the two replicas of leader %s", v.Sync, leader)
		}
	}
	t.Logf("leader %s, quorum standbys %v", leader, replicas)
	assertQuorum(t, c, leader, replicas)

	if err := execOn(t, c, leader, "CREATE TABLE acked (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
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
	v = waitFor(t, c, time.Minute, "a new leader", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.Name != leader && l.State == cluster.StateRunning && l.Role == cluster.RolePrimary
	})
	next := v.LeaderName()
	if !slices.Contains(replicas, next) {
		t.Fatalf("promoted %s, which was not a quorum standby (%v)", next, replicas)
	}
	if n := count(t, c, next, "acked"); n != acked {
		t.Fatalf("new leader %s has %d of %d acknowledged rows", next, n, acked)
	}
}

// assertQuorum checks that the leader's PostgreSQL waits for ANY 1 of
// exactly the given standbys and reports both as quorum standbys.
func assertQuorum(t *testing.T, c *localcluster.Cluster, leader string, standbys []string) {
	t.Helper()
	eventually(t, 30*time.Second, "PostgreSQL on "+leader+" waiting for ANY 1 of "+fmt.Sprint(standbys), func() error {
		conn, err := connect(t, c, leader)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var ssn string
		if err := conn.QueryRow(context.Background(), "SHOW synchronous_standby_names").Scan(&ssn); err != nil {
			return err
		}
		if want := fmt.Sprintf(`ANY 1 ("%s","%s")`, standbys[0], standbys[1]); ssn != want {
			return fmt.Errorf("synchronous_standby_names = %q, want %q", ssn, want)
		}
		rows, err := conn.Query(context.Background(),
			"SELECT application_name FROM pg_stat_replication WHERE sync_state = 'quorum' ORDER BY application_name")
		if err != nil {
			return err
		}
		var names []string
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			names = append(names, n)
		}
		if !slices.Equal(names, standbys) {
			return fmt.Errorf("quorum standbys reported: %v", names)
		}
		return nil
	})
}
