package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// memberState is what PostgreSQL and the REST API say about a member.
type memberState struct {
	up        bool
	primary   bool
	streaming int // replicas streaming from it
	sync      int // of which synchronous
	api       int // GET /primary status
}

func (st memberState) String() string {
	if !st.up {
		return fmt.Sprintf("down api=%d", st.api)
	}
	role := "replica"
	if st.primary {
		role = fmt.Sprintf("primary streaming=%d sync=%d", st.streaming, st.sync)
	}
	return fmt.Sprintf("%s api=%d", role, st.api)
}

func connect(ctx context.Context, s System, name string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return pgx.Connect(cctx, dsn(s, name))
}

func inspect(ctx context.Context, s System, name string) memberState {
	st := memberState{api: httpStatus(ctx, s.APIURL(name)+"/primary", time.Second)}
	conn, err := connect(ctx, s, name)
	if err != nil {
		return st
	}
	defer conn.Close(context.Background())
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var inRecovery bool
	err = conn.QueryRow(qctx, `SELECT pg_is_in_recovery(),
		(SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'),
		(SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum'))`).
		Scan(&inRecovery, &st.streaming, &st.sync)
	if err != nil {
		return st
	}
	st.up, st.primary = true, !inRecovery
	return st
}

// waitHealthy waits until every agent runs, exactly one member is a
// writable primary that answers 200 to GET /primary while the others
// answer otherwise, and every other member streams from it. When sync, the
// primary must also have a synchronous standby in pg_stat_replication and
// the system must have published one (System.SyncStandbys): until then
// neither system promotes anyone if the primary is lost. It returns the
// primary's name.
func waitHealthy(parent context.Context, s System, sync bool, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var last string
	for {
		leader, desc, ok := healthyOnce(ctx, s, sync)
		if ok {
			return leader, nil
		}
		last = desc
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return "", fmt.Errorf("interrupted while waiting for a healthy cluster: %s", last)
			}
			return "", fmt.Errorf("cluster not healthy within %s: %s", timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func healthyOnce(ctx context.Context, s System, sync bool) (string, string, bool) {
	names := memberNames(s)
	var parts []string
	leader := ""
	ok := true
	for _, n := range names {
		st := inspect(ctx, s, n)
		running := s.AgentPID(n) != 0
		parts = append(parts, fmt.Sprintf("%s: %s agent=%v", n, st, running))
		if !running || !st.up {
			ok = false
			continue
		}
		if st.primary {
			if leader != "" || st.api != 200 || st.streaming != len(names)-1 || (sync && st.sync < 1) {
				ok = false
			}
			leader = n
		} else if st.api == 200 {
			ok = false
		}
	}
	if ok && leader != "" && sync {
		pub := s.SyncStandbys(ctx, leader)
		parts = append(parts, fmt.Sprintf("published synchronous standbys %v", pub))
		ok = len(pub) > 0
	}
	return leader, strings.Join(parts, "; "), ok && leader != ""
}

// createTable creates the table the writers insert into.
func createTable(ctx context.Context, s System, leader string) error {
	conn, err := connect(ctx, s, leader)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = conn.Exec(qctx, "CREATE TABLE IF NOT EXISTS bench_writes (id bigint PRIMARY KEY, member text NOT NULL)")
	return err
}

// countLost returns how many of the acknowledged ids are missing on the
// primary.
func countLost(ctx context.Context, s System, primary string, acks []Ack) (int, error) {
	if len(acks) == 0 {
		return 0, nil
	}
	ids := make([]int64, len(acks))
	for i, a := range acks {
		ids[i] = a.ID
	}
	conn, err := connect(ctx, s, primary)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var found int
	if err := conn.QueryRow(qctx, "SELECT count(*) FROM bench_writes WHERE id = ANY($1)", ids).Scan(&found); err != nil {
		return 0, err
	}
	return len(ids) - found, nil
}

// syncStandby returns the name (application_name) of the primary's
// synchronous standby, "" when there is none.
func syncStandby(ctx context.Context, s System, primary string) string {
	conn, err := connect(ctx, s, primary)
	if err != nil {
		return ""
	}
	defer conn.Close(context.Background())
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var name string
	if err := conn.QueryRow(qctx, "SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync' ORDER BY application_name LIMIT 1").Scan(&name); err != nil {
		return ""
	}
	if member(s, name).Name == "" {
		return ""
	}
	return name
}

// clusterSyncStandbys asks the leader's GET /cluster for the members with
// the role sync_standby (Patroni's published synchronous standbys).
func clusterSyncStandbys(ctx context.Context, apiURL, leader string) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/cluster", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var c struct {
		Members []struct {
			Name string `json:"name"`
			Role string `json:"role"`
		} `json:"members"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&c) != nil {
		return nil
	}
	var out []string
	for _, m := range c.Members {
		if m.Role == "sync_standby" && m.Name != leader {
			out = append(out, m.Name)
		}
	}
	return out
}
