package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regent-ha/regent/internal/dcs"
)

// errClaimLost aborts an action that would make PostgreSQL writable when
// the claim to the leader key the decision was based on no longer holds.
var errClaimLost = errors.New("the leader claim this decision was based on no longer holds")

// stillHoldsClaim re-checks, right before an action that can make
// PostgreSQL writable (Promote, StartPrimary — including a Promote that
// follows AcquireLeader), that this member still provably holds the leader
// key.
//
// Decide saw a confirmed lease at the start of the loop, but the actions run
// later: after earlier actions, and possibly after the process was stopped
// (SIGSTOP, a VM freeze) or the host suspended for longer than the lease.
// By then the lease may have expired and another member may have been
// promoted. The lease guard and the fence process only stop a primary after
// it became writable, and a suspend hides the stop from their monotonic
// deadlines altogether. So, in order:
//  1. no clock gap beyond safety_margin since the last check (a suspend the
//     monotonic clock did not see): checkSuspend then also fences and
//     drops the claim;
//  2. no leader-key release of ours is unresolved (see releasePending);
//  3. the key is on this member's lease and the last confirmed renewal was
//     sent less than the renew deadline ago.
//
// Otherwise the rest of the decision is aborted with an error that says why.
func (a *Agent) stillHoldsClaim() error {
	if gap, lost := a.checkSuspend(); lost {
		return fmt.Errorf("%w: clock gap of %s since the last check (host suspended or agent frozen)",
			errClaimLost, gap.Round(time.Millisecond))
	}
	if a.releasePending {
		return fmt.Errorf("%w: an earlier leader-key release is unresolved (it may still be applied)", errClaimLost)
	}
	if !a.keyOnMyLease {
		return fmt.Errorf("%w: the leader key is not on this member's lease", errClaimLost)
	}
	sent := a.lease.ConfirmedSentAt
	if sent.IsZero() {
		return fmt.Errorf("%w: no confirmed lease renewal", errClaimLost)
	}
	if age, rd := time.Since(sent), a.timing().RenewDeadline(); age >= rd {
		return fmt.Errorf("%w: the last confirmed lease renewal was sent %s ago, renew deadline is %s",
			errClaimLost, age.Round(time.Millisecond), rd)
	}
	return nil
}

// releaseAttempt bounds one leader-key release request while retrying.
const releaseAttempt = time.Second

// releaseLeaderKey deletes the leader key if it still names this member,
// telling a definite answer from an ambiguous one. A request that timed out
// may still be applied later, so a timeout never means "not released". The
// value-compare delete is idempotent, so it is retried with short timeouts
// until etcd answers or budget has passed. Any answer means the key is no
// longer ours: deleted now, or already gone or someone else's (perhaps
// because an earlier attempt landed late). It reports whether an answer
// arrived, and otherwise the last error. It touches no agent state, so a
// task may call it.
func releaseLeaderKey(ctx context.Context, client *dcs.Client, attempt, budget time.Duration) (bool, error) {
	until := time.Now().Add(budget)
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, attempt)
		err := client.ReleaseLeader(rctx)
		cancel()
		if err == nil {
			return true, nil
		}
		last = err
		if ctx.Err() != nil || !time.Now().Add(attempt/4).Before(until) {
			return false, last
		}
		select {
		case <-ctx.Done():
			return false, last
		case <-time.After(attempt / 4):
		}
	}
}

// retryPendingRelease runs at the start of every loop while a release of
// the leader key is unresolved: one more attempt of the idempotent delete.
func (a *Agent) retryPendingRelease(ctx context.Context) {
	if !a.releasePending {
		return
	}
	ok, err := releaseLeaderKey(ctx, a.dcs, min(releaseAttempt, a.dyn.RetryTimeoutDuration()), 0)
	if !ok {
		a.log.Warn("leader-key release still unresolved; not starting as primary until it is", "err", err)
		return
	}
	a.releaseResolved("the retried release was answered")
}

// releaseResolved records that the leader key is definitely no longer ours.
func (a *Agent) releaseResolved(why string) {
	if a.releasePending {
		a.log.Info("leader-key release resolved", "action", "release_leader", "reason", why)
	}
	a.releasePending = false
	a.keyOnMyLease = false
	a.guard.disarm()
}
