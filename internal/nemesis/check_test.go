package nemesis

import (
	"testing"
	"time"
)

var base = time.Unix(1_800_000_000, 0)

func ack(id int64, member string, tl int, serverMs, invokeMs, completeMs int) Op {
	return Op{ID: id, Member: member, Timeline: tl, Outcome: Acked,
		ServerAt: base.Add(time.Duration(serverMs) * time.Millisecond),
		Invoke:   time.Duration(invokeMs) * time.Millisecond, Complete: time.Duration(completeMs) * time.Millisecond}
}

func ids(v ...int64) map[int64]bool {
	m := map[int64]bool{}
	for _, id := range v {
		m[id] = true
	}
	return m
}

func TestCheckCleanFailover(t *testing.T) {
	ops := []Op{
		ack(1, "m1", 1, 100, 95, 105),
		ack(2, "m1", 1, 200, 195, 205),
		{ID: 3, Member: "m1", Outcome: Unknown, Invoke: 300 * time.Millisecond, Complete: 2300 * time.Millisecond},
		{ID: 4, Member: "m2", Outcome: Failed, Invoke: 400 * time.Millisecond, Complete: 401 * time.Millisecond},
		ack(5, "m2", 2, 5000, 4995, 5005),
		ack(6, "m2", 2, 5100, 5095, 5105),
	}
	v := Check(ops, nil, ids(1, 2, 3, 5, 6), nil, 250*time.Millisecond, 6*time.Second)
	if v.Acked != 4 || v.AckedLost != 0 || v.Unknown != 1 || v.Recovered != 1 {
		t.Errorf("counts = %+v", v)
	}
	if v.MaxWritablePrimaries != 1 {
		t.Errorf("MaxWritablePrimaries = %d, want 1", v.MaxWritablePrimaries)
	}
	if !v.HasTransition || v.DualWriteOverlap != -4800*time.Millisecond {
		t.Errorf("DualWriteOverlap = %v (transition %v), want -4.8s", v.DualWriteOverlap, v.HasTransition)
	}
	// Acks completed at 0.205 s and 5.005 s; the window starts at 0.25 s.
	if v.WriteGap != 4755*time.Millisecond {
		t.Errorf("WriteGap = %v, want 4.755s", v.WriteGap)
	}
}

func TestCheckCatchesLostAndDualWrites(t *testing.T) {
	ops := []Op{
		ack(1, "m1", 1, 100, 95, 105),
		ack(2, "m2", 2, 150, 145, 155), // m2 writes while m1 still does
		ack(3, "m1", 1, 200, 195, 205),
	}
	v := Check(ops, nil, ids(1, 2), nil, 0, time.Second)
	if v.AckedLost != 1 {
		t.Errorf("AckedLost = %d, want 1", v.AckedLost)
	}
	if v.MaxWritablePrimaries != 2 {
		t.Errorf("MaxWritablePrimaries = %d, want 2", v.MaxWritablePrimaries)
	}
	if v.DualWriteOverlap <= 0 {
		t.Errorf("DualWriteOverlap = %v, want > 0", v.DualWriteOverlap)
	}
}

func TestCheckLateAckAndVisibleThenLost(t *testing.T) {
	ops := []Op{
		// m1 committed at 100 ms but the client heard only at 6 s, after
		// m2's first acknowledgement at 5 s.
		ack(1, "m1", 1, 100, 95, 6000),
		ack(2, "m2", 2, 5000, 4995, 5005),
	}
	v := Check(ops, nil, ids(2), ids(1, 2, 9), 0, 7*time.Second)
	if v.LateAcks != 1 {
		t.Errorf("LateAcks = %d, want 1", v.LateAcks)
	}
	if v.MaxWritablePrimaries != 1 {
		t.Errorf("MaxWritablePrimaries = %d, want 1 (the commits do not overlap)", v.MaxWritablePrimaries)
	}
	if v.VisibleThenLost != 2 {
		t.Errorf("VisibleThenLost = %d, want 2", v.VisibleThenLost)
	}
}

func TestRoleOverlap(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	samples := []Sample{
		{At: ms(0), Member: "m1", Writable: true, Primary200: true},
		{At: ms(0), Member: "m2"},
		{At: ms(100), Member: "m2", Writable: true},
		{At: ms(300), Member: "m1"},
		{At: ms(400), Member: "m2", Writable: true, Primary200: true},
	}
	w, p := roleOverlap(samples)
	if w != ms(200) || p != 0 {
		t.Errorf("roleOverlap = %v, %v; want 200ms, 0", w, p)
	}
}
