package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/slots"
)

// syncSlots lists inst's slots, decides for in and applies the plan.
func syncSlots(t *testing.T, inst *Instance, in slots.Input) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	existing, err := inst.ReplicationSlots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in.Existing = existing
	if err := inst.ApplySlots(ctx, slots.Decide(in)); err != nil {
		t.Fatal(err)
	}
}

// TestReplicationFailoverRewind builds a primary and a streaming replica,
// promotes the replica, rewinds the diverged old primary and makes it
// stream from the new one.
func TestReplicationFailoverRewind(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	portA, portB := freePort(t), freePort(t)
	a := newTestInstance(t, filepath.Join(dir, "a"), "member-a", portA)
	b := newTestInstance(t, filepath.Join(dir, "b"), "Member-B", portB)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	slotA, slotB := SlotName("member-a"), SlotName("Member-B")

	if err := a.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	a.start(t, StartOptions{})
	for range 2 { // idempotent
		if err := a.EnsureReplicationRole(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if v := a.queryString(t, "SELECT rolreplication::text FROM pg_roles WHERE rolname = $1", testReplUser); v != "true" {
		t.Errorf("rolreplication = %q", v)
	}
	// Slots: a slot made by hand (pg_receivewal, barman) is not
	// Regent's and survives; an owned slot whose member left more than
	// member_slots_ttl ago is dropped.
	a.exec(t, "SELECT pg_create_physical_replication_slot('stale_slot')")
	a.exec(t, "SELECT pg_create_physical_replication_slot('barman_receivewal', true)")
	leaderIn := slots.Input{Self: "member-a", Primary: true, Members: []string{"member-a", "Member-B"},
		Expired: []string{"stale_slot"}, Config: cluster.DefaultDynamicConfig()}
	for range 2 { // idempotent
		syncSlots(t, a.Instance, leaderIn)
	}
	if v := a.queryString(t, "SELECT string_agg(slot_name::text, ',' ORDER BY slot_name) FROM pg_replication_slots"); v != "barman_receivewal,"+slotB {
		t.Errorf("slots = %q, want barman_receivewal,%s", v, slotB)
	}
	if err := a.ApplySlots(ctx, slots.Plan{Create: []string{"Bad-Name"}}); err == nil {
		t.Error("invalid slot name accepted")
	}

	replFrom := func(port int, app string) ConnInfo {
		return ConnInfo{Host: "127.0.0.1", Port: port, User: testReplUser, Password: testReplPassword, ApplicationName: app}
	}
	if err := b.BaseBackup(ctx, replFrom(portA, "member-b-clone")); err != nil {
		t.Fatal(err)
	}
	b.start(t, StartOptions{Standby: true, PrimaryConnInfo: replFrom(portA, "Member-B").String(), SlotName: slotB})
	for _, f := range []string{"postgresql.conf", "postgresql.base.conf", "postgresql.auto.conf"} {
		if c, _ := os.ReadFile(filepath.Join(b.DataDir(), f)); strings.Contains(string(c), "rep:pass") {
			t.Errorf("%s contains the replication password", f)
		}
	}
	checkOwnedFile(t, b.Instance, b.primaryPassfile())

	a.exec(t, "CREATE TABLE t (v text)")
	a.exec(t, "INSERT INTO t VALUES ('before')")
	sa := a.state(t)
	waitFor(t, 20*time.Second, "replica b to stream and replay", func() (bool, string) {
		s, err := b.Query(ctx)
		if err != nil {
			return false, err.Error()
		}
		return s.InRecovery && s.ReplicationState == "streaming" && s.Timeline == 1 && s.ReplayLSN >= sa.WriteLSN,
			stateString(s)
	})
	// The replica keeps copies of the other members' slots and advances
	// them to the leader's published positions.
	replicaIn := slots.Input{Self: "Member-B", Members: []string{"member-a", "Member-B", "member-c"},
		Config: cluster.DefaultDynamicConfig()}
	syncSlots(t, b.Instance, replicaIn)
	restart := func() int64 {
		v := b.queryString(t, "SELECT pg_wal_lsn_diff(restart_lsn, '0/0')::bigint::text FROM pg_replication_slots WHERE slot_name = 'member_c'")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("restart_lsn of member_c on the replica: %q", v)
		}
		return n
	}
	beforeLSN := restart()
	a.exec(t, "CREATE TABLE wal1 (v int)")
	a.exec(t, "SELECT pg_switch_wal()")
	a.exec(t, "CREATE TABLE wal2 (v int)")
	target := a.state(t).WriteLSN
	waitFor(t, 20*time.Second, "replica b to replay the new WAL", func() (bool, string) {
		s, err := b.Query(ctx)
		return err == nil && s.ReplayLSN >= target, fmt.Sprint(s.ReplayLSN, err)
	})
	replicaIn.Positions = map[string]int64{"member_c": target}
	syncSlots(t, b.Instance, replicaIn)
	if after := restart(); after != target || after <= beforeLSN {
		t.Errorf("member_c on the replica: restart_lsn %s -> %s, want advanced to %s",
			cluster.FormatLSN(beforeLSN), cluster.FormatLSN(after), cluster.FormatLSN(target))
	}
	if v := b.queryString(t, "SELECT string_agg(slot_name::text, ',' ORDER BY slot_name) FROM pg_replication_slots"); v != slotA+",member_c" {
		t.Errorf("replica slots = %q", v)
	}

	sb := b.state(t)
	if sb.ReceiveLSN < sa.WriteLSN || sb.SystemIdentifier != sa.SystemIdentifier {
		t.Errorf("replica state %+v, primary %+v", sb, sa)
	}
	// The receiver started at a segment boundary at or before what it
	// has received since.
	if st := sb.ReceiveStartLSN; st <= 0 || st%(16<<20) != 0 || st > sb.ReceiveLSN {
		t.Errorf("receive start %s, received %s", cluster.FormatLSN(st), cluster.FormatLSN(sb.ReceiveLSN))
	}
	if sb.ReceiverConnInfo == "" || strings.Contains(sb.ReceiverConnInfo, "rep:pass") || strings.Contains(sb.ReceiverConnInfo, "password") {
		t.Errorf("receiver conninfo %q", sb.ReceiverConnInfo)
	}
	waitFor(t, 10*time.Second, "primary to list the replica", func() (bool, string) {
		s, err := a.Query(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range s.Replication {
			if r.ApplicationName == "Member-B" && r.State == "streaming" && r.ClientAddr == "127.0.0.1" && r.SentLSN > 0 {
				return true, ""
			}
		}
		return false, stateString(s)
	})
	if v := a.queryString(t, "SELECT active::text FROM pg_replication_slots WHERE slot_name = $1", slotB); v != "true" {
		t.Errorf("slot %s active = %q", slotB, v)
	}
	// Unchanged primary: SetPrimary is a no-op (no rewrite).
	confB := filepath.Join(b.DataDir(), "postgresql.conf")
	before, _ := os.Stat(confB)
	if err := b.SetPrimary(ctx, replFrom(portA, "Member-B").String(), slotB); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(confB); !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Error("SetPrimary rewrote an unchanged configuration")
	}

	// Promote b.
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	if err := b.Promote(pctx); err != nil {
		t.Fatal(err)
	}
	pcancel()
	sb = b.state(t)
	if sb.InRecovery || sb.Timeline != 2 || sb.WriteLSN <= 0 || sb.ReplicationState != "" {
		t.Errorf("promoted state: %+v", sb)
	}
	if _, err := os.Stat(filepath.Join(b.DataDir(), "standby.signal")); !os.IsNotExist(err) {
		t.Errorf("standby.signal after promote: %v", err)
	}
	b.exec(t, "INSERT INTO t VALUES ('after promote')")

	// The old primary diverges, then dies.
	a.exec(t, "INSERT INTO t VALUES ('diverged')")
	a.exec(t, "SELECT pg_switch_wal()")
	if err := a.Stop(ctx, StopImmediate, 0); err != nil {
		t.Fatal(err)
	}
	if cd, err := a.ControlData(ctx); err != nil || cd.State != "in production" || cd.TimeLineID != 1 {
		t.Errorf("old primary after immediate stop: %+v %v", cd, err)
	}

	if err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.ApplySlots(ctx, slots.Plan{Create: []string{slotA}}); err != nil {
		t.Fatal(err)
	}
	// A source that refuses connections: the failure is transient and the
	// target is left as it was, so the next attempt succeeds.
	down := ConnInfo{Host: "127.0.0.1", Port: freePort(t), User: "postgres", Password: testSuperPassword, DBName: "postgres"}
	err := a.Rewind(ctx, down)
	var te *ToolError
	if !errors.As(err, &te) || te.Kind != Transient || !strings.Contains(te.Reason, "refused") {
		t.Fatalf("rewind from a source that is down: %v (classified %+v), want a transient ToolError", err, te)
	}
	if cd, err := a.ControlData(ctx); err != nil || cd.TimeLineID != 1 {
		t.Fatalf("target after a failed rewind: %+v %v", cd, err)
	}
	record := filepath.Join(a.RunDir(), rewindRecord)
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("a rewind that changed nothing left %s behind (%v)", record, err)
	}
	// An agent killed while pg_rewind was copying left the run's output:
	// that target must never be rewound again.
	interrupted := "pg_rewind: reading WAL in target\npg_rewind: need to copy 51 MB (total source directory size is 70 MB)\n    0/53113 kB (0%) copied\n"
	if err := os.WriteFile(record, []byte(interrupted), 0o600); err != nil {
		t.Fatal(err)
	}
	live := ConnInfo{Host: "127.0.0.1", Port: portB, User: "postgres", Password: testSuperPassword, DBName: "postgres"}
	if err := a.Rewind(ctx, live); !errors.As(err, &te) || te.Kind != NeedsOperator || !strings.Contains(te.Reason, "interrupted") {
		t.Fatalf("rewind of a target an interrupted pg_rewind was copying into: %v, want NeedsOperator", err)
	}
	if err := os.Remove(record); err != nil {
		t.Fatal(err)
	}
	su := ConnInfo{Host: "127.0.0.1", Port: portB, User: "postgres", Password: testSuperPassword, DBName: "postgres"}
	if err := a.Rewind(ctx, su); err != nil {
		t.Fatal(err)
	}
	if c, _ := os.ReadFile(filepath.Join(a.DataDir(), "postgresql.conf")); !strings.Contains(string(c), "port = '"+strconv.Itoa(portA)+"'") {
		t.Errorf("configuration after rewind:\n%s", c)
	}
	a.start(t, StartOptions{Standby: true, PrimaryConnInfo: replFrom(portB, "").String(), SlotName: slotA})
	sb = b.state(t)
	waitFor(t, 20*time.Second, "old primary to stream from the new one", func() (bool, string) {
		s, err := a.Query(ctx)
		if err != nil {
			return false, err.Error()
		}
		return s.InRecovery && s.ReplicationState == "streaming" && s.Timeline == 2 && s.ReplayLSN >= sb.WriteLSN, stateString(s)
	})
	if v := a.queryString(t, "SELECT string_agg(v, ',' ORDER BY v) FROM t"); v != "after promote,before" {
		t.Errorf("rows on the rewound member: %q", v)
	}
	waitFor(t, 10*time.Second, "new primary to list the rewound member", func() (bool, string) {
		s, err := b.Query(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range s.Replication {
			if r.ApplicationName == "member-a" && r.State == "streaming" {
				return true, ""
			}
		}
		return false, stateString(s)
	})

	// Repointing a running standby reloads it; the WAL receiver reconnects
	// with the new settings.
	if err := a.SetPrimary(ctx, replFrom(portB, "member-a-renamed").String(), slotA); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "receiver to pick up the new application_name", func() (bool, string) {
		s, err := b.Query(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range s.Replication {
			if r.ApplicationName == "member-a-renamed" && r.State == "streaming" {
				return true, ""
			}
		}
		return false, stateString(s)
	})
}

func stateString(s State) string {
	return fmt.Sprintf("recovery=%v tl=%d repl=%q write=%X recv=%X replay=%X senders=%+v",
		s.InRecovery, s.Timeline, s.ReplicationState, s.WriteLSN, s.ReceiveLSN, s.ReplayLSN, s.Replication)
}
