package slots

import (
	"reflect"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

func phys(name string, active bool, restart int64) Slot {
	return Slot{Name: name, Type: cluster.SlotPhysical, Active: active, RestartLSN: restart}
}

func leaderInput(existing ...Slot) Input {
	return Input{Self: "n1", Primary: true, Members: []string{"n1", "n2", "n3"},
		Config: cluster.DefaultDynamicConfig(), Existing: existing}
}

func TestForeignSlotsAreLeftAlone(t *testing.T) {
	in := leaderInput(phys("n2", true, 100), phys("barman_receivewal", false, 50),
		Slot{Name: "debezium", Type: cluster.SlotLogical, Database: "postgres", Plugin: "pgoutput"})
	p := Decide(in)
	if !reflect.DeepEqual(p.Create, []string{"n3"}) || len(p.Drop) != 0 {
		t.Fatalf("plan %+v: want n3 created and nothing dropped", p)
	}
}

func TestOwnedSlotsDroppedUnlessIgnored(t *testing.T) {
	in := leaderInput(phys("n2", false, 100), phys("n3", false, 100), phys("n1", false, 100), phys("old", false, 1))
	in.Expired = []string{"old"}
	p := Decide(in)
	if !reflect.DeepEqual(p.Drop, []string{"n1", "old"}) || !reflect.DeepEqual(p.Forget, []string{"old"}) {
		t.Fatalf("plan %+v: want own slot n1 and expired old dropped", p)
	}
	in.Config.IgnoreSlots = []cluster.IgnoreSlot{{Name: "old", Type: cluster.SlotPhysical}}
	if p := Decide(in); !reflect.DeepEqual(p.Drop, []string{"n1"}) {
		t.Fatalf("ignore_slots: drop %v, want only n1", p.Drop)
	}
	in.Config.IgnoreSlots = []cluster.IgnoreSlot{{Name: "old", Type: cluster.SlotLogical}}
	if p := Decide(in); !reflect.DeepEqual(p.Drop, []string{"n1", "old"}) {
		t.Fatalf("ignore_slots of another type matched: drop %v", p.Drop)
	}
	in.Config.PostgreSQL.UseSlots = false
	if p := Decide(in); len(p.Create) != 0 || !reflect.DeepEqual(p.Drop, []string{"n1", "n2", "n3", "old"}) {
		t.Fatalf("use_slots off: %+v", p)
	}
}

func TestMemberSlotsTTL(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ttl := 30 * time.Minute
	var r Retention
	r.Observe(t0, []string{"n1", "n2", "n3"}, nil)
	// n3's member key expired: its slot stays for member_slots_ttl.
	for _, now := range []time.Time{t0.Add(time.Second), t0.Add(ttl - time.Second)} {
		r.Observe(now, []string{"n1", "n2"}, nil)
		in := leaderInput(phys("n2", true, 100), phys("n3", false, 90))
		in.Members = []string{"n1", "n2"}
		in.Retained, in.Expired = r.Retained(now, ttl), r.Expired(now, ttl)
		if p := Decide(in); len(p.Drop) != 0 || len(p.Create) != 0 {
			t.Fatalf("at %v: plan %+v, want n3 kept", now.Sub(t0), p)
		}
	}
	now := t0.Add(ttl)
	r.Observe(now, []string{"n1", "n2"}, nil)
	in := leaderInput(phys("n2", true, 100), phys("n3", false, 90))
	in.Members = []string{"n1", "n2"}
	in.Retained, in.Expired = r.Retained(now, ttl), r.Expired(now, ttl)
	p := Decide(in)
	if !reflect.DeepEqual(p.Drop, []string{"n3"}) || !reflect.DeepEqual(p.Forget, []string{"n3"}) {
		t.Fatalf("after ttl: %+v, want n3 dropped and forgotten", p)
	}
	r.Forget(p.Forget)
	if got := r.Expired(now, ttl); len(got) != 0 {
		t.Fatalf("expired after forget: %v", got)
	}
	// A member that comes back within the ttl keeps its slot throughout.
	r.Observe(now, []string{"n1", "n2", "n4"}, nil)
	r.Observe(now.Add(ttl-time.Second), []string{"n1", "n2", "n4"}, nil)
	if got := r.Retained(now.Add(ttl+time.Minute), ttl); !reflect.DeepEqual(got, []string{"n1", "n2", "n4"}) {
		t.Fatalf("retained %v", got)
	}
}

func TestNewLeaderAdoptsRetainSlots(t *testing.T) {
	// A replica refreshes the names the leader retains; once it leads,
	// they last member_slots_ttl from its last sight of the old leader's
	// list.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ttl := 10 * time.Minute
	var r Retention
	r.Observe(t0, []string{"n2"}, []string{"n1", "n2", "n3"})
	now := t0.Add(ttl - time.Second)
	r.Observe(now, []string{"n2"}, nil)
	if got := r.Retained(now, ttl); !reflect.DeepEqual(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("retained %v", got)
	}
	if got := r.Expired(t0.Add(ttl), ttl); !reflect.DeepEqual(got, []string{"n1", "n3"}) {
		t.Fatalf("expired %v", got)
	}
}

func TestReplicaKeepsAndAdvancesCopies(t *testing.T) {
	in := Input{Self: "n2", Members: []string{"n1", "n2", "n3"}, Config: cluster.DefaultDynamicConfig(),
		StatusRetain: []string{"n4"},
		Positions:    map[string]int64{"n1": 500, "n3": 400, "n4": 10, "keep": 300},
		Existing:     []Slot{phys("n3", false, 100), phys("n4", false, 50), phys("keep", false, 300), phys("n2", false, 1)}}
	in.Config.Slots = map[string]*cluster.PermanentSlot{"keep": nil, "arch": {Type: "physical"},
		"cdc": {Database: "postgres", Plugin: "pgoutput"}}
	p := Decide(in)
	if !reflect.DeepEqual(p.Create, []string{"arch", "n1"}) || !reflect.DeepEqual(p.Advance, map[string]int64{"n3": 400}) ||
		!reflect.DeepEqual(p.Drop, []string{"n2"}) || len(p.CreateLogical) != 0 {
		t.Fatalf("replica plan %+v", p)
	}
	in.NoFailover = true
	if p := Decide(in); len(p.Create) != 0 || !reflect.DeepEqual(p.Drop, []string{"keep", "n2", "n3", "n4"}) {
		t.Fatalf("nofailover replica plan %+v", p)
	}
}

func TestLeaderPermanentSlots(t *testing.T) {
	in := leaderInput(phys("n2", true, 1), phys("n3", true, 1),
		Slot{Name: "cdc", Type: cluster.SlotLogical, Database: "postgres", Plugin: "pgoutput"})
	in.Config.Slots = map[string]*cluster.PermanentSlot{
		"arch": nil, "cdc": {Type: "logical", Database: "postgres", Plugin: "pgoutput"},
		"cdc2": {Database: "app", Plugin: "test_decoding"}, "Bad-Name": nil, "n2": {Database: "d", Plugin: "p"},
		"half": {Type: "logical", Database: "d"}, "weird": {Type: "ephemeral"}}
	p := Decide(in)
	if !reflect.DeepEqual(p.Create, []string{"arch"}) ||
		!reflect.DeepEqual(p.CreateLogical, []LogicalSlot{{Name: "cdc2", Database: "app", Plugin: "test_decoding"}}) ||
		len(p.Advance)+len(p.Drop) != 0 || len(p.Problems) != 4 {
		t.Fatalf("leader plan %+v", p)
	}
}

func logicalSlot(name string, confirmed int64) Slot {
	return Slot{Name: name, Type: cluster.SlotLogical, Database: "postgres", Plugin: "test_decoding",
		RestartLSN: confirmed, ConfirmedFlushLSN: confirmed}
}

// replicaLogicalInput is replica n2 of leader n1 with a permanent logical
// slot cdc at 500 on the leader and replay at 600.
func replicaLogicalInput(existing ...Slot) Input {
	in := leaderInput(existing...)
	in.Self, in.Primary = "n2", false
	in.ServerVersion, in.ReplayLSN, in.FeedbackReady = 150000, 600, true
	in.Positions = map[string]int64{"cdc": 500, "n1": 600, "n3": 600}
	in.Config.Slots = map[string]*cluster.PermanentSlot{"cdc": {Type: cluster.SlotLogical, Database: "postgres", Plugin: "test_decoding"}}
	return in
}

func TestLogicalSlotCopies(t *testing.T) {
	cdc := LogicalSlot{Name: "cdc", Database: "postgres", Plugin: "test_decoding"}
	tests := []struct {
		name    string
		in      Input
		copy    []LogicalSlot
		advance map[string]int64
		drop    []string
		create  []LogicalSlot
		native  bool
	}{
		{name: "a replica copies a missing permanent logical slot from the leader",
			in: replicaLogicalInput(), copy: []LogicalSlot{cdc}},
		{name: "and advances its copy to the leader's confirmed position",
			in: replicaLogicalInput(logicalSlot("cdc", 300)), advance: map[string]int64{"cdc": 500}},
		{name: "but never past its own replay position",
			in:      func() Input { in := replicaLogicalInput(logicalSlot("cdc", 300)); in.ReplayLSN = 400; return in }(),
			advance: map[string]int64{"cdc": 400}},
		{name: "no copy without hot_standby_feedback and an xmin on the leader's slot",
			in: func() Input { in := replicaLogicalInput(logicalSlot("cdc", 300)); in.FeedbackReady = false; return in }()},
		{name: "nothing before the leader publishes the slot's position",
			in: func() Input { in := replicaLogicalInput(); delete(in.Positions, "cdc"); return in }()},
		{name: "a demoted primary's slot ahead of the leader's is dropped, to be copied again",
			in: replicaLogicalInput(logicalSlot("cdc", 700)), drop: []string{"cdc"}},
		{name: "a copy with another plugin is dropped",
			in: func() Input {
				s := logicalSlot("cdc", 300)
				s.Plugin = "pgoutput"
				return replicaLogicalInput(s)
			}(), drop: []string{"cdc"}},
		{name: "an active logical slot is never touched",
			in: func() Input { s := logicalSlot("cdc", 700); s.Active = true; return replicaLogicalInput(s) }()},
		{name: "a foreign logical slot on a replica is left alone",
			in: replicaLogicalInput(logicalSlot("cdc", 300), logicalSlot("debezium", 100)), advance: map[string]int64{"cdc": 500}},
		{name: "a nostream replica keeps no logical copy and drops its stale one",
			in:   func() Input { in := replicaLogicalInput(logicalSlot("cdc", 300)); in.NoStream = true; return in }(),
			drop: []string{"cdc"}},
		{name: "a nofailover replica keeps no logical copy",
			in: func() Input { in := replicaLogicalInput(); in.NoFailover = true; return in }()},
		{name: "PostgreSQL 17 leader: a failover slot",
			in: func() Input {
				in := replicaLogicalInput()
				in.Self, in.Primary, in.ServerVersion = "n1", true, 170000
				return in
			}(), create: []LogicalSlot{{Name: "cdc", Database: "postgres", Plugin: "test_decoding", Failover: true}}},
		{name: "PostgreSQL 15 leader: a plain logical slot",
			in: func() Input {
				in := replicaLogicalInput()
				in.Self, in.Primary = "n1", true
				return in
			}(), create: []LogicalSlot{cdc}},
		{name: "PostgreSQL 17 replica: no copy, sync_replication_slots keeps it",
			in: func() Input { in := replicaLogicalInput(); in.ServerVersion = 170000; return in }(), native: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Decide(tt.in)
			if tt.advance == nil {
				tt.advance = map[string]int64{}
			}
			if !reflect.DeepEqual(p.CopyLogical, tt.copy) || !reflect.DeepEqual(p.AdvanceLogical, tt.advance) ||
				!reflect.DeepEqual(p.Drop, tt.drop) || !reflect.DeepEqual(p.CreateLogical, tt.create) ||
				p.SyncReplicationSlots != tt.native {
				t.Fatalf("plan %+v\nwant copy %v advance %v drop %v create %v native %v", p, tt.copy, tt.advance, tt.drop, tt.create, tt.native)
			}
		})
	}
}

func TestNoStream(t *testing.T) {
	// The leader keeps no slot for a nostream member and drops its old one.
	in := leaderInput(phys("n2", true, 100), phys("n3", false, 100))
	in.NoStreamMembers = []string{"n3"}
	if p := Decide(in); len(p.Create) != 0 || !reflect.DeepEqual(p.Drop, []string{"n3"}) {
		t.Fatalf("leader with nostream n3: %+v, want n3 dropped and nothing created", p)
	}
	// A nostream replica keeps no copies of the members' slots.
	in = leaderInput(phys("n1", false, 100), phys("n3", false, 100))
	in.Self, in.Primary, in.NoStream = "n2", false, true
	p := Decide(in)
	if len(p.Create) != 0 || !reflect.DeepEqual(p.Drop, []string{"n1", "n3"}) || p.Reasons["n1"] != "a nostream replica keeps no slot copies" {
		t.Fatalf("nostream replica: %+v", p)
	}
}
