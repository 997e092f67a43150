package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/config"
	"github.com/regent-ha/regent/internal/operate"
	"github.com/regent-ha/regent/internal/postgres"
)

// Reload rereads the member's configuration file, applies what can change
// while the agent runs and reloads PostgreSQL. POST /reload, `regent
// reload` and SIGHUP all come here; why says which of them asked. It runs
// on the loop goroutine, so it waits for the current loop to finish. A
// file that does not load or whose certificates cannot be read changes
// nothing.
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
// while the agent runs.
type ReloadReport struct {
	// Applied names the settings (YAML paths) that changed and took effect.
	Applied []string
	// NotApplied names the settings that changed in the file but keep
	// their old value, each with the reason ("postgresql.listen: needs a
	// restart of the agent").
	NotApplied []string
}

// SetLogLevel gives the agent the level of its logger, so that a reload
// can change log.level.
func (a *Agent) SetLogLevel(v *slog.LevelVar) { a.logLevel = v }

// reloadable are the settings (YAML paths, or a section and everything
// below it) a reload applies while the agent runs.
var reloadable = []string{
	"tags",
	"postgresql.parameters",
	"postgresql.pg_hba",
	"postgresql.authentication",
	"restapi.authentication",
	"restapi.allowlist",
	"restapi.certfile", "restapi.keyfile", "restapi.cafile", "restapi.verify_client",
	"postgresql.callbacks", "postgresql.pre_promote", "postgresql.before_stop", "postgresql.callback_timeout",
	"log.level",
}

// reloadNotes are changes a reload does not apply for another reason than
// a restart of the agent.
var reloadNotes = map[string]string{
	"bootstrap": "only read when the cluster is initialized; change a running cluster with regent edit-config",
}

// planReload compares the running configuration with the reread one and
// sorts the changed settings into those a reload applies and those it
// cannot, with the reason. Every field is compared, so a setting added to
// the file format later is reported as needing a restart until the reload
// learns to apply it.
func planReload(old, cur *config.Config) ReloadReport {
	var rep ReloadReport
	tlsToggled := (old.RestAPI.CertFile == "") != (cur.RestAPI.CertFile == "")
	for _, path := range changedPaths("", reflect.ValueOf(*old), reflect.ValueOf(*cur)) {
		switch {
		case tlsToggled && under(path, "restapi.certfile", "restapi.keyfile", "restapi.cafile", "restapi.verify_client"):
			rep.NotApplied = append(rep.NotApplied, path+": switching the REST API between HTTP and HTTPS needs a restart of the agent")
		case under(path, reloadable...):
			rep.Applied = append(rep.Applied, path)
		default:
			why := "needs a restart of the agent"
			for p, note := range reloadNotes {
				if under(path, p) {
					why = note
				}
			}
			rep.NotApplied = append(rep.NotApplied, path+": "+why)
		}
	}
	return rep
}

// under reports whether path is one of prefixes or below one of them.
func under(path string, prefixes ...string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+".") {
			return true
		}
	}
	return false
}

// changedPaths lists the YAML paths at which a and b differ: structs are
// compared field by field (named by their yaml tags), anything else as a
// whole.
func changedPaths(prefix string, a, b reflect.Value) []string {
	if a.Kind() != reflect.Struct || a.Type() == reflect.TypeOf(config.Secret{}) {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return nil
		}
		return []string{prefix}
	}
	var out []string
	for i := range a.NumField() {
		f := a.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if prefix != "" {
			name = prefix + "." + name
		}
		out = append(out, changedPaths(name, a.Field(i), b.Field(i))...)
	}
	return out
}

// reload runs on the loop goroutine: it rereads the file, prepares
// everything that can fail (certificates, allowlist, secrets), then
// applies the reloadable settings, rewrites PostgreSQL's configuration and
// reloads it. The REST API's certificate files are reread even when their
// paths did not change, so a renewed certificate takes effect.
func (a *Agent) reload(ctx context.Context, why string) (ReloadReport, error) {
	a.notifySystemd(a.notify.Reloading, "RELOADING=1")
	defer a.notifySystemd(a.notify.Ready, "READY=1")
	var rep ReloadReport
	if a.configPath != "" {
		cfg, err := config.Load(a.configPath)
		if err != nil {
			a.log.Error("reload: the configuration file was rejected; nothing changed", "action", "reload", "reason", why, "err", err)
			return rep, &operate.BadRequestError{Reason: err.Error()}
		}
		rep = planReload(a.cfg, cfg)
		if err := a.applyFile(cfg); err != nil {
			a.log.Error("reload: nothing changed", "action", "reload", "reason", why, "err", err)
			return ReloadReport{}, &operate.BadRequestError{Reason: err.Error()}
		}
	}
	a.applyParameters(ctx)
	rctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	var err error
	if _, running := a.pg.Running(); running {
		if err = a.pg.Reload(rctx); err == nil {
			a.pgReloaded()
		}
	}
	if len(rep.NotApplied) > 0 {
		a.log.Warn("reload: some changed settings were not applied", "action", "reload", "reason", why,
			"not_applied", strings.Join(rep.NotApplied, "; "))
	}
	a.log.Info("configuration reloaded", "action", "reload", "reason", why, "applied", strings.Join(rep.Applied, ","))
	return rep, err
}

