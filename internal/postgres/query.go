package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/cluster"
)

// Replica is one row of pg_stat_replication on a primary.
type Replica struct {
	ApplicationName string
	ClientAddr      string
	State           string
	SyncState       string
	SentLSN         int64
	ReplayLSN       int64
	// FlushLSN is what the standby has durably received.
	FlushLSN int64
	// ReplayLagSeconds is pg_stat_replication.replay_lag in seconds.
	ReplayLagSeconds float64
}

// State is what Regent learns from the running server.
type State struct {
	// InRecovery is pg_is_in_recovery(): true on a standby.
	InRecovery bool
	// Timeline is the server's current timeline; see Query for how it is
	// determined.
	Timeline int
	// WriteLSN is pg_current_wal_lsn() on a primary; 0 on a standby.
	WriteLSN int64
	// ReceiveLSN is pg_last_wal_receive_lsn() on a standby (0 when nothing
	// was streamed).
	ReceiveLSN int64
	// ReplayLSN is pg_last_wal_replay_lsn() on a standby.
	ReplayLSN int64
	// ReceiveStartLSN is pg_stat_wal_receiver.receive_start_lsn: the
	// segment boundary where the running WAL receiver started streaming
	// (0 without one). pg_last_wal_receive_lsn() starts out at it, so
	// while ReceiveLSN equals it the receiver has received nothing yet
	// and the standby may be about to catch up.
	ReceiveStartLSN int64
	// ReplicationState is "streaming" when the WAL receiver is streaming,
	// "in archive recovery" on other standbys, "" on a primary.
	ReplicationState string
	// ReceiverConnInfo is the WAL receiver's connection string, without
	// password.
	ReceiverConnInfo string
	// ServerVersion is server_version_num, e.g. 150004.
	ServerVersion int
	// PostmasterStartTime is pg_postmaster_start_time().
	PostmasterStartTime time.Time
	// Replication lists the connected WAL senders (on any server).
	Replication []Replica
	// SystemIdentifier is the database system identifier.
	SystemIdentifier string
	// SyncStandbyNames is the raw synchronous_standby_names setting; see
	// ParseSyncStandbyNames.
	SyncStandbyNames string
	// ReplayPaused is pg_is_wal_replay_paused() on a standby.
	ReplayPaused bool
	// ReplayedTimestamp is pg_last_xact_replay_timestamp() (nil if none).
	ReplayedTimestamp *time.Time
}

// The recovery flag is evaluated once, in a subquery that is not flattened
// (OFFSET 0), so that a promotion in the middle of the query cannot make
// pg_current_wal_lsn() run on a standby. A promotion only turns the flag
// from true to false, so a false flag stays right.
const stateSQL = `SELECT r,
       current_setting('server_version_num')::int,
       pg_postmaster_start_time(),
       (SELECT system_identifier::text FROM pg_control_system()),
       (SELECT timeline_id FROM pg_control_checkpoint()),
       CASE WHEN r THEN NULL ELSE pg_current_wal_lsn()::text END,
       CASE WHEN r THEN NULL ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END,
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       current_setting('synchronous_standby_names'),
       CASE WHEN r THEN pg_is_wal_replay_paused() ELSE false END,
       pg_last_xact_replay_timestamp()
FROM (SELECT pg_is_in_recovery() AS r OFFSET 0) s`

const receiverSQL = `SELECT coalesce(status, ''), coalesce(received_tli, 0), coalesce(conninfo, ''),
       coalesce(receive_start_lsn::text, '')
FROM pg_stat_wal_receiver`

const replicationSQL = `SELECT coalesce(application_name, ''), coalesce(host(client_addr), ''),
       coalesce(state, ''), coalesce(sync_state, ''),
       coalesce(sent_lsn::text, ''), coalesce(replay_lsn::text, ''), coalesce(flush_lsn::text, ''),
       coalesce(extract(epoch FROM replay_lag), 0)::float8
FROM pg_stat_replication ORDER BY application_name`

