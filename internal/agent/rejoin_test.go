package agent

import (
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/postgres"
)

func TestRejoinBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := rejoinBackoff(i + 1); got != w {
			t.Errorf("rejoinBackoff(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := rejoinBackoff(1000); got != rejoinBackoffMax {
		t.Errorf("rejoinBackoff(1000) = %s", got)
	}
}

func TestRejoinRetry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	transient := postgres.Failure{Kind: postgres.Transient, Reason: "the source closed the connection"}
	var r rejoinRetry
	if r.observation() != nil {
		t.Fatal("a fresh agent reports a failure")
	}
	f := r.failed(now, "pg_rewind", "n2", transient)
	if f.NeedsOperator || f.Attempts != 1 || !f.RetryAt.Equal(now.Add(time.Second)) {
		t.Fatalf("first transient failure: %+v", f)
	}
	f = r.failed(now.Add(2*time.Second), "pg_rewind", "n2", transient)
	if f.Attempts != 2 || !f.RetryAt.Equal(now.Add(4*time.Second)) {
		t.Fatalf("second transient failure: %+v", f)
	}
	// The observation is a copy: the core cannot change the schedule.
	r.observation().RetryAt = time.Time{}
	if r.last.RetryAt.IsZero() {
		t.Fatal("observation aliases the agent's state")
	}
	r.leaderChanged()
	if r.observation() != nil {
		t.Fatal("a transient failure survives a leader change: the new leader must be tried at once")
	}

	r.failed(now, "pg_rewind", "n2", postgres.Failure{Kind: postgres.NeedsOperator, Reason: "partly rewound"})
	r.leaderChanged()
	if f := r.observation(); f == nil || !f.NeedsOperator || !f.RetryAt.IsZero() || !r.needsOperator() {
		t.Fatalf("a failure that needs an operator must stay across leader changes: %+v", f)
	}
	r.succeeded()
	if r.observation() != nil || r.needsOperator() {
		t.Fatal("success (or regent reinit) does not clear the failure")
	}
}
