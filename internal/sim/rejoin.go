package sim

import (
	"errors"
	"time"

	"github.com/regent-ha/regent/internal/ha"
)

// needsOperator marks a modelled rejoin failure that retrying cannot fix
// (package postgres classifies real ones as postgres.NeedsOperator); every
// other failure of a rewind, clone or post-rewind start is transient.
type needsOperator struct{ error }

func (e needsOperator) Unwrap() error { return e.error }

// rejoinRetry mirrors package agent's: the last failed rejoin step and its
// backoff of 1 s doubling to 30 s.
type rejoinRetry struct {
	last *ha.RejoinFailure
}

func rejoinBackoff(n int) time.Duration {
	d := time.Second
	for i := 1; i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

func (r *rejoinRetry) failed(now time.Time, step, source string, err error) *ha.RejoinFailure {
	n := 1
	if r.last != nil {
		n = r.last.Attempts + 1
	}
	rf := &ha.RejoinFailure{Step: step, Source: source, Reason: err.Error(), Attempts: n}
	var no needsOperator
	rf.NeedsOperator = errors.As(err, &no)
	if !rf.NeedsOperator {
		rf.RetryAt = now.Add(rejoinBackoff(n))
	}
	r.last = rf
	return rf
}

func (r *rejoinRetry) leaderChanged() {
	if r.last != nil && !r.last.NeedsOperator {
		r.last = nil
	}
}

func (r *rejoinRetry) observation() *ha.RejoinFailure {
	if r.last == nil {
		return nil
	}
	c := *r.last
	return &c
}

// rejoinDone records the outcome of a rewind, clone or re-clone task.
func (a *agent) rejoinDone(step, source string, err error) {
	if err == nil {
		a.rejoin.last = nil
		return
	}
	rf := a.rejoin.failed(a.m.mono(), step, source, err)
	if rf.NeedsOperator {
		a.tracef("%s from %s failed and needs an operator: %s", step, source, rf.Reason)
		return
	}
	a.tracef("%s from %s failed (attempt %d, transient): %s", step, source, rf.Attempts, rf.Reason)
}
