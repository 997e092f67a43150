package cluster

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestTagsJSONRoundTrip(t *testing.T) {
	prio := 2
	in := Tags{NoFailover: true, SyncPriority: &prio, NoStream: true,
		Custom: map[string]any{"dc": "east", "rack": int64(3), "ssd": true, "weight": 1.5, "none": nil}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"dc":"east","nofailover":true,"none":null,"nostream":true,"rack":3,"ssd":true,"sync_priority":2,"weight":1.5}`
	if string(b) != want {
		t.Errorf("marshal = %s, want %s", b, want)
	}
	var out Tags
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip = %#v, want %#v", out, in)
	}
	// A pointer (Member.Tags) encodes the same way.
	m := Member{Tags: &in}
	mb, _ := json.Marshal(&m)
	var back Member
	if err := json.Unmarshal(mb, &back); err != nil || !reflect.DeepEqual(*back.Tags, in) {
		t.Errorf("member tags = %s -> %+v (%v)", mb, back.Tags, err)
	}
}

func TestTagsJSONWithoutCustomIsUnchanged(t *testing.T) {
	b, _ := json.Marshal(Tags{NoSync: true})
	if string(b) != `{"nosync":true}` {
		t.Errorf("marshal = %s", b)
	}
	b, _ = json.Marshal(Tags{})
	if string(b) != `{}` {
		t.Errorf("marshal of no tags = %s", b)
	}
}

// Patroni publishes tags as written in its YAML; odd values must neither
// fail the decode of the member key nor be lost.
func TestTagsUnmarshalLenient(t *testing.T) {
	var tg Tags
	in := `{"nofailover":"yes","nosync":0,"failover_priority":"3","sync_priority":"x","replicatefrom":5,"zone":{"a":1}}`
	if err := json.Unmarshal([]byte(in), &tg); err != nil {
		t.Fatal(err)
	}
	if !tg.NoFailover || tg.NoSync || tg.FailoverPriority == nil || *tg.FailoverPriority != 3 ||
		tg.SyncPriority != nil || tg.ReplicateFrom != "" {
		t.Errorf("tags = %+v", tg)
	}
	if !reflect.DeepEqual(tg.Custom, map[string]any{"zone": map[string]any{"a": json.Number("1")}}) {
		t.Errorf("custom = %#v", tg.Custom)
	}
}

func TestSyncPriorityValue(t *testing.T) {
	zero, five := 0, 5
	tests := []struct {
		tags Tags
		want int
	}{
		{Tags{}, 1},
		{Tags{SyncPriority: &five}, 5},
		{Tags{SyncPriority: &zero}, 0},
		{Tags{NoSync: true, SyncPriority: &five}, 0},
	}
	for _, tt := range tests {
		if got := tt.tags.SyncPriorityValue(); got != tt.want {
			t.Errorf("%+v: SyncPriorityValue = %d, want %d", tt.tags, got, tt.want)
		}
	}
}

func TestTagFilterValue(t *testing.T) {
	tg := Tags{Custom: map[string]any{"dc": "East", "ssd": true, "rack": 3, "big": int64(7),
		"w": 2.0, "f": 1.5, "tiny": 1e-5, "huge": 1e16, "none": nil}}
	tests := []struct {
		key, want string
		ok        bool
	}{
		{"dc", "East", true}, // strings as they are
		{"ssd", "true", true},
		{"rack", "3", true},
		{"big", "7", true},
		{"w", "2.0", true},
		{"f", "1.5", true},
		{"tiny", "1e-05", true},
		{"huge", "1e+16", true},
		{"none", "", false}, // Patroni: a None tag is not registered
		{"missing", "", false},
		{"nostream", "false", true},
		{"sync_priority", "1", true},
	}
	for _, tt := range tests {
		if v, ok := tg.TagFilterValue(tt.key); v != tt.want || ok != tt.ok {
			t.Errorf("TagFilterValue(%q) = %q, %v; want %q, %v", tt.key, v, ok, tt.want, tt.ok)
		}
	}
}

func TestTagsIsZero(t *testing.T) {
	if !(Tags{}).IsZero() || (Tags{Custom: map[string]any{"dc": "x"}}).IsZero() || (Tags{NoStream: true}).IsZero() {
		t.Error("IsZero wrong")
	}
}