// Query reads the server's state over one pooled superuser connection.
//
// Timeline: on a primary it is the timeline of the WAL file being written,
// substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), because
// pg_control_checkpoint().timeline_id still shows the old timeline right
// after a promotion until the next checkpoint completes. On a standby it
// is pg_stat_wal_receiver.received_tli while streaming, otherwise the
// timeline of the last restartpoint (pg_control_checkpoint()), which is
// the best SQL-visible approximation of the replay timeline.
func (i *Instance) Query(ctx context.Context) (State, error) {
	var s State
	err := i.pool.with(ctx, func(c *pgx.Conn) error {
		s = State{}
		var (
			ckptTLI                        int32
			writeLSN, walTLI, recv, replay *string
			version                        int32
		)
		if err := c.QueryRow(ctx, stateSQL).Scan(&s.InRecovery, &version, &s.PostmasterStartTime,
			&s.SystemIdentifier, &ckptTLI, &writeLSN, &walTLI, &recv, &replay, &s.SyncStandbyNames,
			&s.ReplayPaused, &s.ReplayedTimestamp); err != nil {
			return fmt.Errorf("query server state: %w", err)
		}
		s.ServerVersion = int(version)
		s.Timeline = int(ckptTLI)
		var err error
		if s.InRecovery {
			if s.ReceiveLSN, err = optLSN(recv); err != nil {
				return err
			}
			if s.ReplayLSN, err = optLSN(replay); err != nil {
				return err
			}
			var status, conninfo, start string
			var tli int32
			err := c.QueryRow(ctx, receiverSQL).Scan(&status, &tli, &conninfo, &start)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("query wal receiver: %w", err)
			}
			if s.ReceiveStartLSN, err = optLSN(&start); err != nil {
				return err
			}
			s.ReplicationState = cluster.ReplicationArchive
			if status == "streaming" {
				s.ReplicationState = cluster.ReplicationStreaming
				if tli > 0 {
					s.Timeline = int(tli)
				}
			}
			if conninfo != "" {
				s.ReceiverConnInfo = sanitizeConnString(conninfo)
			}
		} else {
			if s.WriteLSN, err = optLSN(writeLSN); err != nil {
				return err
			}
			if walTLI != nil {
				if tli, err := strconv.ParseInt(*walTLI, 16, 64); err == nil && tli > 0 {
					s.Timeline = int(tli)
				}
			}
		}
		rows, err := c.Query(ctx, replicationSQL)
		if err != nil {
			return fmt.Errorf("query pg_stat_replication: %w", err)
		}
		for rows.Next() {
			var r Replica
			var sent, rep, flush string
			if err := rows.Scan(&r.ApplicationName, &r.ClientAddr, &r.State, &r.SyncState, &sent, &rep, &flush, &r.ReplayLagSeconds); err != nil {
				rows.Close()
				return fmt.Errorf("scan pg_stat_replication: %w", err)
			}
			if r.SentLSN, err = optLSN(&sent); err != nil {
				rows.Close()
				return err
			}
			if r.ReplayLSN, err = optLSN(&rep); err != nil {
				rows.Close()
				return err
			}
			if r.FlushLSN, err = optLSN(&flush); err != nil {
				rows.Close()
				return err
			}
			s.Replication = append(s.Replication, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("query pg_stat_replication: %w", err)
		}
		return nil
	})
	return s, err
}

// optLSN parses a nullable LSN; NULL and "" are 0.
func optLSN(s *string) (int64, error) {
	if s == nil || *s == "" {
		return 0, nil
	}
	return cluster.ParseLSN(*s)
}

// Promote promotes a standby with pg_promote(wait => true), waiting up to
// the ctx deadline (60 s without one). PostgreSQL removes standby.signal.
func (i *Instance) Promote(ctx context.Context) error {
	secs := 60
	if dl, ok := ctx.Deadline(); ok {
		secs = int(time.Until(dl) / time.Second)
		if secs < 1 {
			secs = 1
		}
	}
	i.log.Info("promoting", "wait_seconds", secs)
	var ok bool
	err := i.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT pg_promote(wait => true, wait_seconds => $1)", int32(secs)).Scan(&ok)
	})
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	if !ok {
		return fmt.Errorf("promote: pg_promote did not complete within %d s", secs)
	}
	i.log.Info("promoted")
	return nil
}

// Checkpoint runs CHECKPOINT, e.g. on a freshly promoted primary so that
// its control file shows the new timeline to pg_rewind.
func (i *Instance) Checkpoint(ctx context.Context) error {
	err := i.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "CHECKPOINT")
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// reload asks the server to reread its configuration.
func (i *Instance) reload(ctx context.Context) error {
	err := i.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SELECT pg_reload_conf()")
		return err
	})
	if err != nil {
		return fmt.Errorf("reload configuration: %w", err)
	}
	return nil
}
