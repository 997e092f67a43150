package agent

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// guardConfig has a renew deadline of 100 ms: TTL 1 s minus 10 % drift,
// minus fence 0.5 s, minus margin 0.3 s.
func guardConfig() cluster.DynamicConfig {
	c := cluster.DefaultDynamicConfig()
	c.TTL, c.ClockDrift, c.FenceTimeout, c.SafetyMargin = 1, 0.1, 0.5, 0.3
	return c
}

func TestLeaseGuardFencesAtTheDeadline(t *testing.T) {
	fired := make(chan time.Duration, 1)
	g := newLeaseGuard(func(reason string, fenceTimeout time.Duration) { fired <- fenceTimeout }, slog.Default())
	sent := time.Now()
	g.arm(true, sent, guardConfig())
	select {
	case ft := <-fired:
		if since := time.Since(sent); since < guardConfig().RenewDeadline() {
			t.Fatalf("fenced after %v, before the renew deadline %v", since, guardConfig().RenewDeadline())
		}
		if ft != 500*time.Millisecond {
			t.Fatalf("fence timeout %v, want 500ms", ft)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("guard did not fence")
	}
}

// A renewal confirmed before the deadline re-arms the guard: the earlier
// deadline must not fire any more.
func TestLeaseGuardRearmedByRenewalDoesNotFence(t *testing.T) {
	var fired atomic.Int32
	g := newLeaseGuard(func(string, time.Duration) { fired.Add(1) }, slog.Default())
	cfg := cluster.DefaultDynamicConfig() // R = 3.45 s
	first := time.Now().Add(-cfg.RenewDeadline() + 300*time.Millisecond)
	g.arm(true, first, cfg) // due in 300 ms
	g.arm(true, time.Now(), cfg)
	defer g.disarm()
	// Wait until well past the first deadline (the property under test is
	// that nothing happens at that time), far from the second.
	time.Sleep(time.Until(first.Add(cfg.RenewDeadline() + time.Second)))
	if n := fired.Load(); n != 0 {
		t.Fatalf("guard fenced %d times at the deadline of a renewal that a later one replaced", n)
	}
}

func TestLeaseGuardDisarmedWithoutKey(t *testing.T) {
	var fired atomic.Int32
	g := newLeaseGuard(func(string, time.Duration) { fired.Add(1) }, slog.Default())
	g.arm(false, time.Now().Add(-time.Hour), guardConfig())
	time.Sleep(2 * guardConfig().RenewDeadline())
	if fired.Load() != 0 {
		t.Fatal("guard fenced a member that holds no key")
	}
}
