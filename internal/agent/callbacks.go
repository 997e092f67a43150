package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/regent-ha/regent/internal/callback"
	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/config"
	"github.com/regent-ha/regent/internal/ha"
)

// lifecycle is what the agent remembers for the user's callbacks
// (postgresql.callbacks, pre_promote, before_stop; package callback). Only
// the loop goroutine touches it (task completions run there too).
type lifecycle struct {
	runner *callback.Runner
	// role is the role PostgreSQL last ran with under this agent ("" not
	// yet): a start in another role is a role change, as in Patroni.
	role string
	// prePromoteFailed is when pre_promote last aborted a promotion and
	// why; the member does not race for one ttl after it (Patroni's
	// back-off).
	prePromoteFailed       time.Time
	prePromoteFailedReason string
}

// newCallbackRunner builds the runner of the member file's callbacks.
func newCallbackRunner(a *Agent) *callback.Runner {
	return callback.New(callback.Options{
		Commands: callbackCommands(a.cfg.PostgreSQL.Callbacks),
		Scope:    a.cfg.Scope,
		Timeout:  time.Duration(a.cfg.PostgreSQL.CallbackTimeout),
		Logger:   a.log,
	})
}

// callbackCommands maps the events to the member file's commands.
func callbackCommands(cb config.CallbacksConfig) map[callback.Event]string {
	return map[callback.Event]string{
		callback.OnStart: cb.OnStart, callback.OnStop: cb.OnStop, callback.OnRestart: cb.OnRestart,
		callback.OnReload: cb.OnReload, callback.OnRoleChange: cb.OnRoleChange,
	}
}

// pgStarted records that PostgreSQL now runs as role (after a start the
// agent made, or when it first finds it running) and runs on_start, or
// on_role_change when it ran in another role before.
func (a *Agent) pgStarted(role string) {
	ev := callback.OnStart
	if a.life.role != "" && a.life.role != role {
		ev = callback.OnRoleChange
	}
	a.life.role = role
	a.life.runner.Notify(ev, role)
}

// pgRestarted runs on_restart (or on_role_change if the role changed).
func (a *Agent) pgRestarted(role string) {
	if a.life.role != "" && a.life.role != role {
		a.pgStarted(role)
		return
	}
	a.life.role = role
	a.life.runner.Notify(callback.OnRestart, role)
}

// pgStopped runs on_stop with the role PostgreSQL had.
func (a *Agent) pgStopped() {
	a.life.runner.Notify(callback.OnStop, orRole(a.life.role))
}

// pgPromoted runs on_role_change primary right after pg_promote.
func (a *Agent) pgPromoted() {
	a.life.role = cluster.RolePrimary
	a.life.runner.Notify(callback.OnRoleChange, cluster.RolePrimary)
}

// pgReloaded runs on_reload.
func (a *Agent) pgReloaded() {
	a.life.runner.Notify(callback.OnReload, orRole(a.life.role))
}

func orRole(r string) string {
	if r == "" {
		return cluster.RoleReplica
	}
	return r
}

// beforeStop runs the before_stop hook, if any, bounded by retry_timeout;
// its result is only logged. It reads no agent state that changes, so
// tasks may call it.
func (a *Agent) beforeStop(ctx context.Context) {
	cmd := a.cfg.PostgreSQL.BeforeStop
	if cmd == "" {
		return
	}
	bctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	res := callback.Run(bctx, cmd)
	a.log.Info("before_stop finished", "command", cmd, "exit_code", res.ExitCode, "output", res.Output, "err", res.Err)
}

// prePromote runs the pre_promote hook, if any, and returns why the
// promotion must not go ahead ("" = go ahead). It may use the time the
// lease claim has left, less retry_timeout for the promotion itself.
func (a *Agent) prePromote(ctx context.Context) string {
	cmd := a.cfg.PostgreSQL.PrePromote
	if cmd == "" {
		return ""
	}
	budget := a.timing().RenewDeadline() - time.Since(a.lease.ConfirmedSentAt) - a.dyn.RetryTimeoutDuration()
	if budget <= 0 {
		return "pre_promote not run: no time left before the lease's renew deadline"
	}
	pctx, cancel := context.WithTimeoutCause(ctx, budget,
		fmt.Errorf("it did not finish within %s, the time the lease claim left (raise ttl for a slower script)", budget.Round(time.Millisecond)))
	defer cancel()
	started := time.Now()
	res := callback.Run(pctx, cmd)
	a.log.Info("pre_promote finished", "command", cmd, "exit_code", res.ExitCode, "output", res.Output,
		"duration", time.Since(started).Round(time.Millisecond), "err", res.Err)
	if res.Err != nil {
		return fmt.Sprintf("pre_promote script %q failed (exit code %d): %v", cmd, res.ExitCode, res.Err)
	}
	return ""
}

// prePromoteBackoff is why this member must not race for the leader key
// now ("" = it may): pre_promote aborted its promotion less than ttl ago.
func (a *Agent) prePromoteBackoff() string {
	if a.life.prePromoteFailed.IsZero() {
		return ""
	}
	if ago := time.Since(a.life.prePromoteFailed); ago < a.dyn.TTLDuration() {
		return fmt.Sprintf("%s %s ago; not racing for one ttl", a.life.prePromoteFailedReason, ago.Round(time.Millisecond))
	}
	a.life.prePromoteFailed = time.Time{}
	return ""
}

// abortPromotion handles a promotion pre_promote refused: PostgreSQL stays a
// replica, the leader key is released (a failed release stays pending and
// is retried), and the member does not race again for one ttl. The reason
// is logged and recorded in the DCS events key.
func (a *Agent) abortPromotion(ctx context.Context, o ha.Observation, why string) error {
	a.log.Error("promotion aborted by pre_promote; staying a replica and releasing the leader key",
		"action", "abort_promotion", "reason", why)
	a.life.prePromoteFailed, a.life.prePromoteFailedReason = time.Now(), why
	if ok, err := releaseLeaderKey(ctx, a.dcs, a.dyn.RetryTimeoutDuration(), 0); !ok {
		a.releasePending = true
		a.log.Warn("releasing the leader key after the aborted promotion; retrying at the next loop", "err", err)
	} else {
		a.releaseResolved("promotion aborted by pre_promote")
	}
	if o.Cluster != nil {
		ev := cluster.Event{Kind: cluster.EventPromotionRefused, Reason: "promotion aborted: " + why, Timeline: o.PG.Timeline, LSN: o.PG.LSN()}
		if err := a.recordEvent(ctx, ev); err != nil {
			a.log.Warn("recording the aborted promotion in the DCS", "err", err)
		}
	}
	return fmt.Errorf("promotion aborted: %s", why)
}
