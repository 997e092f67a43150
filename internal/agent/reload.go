package agent

import (
	"context"

	"github.com/regent-ha/regent/internal/config"
	"github.com/regent-ha/regent/internal/operate"
)

// Reload rereads the member's configuration file, applies what can change
// while the agent runs and reloads PostgreSQL. POST /reload, `regent
// reload` and SIGHUP all come here; why says which of them asked. It runs
// on the loop goroutine, so it waits for the current loop to finish.
func (a *Agent) Reload(ctx context.Context, why string) (ReloadReport, error) {
	var (
		rep ReloadReport
		err error
	)
	if doErr := a.do(ctx, func(lctx context.Context) {
		rep, err = a.reload(lctx, why)
	}); doErr != nil {
		return rep, doErr
	}
	return rep, err
}

// ReloadReport says what a reload changed and what it could not apply
// without a restart of the agent.
type ReloadReport struct {
	// Applied names the settings (YAML paths) that changed and took effect.
	Applied []string
	// NotApplied names the settings that changed in the file but keep
	// their old value until the agent restarts, each with the reason.
	NotApplied []string
}

// reload runs on the loop goroutine.
func (a *Agent) reload(ctx context.Context, why string) (ReloadReport, error) {
	var rep ReloadReport
	if a.configPath != "" {
		cfg, err := config.Load(a.configPath)
		if err != nil {
			a.log.Error("reload: configuration file rejected; nothing changed", "action", "reload", "reason", why, "err", err)
			return rep, &operate.BadRequestError{Reason: err.Error()}
		}
		a.cfg.Tags = cfg.Tags
		a.cfg.PostgreSQL.Parameters = cfg.PostgreSQL.Parameters
	}
	a.applyParameters(ctx)
	rctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	var err error
	if _, running := a.pg.Running(); running {
		err = a.pg.Reload(rctx)
	}
	a.log.Info("configuration reloaded", "action", "reload", "reason", why)
	return rep, err
}
