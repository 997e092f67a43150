package nemesis

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// table is the workload's table; created by the harness on the primary.
const table = "nemesis_w1"

// Target is one member as the workload sees it: PostgreSQL and the REST
// API reached directly, bypassing the proxies, so a partition cuts the
// member from the cluster but never the observing client.
type Target struct {
	Member string
	DSN    string
	API    string // base URL of the REST API
}

// Workload inserts unique ids through every member and probes roles.
type Workload struct {
	start    time.Time
	interval time.Duration
	timeout  time.Duration
	next     atomic.Int64

	mu      sync.Mutex
	ops     []Op
	samples []Sample
	seen    map[int64]bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartWorkload starts one writer and one prober per target. ids start
// above firstID so that runs on one cluster never reuse an id.
func StartWorkload(targets []Target, firstID int64, start time.Time) *Workload {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Workload{start: start, interval: 20 * time.Millisecond, timeout: 2 * time.Second, cancel: cancel}
	w.next.Store(firstID)
	for _, t := range targets {
		w.wg.Add(2)
		go func() { defer w.wg.Done(); w.write(ctx, t) }()
		go func() { defer w.wg.Done(); w.probe(ctx, t) }()
	}
	return w
}

// Stop ends the workload and returns what it recorded.
func (w *Workload) Stop() ([]Op, []Sample) {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ops, w.samples
}

// Now is the run's monotonic clock.
func (w *Workload) Now() time.Duration { return time.Since(w.start) }

// NextID is the first id not yet used.
func (w *Workload) NextID() int64 { return w.next.Load() + 1 }

func (w *Workload) write(ctx context.Context, t Target) {
	var conn *pgx.Conn
	var warned atomic.Bool
	defer func() {
		if conn != nil {
			closeQuietly(conn)
		}
	}()
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if conn == nil {
			c, err := connect(ctx, t.DSN, func(*pgconn.PgConn, *pgconn.Notice) { warned.Store(true) })
			if err != nil {
				continue
			}
			conn = c
		}
		id := w.next.Add(1)
		op := Op{ID: id, Member: t.Member, Invoke: w.Now()}
		warned.Store(false)
		octx, cancel := context.WithTimeout(ctx, w.timeout)
		var walfile string
		err := conn.QueryRow(octx,
			"INSERT INTO "+table+"(id, member) VALUES ($1, $2) RETURNING clock_timestamp(), pg_walfile_name(pg_current_wal_insert_lsn())",
			id, t.Member).Scan(&op.ServerAt, &walfile)
		cancel()
		op.Complete = w.Now()
		switch {
		case err == nil && warned.Load():
			// Acknowledged with a warning: the commit was cancelled while
			// waiting for synchronous replication (committed locally only).
			op.Outcome = Unknown
		case err == nil:
			op.Outcome = Acked
			op.Timeline = timelineOf(walfile)
		case refused(err):
			op.Outcome = Failed
		default:
			op.Outcome = Unknown
		}
		if err != nil && (conn.IsClosed() || !isSQLError(err)) {
			closeQuietly(conn)
			conn = nil
		}
		if ctx.Err() != nil && op.Outcome == Unknown {
			return // cancelled by Stop, not by the fault
		}
		w.mu.Lock()
		w.ops = append(w.ops, op)
		w.mu.Unlock()
	}
}

// refused reports errors that prove the insert did not happen: the server
// refused it before running it (read-only standby, no such table yet).
func refused(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "25006", // read_only_sql_transaction: a standby
		"42P01", // undefined_table
		"23505": // unique_violation cannot happen; refused if it does
		return true
	}
	return false
}

func isSQLError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}

// timelineOf reads the timeline from a WAL file name (its first 8 hex
// digits).
func timelineOf(walfile string) int {
	if len(walfile) < 8 {
		return 0
	}
	tl, err := strconv.ParseInt(walfile[:8], 16, 64)
	if err != nil {
		return 0
	}
	return int(tl)
}

func (w *Workload) probe(ctx context.Context, t Target) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			closeQuietly(conn)
		}
	}()
	client := &http.Client{Timeout: 500 * time.Millisecond}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s := Sample{Member: t.Member}
		if conn == nil {
			if c, err := connect(ctx, t.DSN, nil); err == nil {
				conn = c
			}
		}
		if conn != nil {
			qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			var inRecovery bool
			err := conn.QueryRow(qctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
			cancel()
			s.At = w.Now() // the role was observed now, not after the HTTP probe
			if err == nil {
				s.Writable = !inRecovery
			} else {
				closeQuietly(conn)
				conn = nil
			}
		}
		if resp, err := client.Get(t.API + "/primary"); err == nil {
			s.Primary200 = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		if s.At == 0 {
			s.At = w.Now()
		}
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		w.samples = append(w.samples, s)
		w.mu.Unlock()
	}
}

// connect opens a workload connection with short timeouts; onNotice, if
// set, sees every notice (warnings) the server sends.
func connect(ctx context.Context, dsn string, onNotice pgconn.NoticeHandler) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = time.Second
	cfg.OnNotice = onNotice
	// Simple protocol: one round trip per insert, no prepared statements
	// to lose across reconnects.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return pgx.ConnectConfig(cctx, cfg)
}

func closeQuietly(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = c.Close(ctx)
}

// ReadIDs returns every id in the workload table of the member at dsn.
func ReadIDs(ctx context.Context, dsn string) (map[int64]bool, error) {
	conn, err := connect(ctx, dsn, nil)
	if err != nil {
		return nil, err
	}
	defer closeQuietly(conn)
	rows, err := conn.Query(ctx, "SELECT id FROM "+table)
	if err != nil {
		return nil, err
	}
	ids := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// errorText shortens an error for a log line.
func errorText(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	return s
}

// AckCount is how many writes the member acknowledged so far.
func (w *Workload) AckCount(member string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, op := range w.ops {
		if op.Member == member && op.Outcome == Acked {
			n++
		}
	}
	return n
}

// WaitAcks waits until the member acknowledged at least n writes.
func (w *Workload) WaitAcks(ctx context.Context, member string, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if w.AckCount(member) >= n {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// See records ids a scenario read during the run (for visible_then_lost).
func (w *Workload) See(ids map[int64]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[int64]bool{}
	}
	for id := range ids {
		w.seen[id] = true
	}
}

// Seen returns the ids recorded by See.
func (w *Workload) Seen() map[int64]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}
