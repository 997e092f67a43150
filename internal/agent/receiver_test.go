package agent

import (
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/postgres"
)

func TestReceiverWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 13, 19, 3, 0, time.UTC)
	window := time.Second
	streaming := func(start, recv int64) postgres.State {
		return postgres.State{InRecovery: true, ReplicationState: "streaming", ReceiveStartLSN: start, ReceiveLSN: recv, ReplayLSN: start}
	}
	var w receiverWatch
	steps := []struct {
		name string
		st   postgres.State
		at   time.Duration
		want bool
	}{
		// The demo's fresh clone: the receiver started at 0/3000000 and has
		// not yet received the segment the leader switched to.
		{"just started, nothing received", streaming(0x3000000, 0x3000000), 12 * time.Millisecond, true},
		{"still nothing received", streaming(0x3000000, 0x3000000), 112 * time.Millisecond, true},
		{"received the leader's WAL", streaming(0x3000000, 0x4000000), 212 * time.Millisecond, false},
		{"restarted receiver, new start", streaming(0x4000000, 0x4000000), 2 * time.Second, true},
		{"idle leader: nothing to receive past the window", streaming(0x4000000, 0x4000000), 3100 * time.Millisecond, false},
		{"not streaming", postgres.State{InRecovery: true, ReplicationState: "in archive recovery"}, 4 * time.Second, false},
		{"streaming again at the same start counts as new", streaming(0x4000000, 0x4000000), 5 * time.Second, true},
		{"primary", postgres.State{WriteLSN: 0x5000000}, 6 * time.Second, false},
	}
	for _, s := range steps {
		if got := w.observe(s.st, t0.Add(s.at), window); got != s.want {
			t.Errorf("%s: observe = %v, want %v", s.name, got, s.want)
		}
	}
}
