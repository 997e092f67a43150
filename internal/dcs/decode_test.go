package dcs

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

func TestDecodeFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in             string
		leader, member string
		none, bad      bool
	}{
		{in: ``, none: true},
		{in: `{}`, none: true},
		{in: `{"leader":"","member":""}`, none: true},
		{in: `{"leader":"a","member":"b","scheduled_at":"2026-01-01T00:00:00+00:00"}`, leader: "a", member: "b"},
		{in: `a:b`, leader: "a", member: "b"},
		{in: `{"leader":`, bad: true},
		{in: `garbage`, bad: true},
	} {
		f, err := decodeFailover([]byte(tc.in))
		switch {
		case tc.bad:
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.none:
			if f != nil {
				t.Errorf("%q: %+v, want nil", tc.in, f)
			}
		case f == nil || f.Leader != tc.leader || f.Member != tc.member:
			t.Errorf("%q: %+v, want %s -> %s", tc.in, f, tc.leader, tc.member)
		}
	}
}

func TestDecodeStatus(t *testing.T) {
	t.Parallel()
	st, err := decodeStatus([]byte(`{"optime":5,"slots":{"a":3},"retain_slots":["a"]}`))
	if err != nil || st.Optime != 5 || st.Slots["a"] != 3 || len(st.RetainSlots) != 1 {
		t.Errorf("json status = %+v, %v", st, err)
	}
	if st, err := decodeStatus([]byte("42")); err != nil || st.Optime != 42 {
		t.Errorf("bare optime = %+v, %v", st, err)
	}
	if _, err := decodeStatus([]byte("{")); err == nil {
		t.Error("corrupt status decoded")
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	if got := Key("/service/demo/", KeyLeader); got != "/service/demo/leader" {
		t.Errorf("Key = %q", got)
	}
	if got := Key("/service/demo", KeyLeader); got != "/service/demo/leader" {
		t.Errorf("Key without slash = %q", got)
	}
	if got := MemberKey("/service/demo/", "n1"); got != "/service/demo/members/n1" {
		t.Errorf("MemberKey = %q", got)
	}
	if got := Prefix("", "demo"); got != "/service/demo/" {
		t.Errorf("Prefix default = %q", got)
	}
	if got := Prefix("/ns/", "/demo"); got != "/ns/demo/" {
		t.Errorf("Prefix collapse = %q", got)
	}
	if got := scopeOf("/service/demo/"); got != "demo" {
		t.Errorf("scopeOf = %q", got)
	}
}

func TestTTLSecondsRoundsUp(t *testing.T) {
	t.Parallel()
	for in, want := range map[time.Duration]int64{0: 0, time.Second: 1, 1500 * time.Millisecond: 2, 30 * time.Second: 30} {
		if got := ttlSeconds(in); got != want {
			t.Errorf("ttlSeconds(%v) = %d, want %d", in, got, want)
		}
	}
}

func TestRelevant(t *testing.T) {
	t.Parallel()
	c := &Client{prefix: "/service/demo/"}
	for key, want := range map[string]bool{
		"/service/demo/leader":        true,
		"/service/demo/config":        true,
		"/service/demo/failover":      true,
		"/service/demo/sync":          true,
		"/service/demo/initialize":    true,
		"/service/demo/failsafe":      true,
		"/service/demo/status":        false, // read at the next loop_wait tick
		"/service/demo/members/n1":    false, // read at the next loop_wait tick
		"/service/demo/history":       false,
		"/service/demo2/leader":       false,
		"/service/demo/optime/leader": false,
	} {
		if got := c.relevant(key); got != want {
			t.Errorf("relevant(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestSyncKeyPatroniForm: the sync key is Patroni's JSON, with the quorum
// field of synchronous_mode quorum.
func TestSyncKeyPatroniForm(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(cluster.SyncState{Leader: "n1", Members: []string{"n3", "n2"}, Quorum: 1})
	if err != nil || string(b) != `{"leader":"n1","sync_standby":"n2,n3","quorum":1}` {
		t.Fatalf("encoded %s, %v", b, err)
	}
	var st cluster.SyncState
	if err := json.Unmarshal([]byte(`{"leader":"a","sync_standby":"b, c","quorum":2}`), &st); err != nil ||
		st.Leader != "a" || len(st.Members) != 2 || st.Members[1] != "c" || st.Quorum != 2 || st.ReadQuorum() != 3 {
		t.Fatalf("decoded %+v, %v", st, err)
	}
	// synchronous_mode on: no quorum field, and every member alone suffices.
	b, _ = json.Marshal(cluster.SyncState{Leader: "n1", Members: []string{"n2"}})
	if string(b) != `{"leader":"n1","sync_standby":"n2"}` {
		t.Fatalf("encoded %s", b)
	}
}
