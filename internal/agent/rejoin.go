package agent

import (
	"time"

	"github.com/regent-ha/regent/internal/ha"
	"github.com/regent-ha/regent/internal/postgres"
)

// Rejoin retries. A failed pg_rewind, pg_basebackup or start of the data
// directory they produced is classified by package postgres. A transient
// failure (the source was down, restarting, fenced or closed the
// connection; the data directory is unchanged) is retried after a backoff
// of 1 s doubling to 30 s, and at once when the leader or its timeline
// changes; the core then runs it against the current leader. A failure that
// retrying cannot fix stays until an operator re-clones the member
// (`regent reinit`), or until the core re-clones it because
// remove_data_directory_on_rewind_failure allows it. No data directory is
// ever moved or deleted for a transient failure.

// Bounds of the rejoin backoff.
const (
	rejoinBackoffMin = time.Second
	rejoinBackoffMax = 30 * time.Second
)

// rejoinBackoff is the wait after the n-th consecutive transient failure.
func rejoinBackoff(n int) time.Duration {
	d := rejoinBackoffMin
	for i := 1; i < n && d < rejoinBackoffMax; i++ {
		d *= 2
	}
	return min(d, rejoinBackoffMax)
}

// rejoinRetry is the agent's record of the last failed rejoin step. Its
// methods take the time explicitly; only the loop goroutine uses it.
type rejoinRetry struct {
	last *ha.RejoinFailure
}

// failed records that step against source failed at now with f, and
// returns the record the core will see.
func (r *rejoinRetry) failed(now time.Time, step, source string, f postgres.Failure) *ha.RejoinFailure {
	n := 1
	if r.last != nil {
		n = r.last.Attempts + 1
	}
	rf := &ha.RejoinFailure{Step: step, Source: source, NeedsOperator: f.Kind == postgres.NeedsOperator,
		Reason: f.Reason, Attempts: n}
	if !rf.NeedsOperator {
		rf.RetryAt = now.Add(rejoinBackoff(n))
	}
	r.last = rf
	return rf
}

// succeeded forgets the failures: the member rejoined.
func (r *rejoinRetry) succeeded() { r.last = nil }

// leaderChanged gives a transient failure a new chance at once: the next
// attempt runs against the new leader or timeline. A failure that needs an
// operator stays: it does not depend on the source.
func (r *rejoinRetry) leaderChanged() {
	if r.last != nil && !r.last.NeedsOperator {
		r.last = nil
	}
}

// needsOperator reports whether the member waits for `regent reinit`.
func (r *rejoinRetry) needsOperator() bool { return r.last != nil && r.last.NeedsOperator }

// observation is the failure for ha.Postgres.Rejoin (nil: none).
func (r *rejoinRetry) observation() *ha.RejoinFailure {
	if r.last == nil {
		return nil
	}
	c := *r.last
	return &c
}

// rejoinDone is the completion of a rewind, clone or re-clone task: step is
// the step that ran last ("pg_rewind", "pg_basebackup" or "start"), source
// the member it ran against. It runs on the loop goroutine.
func (a *Agent) rejoinDone(step, source string, err error) {
	if err == nil {
		if r := a.rejoin.last; r != nil {
			a.log.Info("rejoined after failed attempts", "action", "rejoin", "attempts", r.Attempts, "source", source)
		}
		a.rejoin.succeeded()
		return
	}
	rf := a.rejoin.failed(time.Now(), step, source, postgres.Classify(err))
	if rf.NeedsOperator {
		a.log.Error("rejoin step failed and retrying cannot help; waiting for an operator", "action", "rejoin",
			"step", step, "source", source, "reason", rf.Reason, "remedy", "regent reinit "+a.cfg.Name)
		return
	}
	a.log.Warn("rejoin step failed transiently; retrying against the current leader", "action", "rejoin",
		"step", step, "source", source, "reason", rf.Reason, "attempt", rf.Attempts,
		"retry_in", time.Until(rf.RetryAt).Round(time.Millisecond))
}
