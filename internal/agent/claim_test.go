package agent

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/dcs"
	"github.com/regent-ha/regent/internal/etcdtest"
)

// claimAgent is an agent with just the state stillHoldsClaim reads.
func claimAgent() *Agent {
	log := slog.New(slog.DiscardHandler)
	return &Agent{
		log:   log,
		dyn:   cluster.DefaultDynamicConfig(),
		guard: newLeaseGuard(func(string, time.Duration) {}, log),
	}
}

func TestStillHoldsClaim(t *testing.T) {
	rd := cluster.DefaultDynamicConfig().RenewDeadline()
	cases := []struct {
		name    string
		setup   func(a *Agent)
		wantErr bool
	}{
		{"fresh renewal, key on lease", func(a *Agent) {}, false},
		{"key not on lease", func(a *Agent) { a.keyOnMyLease = false }, true},
		{"no confirmed renewal", func(a *Agent) { a.lease.ConfirmedSentAt = time.Time{} }, true},
		{"renewal older than the renew deadline (process stopped)", func(a *Agent) {
			a.lease.ConfirmedSentAt = time.Now().Add(-rd - time.Millisecond)
		}, true},
		{"release unresolved", func(a *Agent) { a.releasePending = true }, true},
		{"ttl raised but the lease still has the old TTL", func(a *Agent) {
			a.dyn.TTL = 30
			a.lease.ConfirmedSentAt = time.Now().Add(-rd - time.Millisecond)
		}, true},
		{"ttl raised and the lease re-granted with it", func(a *Agent) {
			a.dyn.TTL = 30
			a.lease.TTL = 30 * time.Second
			a.lease.ConfirmedSentAt = time.Now().Add(-rd - time.Millisecond)
		}, false},
		{"suspend gap since the last check", func(a *Agent) {
			boot, ok := bootTime()
			if !ok {
				t.Skip("CLOCK_BOOTTIME not available")
			}
			// The boot-time clock ran 30 s further than the monotonic one.
			a.suspend.check(time.Now(), boot-30*time.Second)
			// Nothing to fence in this test.
			a.keyOnMyLease = false
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := claimAgent()
			a.keyOnMyLease = true
			a.lease.ConfirmedSentAt = time.Now()
			a.lease.TTL = a.dyn.TTLDuration()
			tc.setup(a)
			err := a.stillHoldsClaim()
			if (err != nil) != tc.wantErr {
				t.Fatalf("stillHoldsClaim() = %v, want error %t", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, errClaimLost) {
				t.Fatalf("error %v does not wrap errClaimLost", err)
			}
		})
	}
}

func TestSuspendGapDropsTheClaim(t *testing.T) {
	boot, ok := bootTime()
	if !ok {
		t.Skip("CLOCK_BOOTTIME not available")
	}
	a := claimAgent()
	a.lease.ConfirmedSentAt = time.Now()
	a.suspend.check(time.Now(), boot-30*time.Second)
	if err := a.stillHoldsClaim(); err == nil {
		t.Fatal("a suspend gap did not abort the action")
	}
	if !a.lease.ConfirmedSentAt.IsZero() {
		t.Fatal("the confirmed renewal survived a suspend gap")
	}
}

// TestReleaseLeaderKeyAnswers: any answer of etcd means the key is not ours
// any more, whether the delete applied or the key was someone else's; no
// answer at all is reported as unresolved after the budget.
func TestReleaseLeaderKeyAnswers(t *testing.T) {
	srv := etcdtest.Start(t)
	open := func(name string) *dcs.Client {
		c, err := dcs.Open(context.Background(), dcs.Options{
			Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second, Prefix: "/service/claim/",
			Name: name, TTL: 10 * time.Second, RequestTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := c.RefreshLease(context.Background()); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n1, n2 := open("n1"), open("n2")
	leader := func() string {
		view, err := n2.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return view.LeaderName()
	}

	if won, err := n1.AcquireLeader(ctx); err != nil || !won {
		t.Fatalf("acquire: %v %v", won, err)
	}
	if ok, err := releaseLeaderKey(ctx, n1, time.Second, time.Second); !ok || err != nil {
		t.Fatalf("release of our key: %v %v", ok, err)
	}
	if l := leader(); l != "" {
		t.Fatalf("leader key still held by %q after the release", l)
	}

	if won, err := n2.AcquireLeader(ctx); err != nil || !won {
		t.Fatalf("acquire by n2: %v %v", won, err)
	}
	if ok, err := releaseLeaderKey(ctx, n1, time.Second, time.Second); !ok || err != nil {
		t.Fatalf("release of someone else's key must be a definite answer: %v %v", ok, err)
	}
	if l := leader(); l != "n2" {
		t.Fatalf("n1's release touched n2's key: leader %q", l)
	}

	srv.Stop()
	start := time.Now()
	ok, err := releaseLeaderKey(ctx, n1, 200*time.Millisecond, time.Second)
	if ok || err == nil {
		t.Fatalf("release without etcd reported an answer: %v %v", ok, err)
	}
	if took := time.Since(start); took < 800*time.Millisecond {
		t.Fatalf("gave up after %v, before the budget", took)
	}
}