// applyFile takes over the reloadable settings of cfg. It changes nothing
// when one of them cannot be used.
func (a *Agent) applyFile(cfg *config.Config) error {
	rc := cfg.RestAPI
	var tlsCfg *tls.Config
	if a.cfg.RestAPI.CertFile != "" && rc.CertFile != "" {
		var err error
		if tlsCfg, err = rc.ServerTLS(); err != nil {
			return fmt.Errorf("restapi TLS: %w", err)
		}
	}
	access, err := restAccess(rc)
	if err != nil {
		return err
	}
	auth := cfg.PostgreSQL.Authentication
	su, err := auth.Superuser.Password.Value()
	if err != nil {
		return fmt.Errorf("postgresql.authentication.superuser.password: %w", err)
	}
	rp, err := auth.Replication.Password.Value()
	if err != nil {
		return fmt.Errorf("postgresql.authentication.replication.password: %w", err)
	}
	if err := a.pg.SetAccess(cfg.PostgreSQL.PgHBA,
		postgres.Credentials{Username: auth.Superuser.Username, Password: su},
		postgres.Credentials{Username: auth.Replication.Username, Password: rp}); err != nil {
		return err
	}
	if a.api != nil {
		a.api.SetAccess(access)
		if tlsCfg != nil {
			a.api.SetTLS(tlsCfg)
		}
	}
	if a.logLevel != nil {
		var level slog.Level
		if level.UnmarshalText([]byte(cfg.Log.Level)) == nil {
			a.logLevel.Set(level)
		}
	}
	a.cfg.Tags = cfg.Tags
	for _, w := range config.MisspeltTags(cfg.Tags) {
		a.log.Warn("reload: " + w)
	}
	a.cfg.PostgreSQL.Parameters = cfg.PostgreSQL.Parameters
	pc := &a.cfg.PostgreSQL
	pc.Callbacks, pc.PrePromote, pc.BeforeStop, pc.CallbackTimeout = cfg.PostgreSQL.Callbacks,
		cfg.PostgreSQL.PrePromote, cfg.PostgreSQL.BeforeStop, cfg.PostgreSQL.CallbackTimeout
	if a.life.runner != nil {
		a.life.runner.Update(callbackCommands(pc.Callbacks), time.Duration(pc.CallbackTimeout))
	}
	a.cfg.PostgreSQL.PgHBA = cfg.PostgreSQL.PgHBA
	a.cfg.PostgreSQL.Authentication = auth
	a.cfg.RestAPI.Authentication = rc.Authentication
	a.cfg.RestAPI.Allowlist = rc.Allowlist
	if tlsCfg != nil {
		a.cfg.RestAPI.CertFile, a.cfg.RestAPI.KeyFile = rc.CertFile, rc.KeyFile
		a.cfg.RestAPI.CAFile, a.cfg.RestAPI.VerifyClient = rc.CAFile, rc.VerifyClient
	}
	a.cfg.Log.Level = cfg.Log.Level
	return nil
}

// restAccess builds the REST API's access rules from the restapi section.
func restAccess(rc config.RestAPIConfig) (api.Access, error) {
	nets, err := rc.AllowlistNets()
	if err != nil {
		return api.Access{}, fmt.Errorf("restapi.allowlist: %w", err)
	}
	acc := api.Access{Allowlist: nets, RequireClientCert: rc.VerifyClient != "" && rc.VerifyClient != config.VerifyClientNone}
	if auth := rc.Authentication; auth != nil {
		pw, err := auth.Password.Value()
		if err != nil {
			return api.Access{}, fmt.Errorf("restapi.authentication.password: %w", err)
		}
		acc.Username, acc.Password = auth.Username, pw
	}
	return acc, nil
}
