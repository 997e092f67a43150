package cluster

import "testing"

func TestPositionAndLag(t *testing.T) {
	lsn := func(v int64) *int64 { return &v }
	c := &Cluster{
		Status: Status{Optime: 0x40222E8, Slots: map[string]int64{"big_name": 0x40222E8, "m3": 0x1000}},
		Members: map[string]*Member{
			"Big-Name": {Name: "Big-Name", XLogLocation: lsn(0x3000000)},
			"m3":       {Name: "m3", XLogLocation: lsn(0x4000000)},
			"m4":       {Name: "m4"},
			"m5":       {Name: "m5", XLogLocation: lsn(0x4000000)},
		},
	}
	tests := []struct {
		name     string
		pos, lag int64
		ok       bool
	}{
		{"Big-Name", 0x40222E8, 0, true}, // the leader's slot, taken with the optime, is further
		{"m3", 0x4000000, 0x222E8, true}, // a slot behind the key does not lower it
		{"m4", 0, 0, false},              // nothing known
		{"m5", 0x4000000, 0x222E8, true}, // no slot: the key alone
	}
	for _, tt := range tests {
		m := c.Members[tt.name]
		pos, ok := c.Position(m)
		if pos != tt.pos || ok != tt.ok {
			t.Errorf("Position(%s) = %#x, %v; want %#x, %v", tt.name, pos, ok, tt.pos, tt.ok)
		}
		lag, ok := c.Lag(m)
		if lag != tt.lag || ok != tt.ok {
			t.Errorf("Lag(%s) = %d, %v; want %d, %v", tt.name, lag, ok, tt.lag, tt.ok)
		}
	}
	c.Status.Optime = 0
	if _, ok := c.Lag(c.Members["m5"]); ok {
		t.Error("Lag known without an optime")
	}
	if SlotName("Big-Name.x") != "big_name_x" {
		t.Errorf("SlotName = %q", SlotName("Big-Name.x"))
	}
}
