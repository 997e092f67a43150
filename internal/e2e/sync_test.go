package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
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
	assertSyncChecks(t, c, leader, standby, otherThan(c, leader, standby))

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
		assertSyncChecks(t, c, leader, standby, old)
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

// assertSyncChecks checks what the REST API says about synchronous
// standbys (synchronous_mode on): /sync is 200 only on standby, /async only
// on async (the other replica), /read-only-sync on the leader and standby;
// /cluster names standby sync_standby, /patroni has sync_standby: true
// there, patroni_sync_standby is 1 on it and regent list shows it.
func assertSyncChecks(t *testing.T, c *localcluster.Cluster, leader, standby, async string) {
	t.Helper()
	assertStandbyChecks(t, c, cluster.SyncOn, leader, []string{standby}, []string{async})
}

// assertStandbyChecks checks the REST API of every member against the
// published standbys (mode on: sync standbys, quorum: quorum standbys) and
// the unlisted replicas.
func assertStandbyChecks(t *testing.T, c *localcluster.Cluster, mode cluster.SyncMode, leader string, standbys, async []string) {
	t.Helper()
	field, role, metric, listRole := "sync_standby", "sync_standby", "patroni_sync_standby", "Sync Standby"
	standbyCodes := map[string]int{"/sync": 200, "/synchronous": 200, "/async": 503, "/read-only-sync": 200,
		"/quorum": 503, "/read-only-quorum": 503}
	if mode == cluster.SyncQuorum {
		field, role, metric, listRole = "quorum_standby", "quorum_standby", "patroni_quorum_standby", "Quorum Standby"
		standbyCodes = map[string]int{"/sync": 503, "/synchronous": 503, "/async": 503, "/read-only-sync": 503,
			"/quorum": 200, "/read-only-quorum": 200}
	}
	want := map[string]map[string]int{
		leader: {"/sync": 503, "/synchronous": 503, "/async": 503, "/read-only-sync": 200, "/quorum": 503, "/read-only-quorum": 200},
	}
	wantRole := map[string]string{leader: "leader"}
	for _, m := range standbys {
		want[m], wantRole[m] = standbyCodes, role
	}
	for _, m := range async {
		want[m] = map[string]int{"/sync": 503, "/synchronous": 503, "/async": 200, "/read-only-sync": 503,
			"/quorum": 503, "/read-only-quorum": 503}
		wantRole[m] = "replica"
	}
	eventually(t, 30*time.Second, fmt.Sprintf("the REST API reporting %v as %s", standbys, role), func() error {
		for member, paths := range want {
			for path, code := range paths {
				if got, body := apiCall(t, c, member, http.MethodGet, path, nil, "none"); got != code {
					return fmt.Errorf("GET %s on %s = %d, want %d (%s)", path, member, got, code, body)
				}
			}
			_, body := apiCall(t, c, member, http.MethodGet, "/patroni", nil, "none")
			var st map[string]any
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				return fmt.Errorf("/patroni on %s: %v", member, err)
			}
			isStandby := wantRole[member] == role
			if st[field] != nil && st[field] != true || (st[field] == true) != isStandby {
				return fmt.Errorf("/patroni on %s: %s = %v: %s", member, field, st[field], body)
			}
			_, metrics := apiCall(t, c, member, http.MethodGet, "/metrics", nil, "none")
			gauge := "0"
			if isStandby {
				gauge = "1"
			}
			if !hasSample(metrics, metric, gauge) {
				return fmt.Errorf("/metrics on %s: %s is not %s", member, metric, gauge)
			}
		}
		_, body := apiCall(t, c, leader, http.MethodGet, "/cluster", nil, "none")
		var view struct {
			Members []struct{ Name, Role string } `json:"members"`
		}
		if err := json.Unmarshal([]byte(body), &view); err != nil {
			return fmt.Errorf("/cluster: %v", err)
		}
		for _, m := range view.Members {
			if w, ok := wantRole[m.Name]; ok && m.Role != w {
				return fmt.Errorf("/cluster: %s has role %q, want %q (%s)", m.Name, m.Role, w, body)
			}
		}
		return nil
	})
	out, err := cli(t, c, "list")
	if err != nil || strings.Count(out, listRole) != len(standbys) {
		t.Errorf("regent list (%v), want %d %q rows:\n%s", err, len(standbys), listRole, out)
	}
}

// TestQuorumModeHealthChecks runs a three-member cluster with
// synchronous_mode quorum and checks that both replicas, once published as
// quorum standbys, answer /quorum (and not /sync) and are reported as such.
func TestQuorumModeHealthChecks(t *testing.T) {
	dyn := fastDCS()
	dyn.SynchronousMode = cluster.SyncQuorum
	c, _ := startClusterDCS(t, 3, nil, dyn)
	v := waitFor(t, c, 3*time.Minute, "a healthy cluster with both replicas published as quorum standbys", func(v *cluster.Cluster) bool {
		s := v.Sync
		return localcluster.Healthy(v, 3) && s != nil && s.Leader == v.LeaderName() && len(s.Members) == 2
	})
	assertStandbyChecks(t, c, cluster.SyncQuorum, v.LeaderName(), slices.Clone(v.Sync.Members), nil)
}

// hasSample reports whether the Prometheus text has a sample of metric
// with value.
func hasSample(text, metric, value string) bool {
	for _, line := range strings.Split(text, "\n") {
		if name, rest, ok := strings.Cut(line, "{"); ok && name == metric {
			if _, v, ok := strings.Cut(rest, "} "); ok && strings.TrimSpace(v) == value {
				return true
			}
		}
	}
	return false
}
