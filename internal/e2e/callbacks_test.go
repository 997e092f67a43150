package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
	"github.com/regent-ha/regent/internal/localcluster"
)

// TestCallbacksThroughSwitchoverAndFailover runs Patroni-style callbacks
// with a recording script (it appends its arguments to a file) through a
// switchover and a failover, and checks the on_role_change calls of both
// members.
func TestCallbacksThroughSwitchoverAndFailover(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t)
	dir := testDir(t)
	calls := filepath.Join(dir, "calls.log")
	cb := filepath.Join(dir, "record.sh")
	if err := os.WriteFile(cb, []byte("#!/bin/sh\necho \"$*\" >> "+calls+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var members []localcluster.MemberSpec
	for _, name := range []string{"m1", "m2"} {
		cmd := cb + " " + name
		members = append(members, localcluster.MemberSpec{Name: name, PGPort: freePort(t), APIPort: freePort(t),
			PostgreSQL: map[string]any{"callbacks": map[string]string{
				"on_start": cmd, "on_stop": cmd, "on_restart": cmd, "on_reload": cmd, "on_role_change": cmd}}})
	}
	c := startMembers(t, etcd, members)
	healthy := func(leader string) func(v *cluster.Cluster) bool {
		return func(v *cluster.Cluster) bool {
			if v.LeaderName() != leader {
				return false
			}
			for _, m := range v.Members {
				if m.State != cluster.StateRunning || m.Name != leader && m.ReplicationState != cluster.ReplicationStreaming {
					return false
				}
			}
			return len(v.Members) == 2
		}
	}
	first := waitFor(t, c, 90*time.Second, "a leader and a streaming replica", func(v *cluster.Cluster) bool {
		return v.LeaderName() != "" && healthy(v.LeaderName())(v)
	}).LeaderName()
	second := otherThan(c, first)
	waitCalls := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, _ := os.ReadFile(calls)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			missing := ""
			for _, w := range want {
				if !slices.Contains(lines, w) {
					missing = w
					break
				}
			}
			if missing == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no call %q; calls so far:\n%s", what, missing, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitCalls("start", first+" on_start primary e2e", second+" on_start replica e2e")

	// Switchover: the candidate is promoted, the old primary comes back
	// as its replica; each reports its new role.
	if code, body := apiCall(t, c, first, "POST", "/switchover",
		map[string]string{"leader": first, "candidate": second}, "right"); code != http.StatusOK {
		t.Fatalf("switchover: %d %s", code, body)
	}
	waitFor(t, c, 90*time.Second, "the switchover to "+second, healthy(second))
	waitCalls("switchover", second+" on_role_change primary e2e", first+" on_role_change replica e2e")

	// Failover: the primary's agent and postmaster are killed; the replica
	// takes over and reports it.
	killMember(t, c, second)
	waitFor(t, c, 90*time.Second, "the failover to "+first, func(v *cluster.Cluster) bool {
		m := v.Member(first)
		return v.LeaderName() == first && m != nil && m.Role == cluster.RolePrimary
	})
	waitCalls("failover", first+" on_role_change primary e2e")
	b, _ := os.ReadFile(calls)
	if n := strings.Count(string(b), first+" on_role_change primary e2e"); n != 1 {
		t.Errorf("%s reported on_role_change primary %d times, want once:\n%s", first, n, b)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) != 4 || f[3] != "e2e" {
			t.Errorf("call %q is not <member> <action> <role> <scope>", l)
		}
	}
	t.Logf("callback calls:\n%s", b)
}

// TestFailingPrePromoteKeepsTheReplica checks that a pre_promote script
// that exits non-zero aborts the promotion after a failover: the replica
// stays a replica, the leader key is released again and the reason is
// recorded in the events key.
func TestFailingPrePromoteKeepsTheReplica(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t)
	dir := testDir(t)
	refuse := filepath.Join(dir, "refuse.sh")
	if err := os.WriteFile(refuse, []byte("#!/bin/sh\necho fencing the old primary failed >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	members := []localcluster.MemberSpec{
		{Name: "m1", PGPort: freePort(t), APIPort: freePort(t)},
		{Name: "m2", PGPort: freePort(t), APIPort: freePort(t), PostgreSQL: map[string]any{"pre_promote": refuse}},
	}
	// m1 bootstraps alone, so that m2 (with the refusing pre_promote) is
	// the replica whichever agent would have won the initialize race.
	c := newCluster(t, localcluster.Spec{Dir: dir, Binary: binary, Scope: "e2e", Etcd: etcd.Endpoints(), DCS: fastDCS(), Members: members})
	if err := c.Start("m1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, 90*time.Second, "m1 leading", func(v *cluster.Cluster) bool {
		m := v.LeaderMember()
		return m != nil && m.Name == "m1" && m.State == cluster.StateRunning
	})
	if err := c.Start("m2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, 90*time.Second, "m1 leading and m2 streaming", func(v *cluster.Cluster) bool {
		m := v.Member("m2")
		return v.LeaderName() == "m1" && m != nil && m.ReplicationState == cluster.ReplicationStreaming
	})
	killMember(t, c, "m1")
	v := waitFor(t, c, 60*time.Second, "the aborted promotion in the events key", func(v *cluster.Cluster) bool {
		for _, e := range v.Events {
			if e.Member == "m2" && strings.Contains(e.Reason, "promotion aborted: pre_promote script") &&
				strings.Contains(e.Reason, "exit code 3") {
				return true
			}
		}
		return false
	})
	if m := v.Member("m2"); m == nil || m.Role != cluster.RoleReplica {
		t.Fatalf("m2 after the aborted promotion: %+v", m)
	}
	code, body := apiCall(t, c, "m2", "GET", "/patroni", nil, "")
	if code != http.StatusOK || !strings.Contains(body, `"role":"replica"`) {
		t.Fatalf("m2 /patroni = %d %s, want a replica", code, body)
	}
	b, _ := os.ReadFile(c.LogPath("m2"))
	if !strings.Contains(string(b), "fencing the old primary failed") {
		t.Errorf("the script's output is not in m2's log")
	}
}
