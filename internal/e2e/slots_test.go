package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// slotNames lists a member's replication slots, sorted.
func slotNames(t *testing.T, c *localcluster.Cluster, name string) ([]string, error) {
	t.Helper()
	conn, err := connect(t, c, name)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var s string
	if err := conn.QueryRow(ctx, "SELECT coalesce(string_agg(slot_name::text, ',' ORDER BY slot_name), '') FROM pg_replication_slots").Scan(&s); err != nil {
		return nil, err
	}
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, ","), nil
}

// hasSlots returns nil once member name has every slot in want.
func hasSlots(t *testing.T, c *localcluster.Cluster, name string, want ...string) error {
	got, err := slotNames(t, c, name)
	if err != nil {
		return err
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return fmt.Errorf("%s has slots %v, want %v among them", name, got, want)
		}
	}
	return nil
}

// TestReplicationSlots: a slot made by hand on the leader is left alone, a
// permanent physical slot exists on every member, a down member's slot is
// kept (member_slots_ttl, 30 min by default) and listed in retain_slots,
// and after a failover the new leader already holds the slots of the
// other members, the departed ones included.
func TestReplicationSlots(t *testing.T) {
	dyn := fastDCS()
	dyn.Slots = map[string]*cluster.PermanentSlot{"archiver": {Type: cluster.SlotPhysical}}
	c, _ := startClusterDCS(t, 3, nil, dyn)
	view := waitFor(t, c, 3*time.Minute, "a healthy cluster", func(v *cluster.Cluster) bool {
		return localcluster.Healthy(v, 3)
	})
	leader := view.LeaderName()
	var replicas []string
	for _, m := range view.SortedMembers() {
		if m.Name != leader {
			replicas = append(replicas, m.Name)
		}
	}
	// E2: pg_receivewal --create-slot makes a physical slot like this one.
	if err := execOn(t, c, leader, "SELECT pg_create_physical_replication_slot('barman_receivewal', true)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "member and permanent slots on every member", func() error {
		if err := hasSlots(t, c, leader, "archiver", "barman_receivewal", replicas[0], replicas[1]); err != nil {
			return err
		}
		for _, r := range replicas {
			others := []string{"archiver", leader}
			for _, o := range replicas {
				if o != r {
					others = append(others, o)
				}
			}
			if err := hasSlots(t, c, r, others...); err != nil {
				return err
			}
		}
		return nil
	})

	// E4: a replica down for longer than ttl keeps its slot.
	down := replicas[1]
	if err := c.Kill(down); err != nil {
		t.Fatal(err)
	}
	killPostmaster(c, down)
	waitFor(t, c, 30*time.Second, down+"'s member key to expire and its slot to be retained", func(v *cluster.Cluster) bool {
		return v.Member(down) == nil && slices.Contains(v.Status.RetainSlots, down)
	})
	// A later leader loop (the status key shows WAL written after this
	// point) has not dropped them either.
	retained := waitFor(t, c, 10*time.Second, "the status key", func(v *cluster.Cluster) bool { return v.Status.Optime > 0 })
	if err := execOn(t, c, leader, "CREATE TABLE after_down (v int)"); err != nil {
		t.Fatal(err)
	}
	if err := execOn(t, c, leader, "SELECT pg_switch_wal()"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, 30*time.Second, "a leader loop after the write", func(v *cluster.Cluster) bool {
		return v.Status.Optime > retained.Status.Optime
	})
	if err := hasSlots(t, c, leader, "archiver", "barman_receivewal", down, replicas[0]); err != nil {
		t.Fatalf("after %s went down: %v", down, err)
	}

	// Failover: the surviving replica leads and holds slots for the old
	// leader and for the member that is still down.
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	killPostmaster(c, leader)
	newLeader := replicas[0]
	waitFor(t, c, time.Minute, newLeader+" to lead", func(v *cluster.Cluster) bool {
		m := v.Member(newLeader)
		return v.LeaderName() == newLeader && m != nil && m.Role == cluster.RolePrimary
	})
	eventually(t, 30*time.Second, "the new leader's slots", func() error {
		return hasSlots(t, c, newLeader, "archiver", leader, down)
	})
	waitFor(t, c, 30*time.Second, "the new leader to retain both absent members' slots", func(v *cluster.Cluster) bool {
		return slices.Contains(v.Status.RetainSlots, leader) && slices.Contains(v.Status.RetainSlots, down)
	})
}
