package ha

import (
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

func TestFailsafeMode(t *testing.T) {
	renew := newWorld("n1").o.Config.RenewDeadline()
	outage := func(f func(o *Observation)) Observation {
		return newWorld("n1").with(func(o *Observation) {
			o.Config.FailsafeMode = true
			o.Cluster = nil
			o.DCSError = "etcdserver: no leader"
			o.Lease.ConfirmedSentAt = t0.Add(-2 * renew) // the lease alone has run out
			f(o)
		})
	}
	if d := Decide(outage(func(o *Observation) { o.Failsafe.ConfirmedAt = t0.Add(-time.Second) })); !d.Is(LeaderHousekeeping) {
		t.Fatalf("all members acknowledged: %s (%s), want to keep leading", d.Summary(), d.Reason)
	}
	if d := Decide(outage(func(o *Observation) { o.Failsafe.ConfirmedAt = t0.Add(-renew) })); !d.Is(Fence) {
		t.Fatalf("acknowledgements too old: %s (%s), want fence", d.Summary(), d.Reason)
	}
	if d := Decide(outage(func(o *Observation) {})); !d.Is(Fence) {
		t.Fatalf("no acknowledgement: %s (%s), want fence", d.Summary(), d.Reason)
	}
	if d := Decide(outage(func(o *Observation) {
		o.Config.FailsafeMode = false
		o.Failsafe.ConfirmedAt = t0
	})); !d.Is(Fence) {
		t.Fatalf("failsafe_mode off: %s (%s), want fence", d.Summary(), d.Reason)
	}
	// A replica that acknowledged the leader recently does not race when
	// the DCS comes back without a leader key.
	r := newWorld("n2").with(func(o *Observation) {
		noLeader(o)
		o.Config.FailsafeMode = true
		o.Failsafe = Failsafe{HeardAt: t0.Add(-time.Second), Leader: "n1"}
	})
	if d := Decide(r); !d.Is(Wait) || !strings.Contains(d.Reason, "failsafe") {
		t.Fatalf("replica that acknowledged the leader: %s (%s), want to wait", d.Summary(), d.Reason)
	}
	r.Failsafe.HeardAt = t0.Add(-r.Config.TTLDuration())
	if d := Decide(r); !d.Is(ProbePeers) {
		t.Fatalf("replica whose acknowledgement is older than ttl: %s (%s), want to race", d.Summary(), d.Reason)
	}
}

func TestRequiredWatchdogMissing(t *testing.T) {
	o := newWorld("n2").with(func(o *Observation) {
		noLeader(o)
		o.Self.WatchdogMissing = true
	})
	if d := Decide(o); !d.Is(Wait) || !strings.Contains(d.Reason, "watchdog") {
		t.Fatalf("replica without its required watchdog: %s (%s), want to wait", d.Summary(), d.Reason)
	}
}

// After pre_promote aborted a promotion the member stays out of the race
// (also a requested switchover to it) until the agent clears the back-off.
func TestPrePromoteBackoff(t *testing.T) {
	const why = "pre_promote script failed 1s ago; not racing for one ttl"
	o := newWorld("n2").with(func(o *Observation) {
		noLeader(o)
		o.Self.PrePromoteBackoff = why
	})
	if d := Decide(o); !d.Is(Wait) || !d.PromotionRefused || !strings.Contains(d.Reason, why) {
		t.Fatalf("replica in pre_promote back-off: %s (%s), want to wait", d.Summary(), d.Reason)
	}
	o.Self.PrePromoteBackoff = ""
	if d := Decide(o); !d.Is(ProbePeers) {
		t.Fatalf("after the back-off: %s (%s), want to race", d.Summary(), d.Reason)
	}
	s := switchoverWorld("n2", &cluster.Failover{Member: "n2"})
	noLeader(&s)
	s.Self.PrePromoteBackoff = why
	if d := Decide(s); d.Is(AcquireLeader) || !strings.Contains(d.Reason, why) {
		t.Fatalf("switchover candidate in back-off: %s (%s), want no race", d.Summary(), d.Reason)
	}
}
