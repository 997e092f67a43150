package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/slots"
)

// ReplicationSlots lists the server's non-temporary replication slots.
func (i *Instance) ReplicationSlots(ctx context.Context) ([]slots.Slot, error) {
	var out []slots.Slot
	err := i.pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT slot_name::text, slot_type, active, coalesce(database::text, ''),
			coalesce(plugin::text, ''),
			coalesce(pg_wal_lsn_diff(restart_lsn, '0/0'), 0)::bigint,
			coalesce(pg_wal_lsn_diff(confirmed_flush_lsn, '0/0'), 0)::bigint
			FROM pg_replication_slots WHERE NOT temporary ORDER BY slot_name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s slots.Slot
			if err := rows.Scan(&s.Name, &s.Type, &s.Active, &s.Database, &s.Plugin, &s.RestartLSN, &s.ConfirmedFlushLSN); err != nil {
				return err
			}
			out = append(out, s)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list replication slots: %w", err)
	}
	return out, nil
}

// ApplySlots carries out a slots.Plan: creates the physical slots
// (reserving WAL at once) and the logical ones (connected to their
// database), advances inactive physical slots and drops slots that are
// inactive. A slot created or dropped concurrently, or one that became
// active, is skipped. Every change is logged with its reason; the error
// joins every step that failed.
func (i *Instance) ApplySlots(ctx context.Context, p slots.Plan) error {
	var errs []error
	var created, advanced, dropped []string
	err := i.pool.with(ctx, func(c *pgx.Conn) error {
		for _, n := range p.Create {
			if !validSlotName.MatchString(n) {
				errs = append(errs, fmt.Errorf("create slot: invalid slot name %q", n))
				continue
			}
			_, err := c.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", n)
			switch {
			case isSQLState(err, "42710"): // duplicate_object: created concurrently
			case err != nil:
				errs = append(errs, fmt.Errorf("create slot %q: %w", n, err))
			default:
				created = append(created, n)
				i.log.Info("replication slot created", "slot", n, "type", cluster.SlotPhysical, "reason", p.Reasons[n])
			}
		}
		for _, n := range sortedKeys(boolKeys(p.Advance)) {
			lsn := cluster.FormatLSN(p.Advance[n])
			_, err := c.Exec(ctx, "SELECT pg_replication_slot_advance($1, $2::pg_lsn)", n, lsn)
			switch {
			case isSQLState(err, "55006", "42704"): // active / gone
			case err != nil:
				errs = append(errs, fmt.Errorf("advance slot %q to %s: %w", n, lsn, err))
			default:
				advanced = append(advanced, n)
			}
		}
		for _, n := range p.Drop {
			_, err := c.Exec(ctx, "SELECT pg_drop_replication_slot($1)", n)
			switch {
			case isSQLState(err, "55006", "42704"): // became active / already gone
			case err != nil:
				errs = append(errs, fmt.Errorf("drop slot %q: %w", n, err))
			default:
				dropped = append(dropped, n)
				i.log.Info("replication slot dropped", "slot", n, "reason", p.Reasons[n])
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range p.CreateLogical {
		if err := i.createLogicalSlot(ctx, l); err != nil {
			errs = append(errs, err)
		} else {
			i.log.Info("replication slot created", "slot", l.Name, "type", cluster.SlotLogical,
				"database", l.Database, "plugin", l.Plugin, "reason", p.Reasons[l.Name])
		}
	}
	if len(advanced) > 0 {
		i.log.Debug("replication slots advanced", "slots", advanced)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replication slots: %w", err)
	}
	return nil
}

func (i *Instance) createLogicalSlot(ctx context.Context, l slots.LogicalSlot) error {
	if !validSlotName.MatchString(l.Name) {
		return fmt.Errorf("create logical slot: invalid slot name %q", l.Name)
	}
	c, err := i.connectDB(ctx, l.Database)
	if err != nil {
		return fmt.Errorf("create logical slot %q: %w", l.Name, err)
	}
	defer closeConn(c)
	q := "SELECT pg_create_logical_replication_slot($1, $2)"
	if l.Failover {
		// PostgreSQL 17+: a failover slot, which replicas running
		// sync_replication_slots keep in step.
		q = "SELECT pg_create_logical_replication_slot($1, $2, false, false, true)"
	}
	_, err = c.Exec(ctx, q, l.Name, l.Plugin)
	if err != nil && !isSQLState(err, "42710") {
		return fmt.Errorf("create logical slot %q (database %s, plugin %s): %w", l.Name, l.Database, l.Plugin, err)
	}
	return nil
}

func boolKeys(m map[string]int64) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
