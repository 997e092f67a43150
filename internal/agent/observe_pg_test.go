package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestTimedOutCountsOnlySilence(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"deadline", context.DeadlineExceeded, true},
		{"wrapped deadline", fmt.Errorf("PostgreSQL answers on existing connections but refuses new ones: %w",
			fmt.Errorf("connect: %w", context.DeadlineExceeded)), true},
		{"starting up", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, false},
		{"too many connections", &pgconn.PgError{Code: "53300"}, false},
		{"authentication", &pgconn.PgError{Code: "28P01"}, false},
		{"refused", errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), false},
	}
	for _, tt := range tests {
		if got := timedOut(tt.err); got != tt.want {
			t.Errorf("%s: timedOut = %v, want %v", tt.name, got, tt.want)
		}
	}
}
