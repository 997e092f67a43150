package postgres

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/cluster"
)

// SetParameters replaces the extra settings written to postgresql.conf
// and, when PostgreSQL runs and the file changed, reloads it. Settings
// that need a restart are then reported by PendingRestart.
func (i *Instance) SetParameters(ctx context.Context, params map[string]string) (bool, error) {
	for name := range params {
		if !gucName.MatchString(name) {
			return false, fmt.Errorf("postgres: invalid parameter name %q", name)
		}
	}
	i.mu.Lock()
	same := maps.Equal(i.opts.Parameters, params)
	if !same {
		i.opts.Parameters = maps.Clone(params)
	}
	i.mu.Unlock()
	if same {
		return false, nil
	}
	if _, running := i.Running(); !running {
		return true, nil // written at the next start
	}
	if err := i.Reload(ctx); err != nil {
		return true, err
	}
	return true, nil
}

// Reload rewrites the configuration files and asks the running server to
// reread them (pg_reload_conf).
func (i *Instance) Reload(ctx context.Context) error {
	if _, err := i.writeConfig(); err != nil {
		return err
	}
	return i.reload(ctx)
}

// PendingRestart lists the settings that changed in the configuration but
// take effect only after a restart, keyed by name.
func (i *Instance) PendingRestart(ctx context.Context) (map[string]cluster.ParamChange, error) {
	i.mu.Lock()
	params := i.opts.Parameters
	i.mu.Unlock()
	out := map[string]cluster.ParamChange{}
	err := i.pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE pending_restart`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name, old string
			if err := rows.Scan(&name, &old); err != nil {
				return err
			}
			ch := cluster.ParamChange{Old: old}
			for k, v := range params {
				if strings.EqualFold(k, name) {
					ch.New = v
				}
			}
			out[name] = ch
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("query pending restart: %w", err)
	}
	return out, nil
}
