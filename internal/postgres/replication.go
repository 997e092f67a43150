package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// EnsureReplicationRole creates the replication role (LOGIN REPLICATION
// with Options.Replication's password), or alters an existing one to match.
// Idempotent. Nothing is done when the replication user is the superuser.
// The statement, which carries the password, is kept out of the server
// log.
func (i *Instance) EnsureReplicationRole(ctx context.Context) error {
	_, su, rep := i.Access()
	name, pw := rep.Username, rep.Password
	if name == "" {
		return errors.New("ensure replication role: replication username is empty")
	}
	if name == su.Username {
		return nil
	}
	var verb string
	err := i.pool.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			for _, q := range []string{
				"SET LOCAL log_statement = 'none'",
				"SET LOCAL log_min_duration_statement = -1",
				"SET LOCAL log_min_error_statement = 'panic'",
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists); err != nil {
				return err
			}
			verb = "CREATE"
			if exists {
				verb = "ALTER"
			}
			// format() quotes the name (%I) and the password (%L) server-side.
			tmpl := "%s ROLE %I WITH LOGIN REPLICATION PASSWORD %L"
			if pw == "" {
				tmpl = "%s ROLE %I WITH LOGIN REPLICATION"
			}
			var stmt string
			if err := tx.QueryRow(ctx, "SELECT format($1::text, $2::text, $3::text, $4::text)",
				tmpl, verb, name, pw).Scan(&stmt); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("ensure replication role %q: %w", name, err)
	}
	i.log.Info("replication role ensured", "role", name, "action", verb)
	return nil
}

// validSlotName matches the slot names Regent creates (see SlotName).
var validSlotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func isSQLState(err error, codes ...string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	for _, c := range codes {
		if pgErr.Code == c {
			return true
		}
	}
	return false
}

// BaseBackup clones src into the (missing or empty) data directory with
// pg_basebackup -X stream --checkpoint=fast, then writes Regent's
// configuration. src's password reaches pg_basebackup through a private
// passfile. On failure whatever pg_basebackup created is removed, leaving
// the directory empty again.
func (i *Instance) BaseBackup(ctx context.Context, src ConnInfo) error {
	st, err := i.DataDirState()
	if err != nil {
		return fmt.Errorf("base backup: %w", err)
	}
	if st != DataDirEmpty {
		return fmt.Errorf("base backup: data directory %s is not empty", i.dataDir)
	}
	if _, err := i.mkdirOwned(i.dataDir, 0o700); err != nil {
		return fmt.Errorf("base backup: %w", err)
	}
	pw := src.Password
	src.Password = ""
	log := i.log.With("source", src.Redacted())
	log.Info("cloning with pg_basebackup")
	start := time.Now()
	var out string
	err = i.withPassfile(pw, func(env []string) error {
		var err error
		out, err = i.runTool(ctx, env, "pg_basebackup", "-D", i.dataDir, "-X", "stream",
			"--checkpoint=fast", "--no-password", "-d", src.String())
		return err
	})
	if err != nil {
		if rerr := removeContents(i.dataDir); rerr != nil {
			log.Error("could not clean up after failed base backup", "error", rerr)
		}
		return &ToolError{Failure: ClassifyBaseBackup(out),
			Err: fmt.Errorf("base backup from %s: %w\n%s", src.Redacted(), err, lastLines(out, 20))}
	}
	log.Info("base backup done", "duration", time.Since(start))
	// A new data directory: an interrupted rewind of the old one no
	// longer matters.
	_ = os.Remove(filepath.Join(i.runDir, rewindRecord))
	if _, err := i.writeConfig(); err != nil {
		return fmt.Errorf("base backup: write configuration: %w", err)
	}
	return nil
}

