package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ReceivedLSN asks another member's PostgreSQL how much WAL it has received
// and flushed (pg_last_wal_receive_lsn), or, if it is not in recovery, its
// current WAL position. A switchover uses it to confirm that the candidate
// holds the old leader's shutdown checkpoint before the key is released.
func ReceivedLSN(ctx context.Context, src ConnInfo) (int64, error) {
	conn, err := pgx.Connect(ctx, src.String())
	if err != nil {
		return 0, fmt.Errorf("connect to %s:%d: %w", src.Host, src.Port, err)
	}
	defer closeConn(conn)
	var lsn *string
	err = conn.QueryRow(ctx, `SELECT CASE WHEN pg_is_in_recovery()
		THEN pg_last_wal_receive_lsn()::text ELSE pg_current_wal_lsn()::text END`).Scan(&lsn)
	if err != nil {
		return 0, fmt.Errorf("query received WAL on %s:%d: %w", src.Host, src.Port, err)
	}
	return optLSN(lsn)
}