// Rewind synchronises the stopped data directory with src (a running
// server, connected to as a superuser) using pg_rewind, then rewrites
// Regent's configuration (pg_rewind copies the source's). A target that was
// not shut down cleanly is crash-recovered by pg_rewind itself. On failure
// the error is a *ToolError: the tool's output is part of its text and
// ClassifyRewind's verdict (may a retry succeed?) is its Failure.
//
// pg_rewind reads the source's timeline from its control file, so a
// freshly promoted source must have completed a checkpoint (Checkpoint)
// first; otherwise pg_rewind sees both on the same timeline and does
// nothing.
func (i *Instance) Rewind(ctx context.Context, src ConnInfo) error {
	if pid, ok := i.Running(); ok {
		return fmt.Errorf("rewind: PostgreSQL is running (pid %d); stop it first", pid)
	}
	st, err := i.DataDirState()
	if err != nil {
		return fmt.Errorf("rewind: %w", err)
	}
	if st != DataDirInitialized {
		return fmt.Errorf("rewind: data directory %s is not initialized", i.dataDir)
	}
	if src.DBName == "" {
		src.DBName = "postgres"
	}
	// pg_rewind brings a target that was not shut down cleanly to a clean
	// state with single-user crash recovery, which refuses to run in
	// standby mode ("standby mode is not supported by single-user
	// servers"). A replica killed while streaming is such a target, so drop
	// the signal files first; Start writes standby.signal again.
	for _, f := range []string{"standby.signal", "recovery.signal"} {
		if err := os.Remove(filepath.Join(i.dataDir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rewind: remove %s: %w", f, err)
		}
	}
	if err := i.removeStaleLockFile(); err != nil {
		return fmt.Errorf("rewind: %w", err)
	}
	// A run of an earlier agent that stopped in the middle (the agent was
	// killed) left its output behind: a target it was copying into must
	// not be rewound again.
	record := filepath.Join(i.runDir, rewindRecord)
	if prev, err := os.ReadFile(record); err == nil {
		if RewindStoppedCopying(string(prev)) {
			return &ToolError{Failure: Failure{Kind: NeedsOperator, Reason: "an earlier pg_rewind was interrupted while copying files: the target data directory is only partly rewound"},
				Err: fmt.Errorf("rewind: %s shows an interrupted pg_rewind:\n%s", record, lastLines(string(prev), 10))}
		}
	}
	if err := i.ensureRunDir(); err != nil {
		return fmt.Errorf("rewind: %w", err)
	}
	rec, err := os.OpenFile(record, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("rewind: %w", err)
	}
	defer rec.Close()
	pw := src.Password
	src.Password = ""
	log := i.log.With("source", src.Redacted())
	log.Info("running pg_rewind")
	start := time.Now()
	var out string
	err = i.withPassfile(pw, func(env []string) error {
		var err error
		// --progress makes pg_rewind say when it starts changing the
		// target ("need to copy ..."): ClassifyRewind needs that line.
		out, err = i.runToolTee(ctx, env, rec, "pg_rewind", "--progress", "-D", i.dataDir, "--source-server="+src.String())
		return err
	})
	if err != nil {
		f := ClassifyRewind(out)
		if !RewindStoppedCopying(out) {
			// The target is unchanged: nothing to remember.
			_ = os.Remove(record)
		}
		log.Warn("pg_rewind failed", "failure", f.Kind, "reason", f.Reason)
		return &ToolError{Failure: f, Err: fmt.Errorf("pg_rewind from %s: %w\n%s", src.Redacted(), err, lastLines(out, 30))}
	}
	_ = os.Remove(record)
	log.Info("pg_rewind done", "duration", time.Since(start), "output", lastLines(out, 3))
	if _, err := i.writeConfig(); err != nil {
		return fmt.Errorf("rewind: write configuration: %w", err)
	}
	return nil
}

// rewindRecord is the file in the run directory that holds the output of
// the pg_rewind running now, or of one that stopped while copying files.
const rewindRecord = "pg_rewind.out"

// SetPrimary points the standby at another primary (or, with an empty
// conninfo, at none): postgresql.conf is rewritten and, when the server is
// running, reloaded (primary_conninfo and primary_slot_name take effect on
// reload). Nothing happens when the configuration is unchanged.
// standby.signal is left as it is; switching between primary and standby
// needs a restart with Start.
func (i *Instance) SetPrimary(ctx context.Context, conninfo, slot string) error {
	if slot != "" && !validSlotName.MatchString(slot) {
		return fmt.Errorf("set primary: invalid slot name %q", slot)
	}
	i.mu.Lock()
	oldConn, oldSlot := i.primConn, i.primSlot
	i.primConn, i.primSlot = conninfo, slot
	i.mu.Unlock()
	changed, err := i.writeConfig()
	if err != nil {
		i.mu.Lock()
		i.primConn, i.primSlot = oldConn, oldSlot
		i.mu.Unlock()
		return fmt.Errorf("set primary: %w", err)
	}
	if !changed {
		return nil
	}
	i.log.Info("primary changed", "primary_conninfo", RedactConnString(conninfo), "slot", slot)
	if _, ok := i.Running(); ok {
		if err := i.reload(ctx); err != nil {
			return fmt.Errorf("set primary: %w", err)
		}
	}
	return nil
}
