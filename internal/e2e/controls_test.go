package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// apiCall sends a request to a member's REST API; auth is "right",
// "wrong" or "none".
func apiCall(t *testing.T, c *localcluster.Cluster, member, method, path string, body any, auth string, hdr ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.APIURL(member)+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	switch auth {
	case "right":
		req.SetBasicAuth("regent", c.Password("restapi"))
	case "wrong":
		req.SetBasicAuth("regent", "not-the-password")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, member, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cli runs the regent CLI with the cluster's environment.
func cli(t *testing.T, c *localcluster.Cluster, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), c.Env()...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writer inserts increasing ids through a read-write multi-host DSN and
// records which were acknowledged and the longest gap between two
// acknowledgements.
type writer struct {
	mu     sync.Mutex
	acked  []int
	maxGap time.Duration
	stop   chan struct{}
	done   chan struct{}
}

func startWriter(t *testing.T, c *localcluster.Cluster) *writer {
	t.Helper()
	var hosts, ports []string
	for _, m := range c.Spec.Members {
		hosts = append(hosts, "127.0.0.1")
		ports = append(ports, fmt.Sprint(m.PGPort))
	}
	dsn := fmt.Sprintf("host=%s port=%s user=postgres password=%s dbname=postgres target_session_attrs=read-write connect_timeout=1",
		strings.Join(hosts, ","), strings.Join(ports, ","), c.Password("superuser"))
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var conn *pgx.Conn
		last := time.Now()
		for id := 1; ; id++ {
			select {
			case <-w.stop:
				if conn != nil {
					conn.Close(context.Background())
				}
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if conn == nil {
				conn, _ = pgx.Connect(ctx, dsn)
			}
			if conn != nil {
				if _, err := conn.Exec(ctx, "INSERT INTO load VALUES ($1)", id); err == nil {
					now := time.Now()
					w.mu.Lock()
					w.acked = append(w.acked, id)
					w.maxGap = max(w.maxGap, now.Sub(last))
					w.mu.Unlock()
					last = now
				} else {
					conn.Close(context.Background())
					conn = nil
				}
			}
			cancel()
			time.Sleep(10 * time.Millisecond) // the workload's pace, not synchronisation
		}
	}()
	return w
}

func (w *writer) finish() ([]int, time.Duration) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked, w.maxGap
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func leaderOf(t *testing.T, c *localcluster.Cluster) string {
	t.Helper()
	v := waitFor(t, c, time.Minute, "a running leader", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.State == cluster.StateRunning && l.Role == cluster.RolePrimary
	})
	return v.LeaderName()
}

func otherThan(c *localcluster.Cluster, names ...string) string {
	for _, m := range c.Spec.Members {
		skip := false
		for _, n := range names {
			skip = skip || m.Name == n
		}
		if !skip {
			return m.Name
		}
	}
	return ""
}

// TestOperatorControls drives one three-member cluster (m3 tagged
// nofailover) through the operator commands and their refusals.
func TestOperatorControls(t *testing.T) {
	c, _ := startClusterWith(t, 3, []map[string]any{nil, nil, {"nofailover": true, "replicatefrom": "m2"}})
	waitFor(t, c, 3*time.Minute, "a healthy cluster", func(v *cluster.Cluster) bool { return localcluster.Healthy(v, 3) })
	leader := leaderOf(t, c)
	if err := execOn(t, c, leader, "CREATE TABLE load (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}

	t.Run("access control on mutating endpoints", func(t *testing.T) {
		if code, body := apiCall(t, c, leader, "POST", "/reload", nil, "none"); code != http.StatusUnauthorized {
			t.Fatalf("no credentials: %d %s", code, body)
		}
		if code, body := apiCall(t, c, leader, "POST", "/reload", nil, "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("wrong credentials: %d %s", code, body)
		}
		if code, body := apiCall(t, c, leader, "POST", "/reload", nil, "right"); code/100 != 2 {
			t.Fatalf("right credentials: %d %s", code, body)
		}
		if code, _ := apiCall(t, c, leader, "GET", "/primary", nil, "none"); code != http.StatusOK {
			t.Fatalf("health check needs no credentials, got %d", code)
		}
	})

	t.Run("switchover refusals", func(t *testing.T) {
		replica := otherThan(c, leader, "m3")
		cases := []struct {
			name string
			body map[string]string
			want int
		}{
			{"unknown candidate", map[string]string{"leader": leader, "candidate": "nosuch"}, http.StatusPreconditionFailed},
			{"candidate is the leader", map[string]string{"leader": leader, "candidate": leader}, http.StatusPreconditionFailed},
			{"wrong leader", map[string]string{"leader": replica, "candidate": leader}, http.StatusPreconditionFailed},
			{"nofailover candidate", map[string]string{"leader": leader, "candidate": "m3"}, http.StatusPreconditionFailed},
		}
		for _, tc := range cases {
			if code, body := apiCall(t, c, leader, "POST", "/switchover", tc.body, "right"); code != tc.want {
				t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
			}
		}
		out, err := cli(t, c, "switchover", "--candidate", "nosuch", "--force")
		if err == nil || !strings.Contains(out, "nosuch") {
			t.Errorf("CLI switchover to an unknown member: err=%v\n%s", err, out)
		}
	})

	t.Run("scheduled switchover is listed and cancelled", func(t *testing.T) {
		at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		replica := otherThan(c, leader, "m3")
		if code, body := apiCall(t, c, leader, "POST", "/switchover",
			map[string]string{"leader": leader, "candidate": replica, "scheduled_at": at}, "right"); code != http.StatusAccepted {
			t.Fatalf("schedule: %d %s", code, body)
		}
		out, err := cli(t, c, "list")
		if err != nil || !strings.Contains(out, "cheduled") {
			t.Fatalf("regent list does not show the scheduled switchover: %v\n%s", err, out)
		}
		if code, body := apiCall(t, c, leader, "DELETE", "/switchover", nil, "right"); code != http.StatusOK {
			t.Fatalf("cancel: %d %s", code, body)
		}
		if code, _ := apiCall(t, c, leader, "DELETE", "/switchover", nil, "right"); code != http.StatusNotFound {
			t.Fatalf("second cancel: %d, want 404", code)
		}
	})

	t.Run("switchover under write load loses nothing", func(t *testing.T) {
		w := startWriter(t, c)
		eventually(t, 30*time.Second, "writes flowing", func() error {
			if w.count() < 20 {
				return fmt.Errorf("%d writes so far", w.count())
			}
			return nil
		})
		candidate := otherThan(c, leader, "m3")
		out, err := cli(t, c, "switchover", "--candidate", candidate, "--force")
		if err != nil {
			t.Fatalf("regent switchover: %v\n%s", err, out)
		}
		before := w.count()
		eventually(t, 30*time.Second, "writes on the new leader", func() error {
			if w.count() < before+20 {
				return fmt.Errorf("%d writes after the switchover", w.count()-before)
			}
			return nil
		})
		acked, gap := w.finish()
		t.Logf("switchover %s -> %s: %d writes acknowledged, longest write gap %s", leader, candidate, len(acked), gap)
		if got := leaderOf(t, c); got != candidate {
			t.Fatalf("leader is %s, want %s", got, candidate)
		}
		old := leader
		leader = candidate
		if n := count(t, c, leader, "load"); n < len(acked) {
			t.Fatalf("new leader has %d rows, %d writes were acknowledged", n, len(acked))
		}
		conn, err := connect(t, c, leader)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var missing int
		if err := conn.QueryRow(context.Background(),
			"SELECT count(*) FROM unnest($1::int[]) a(id) WHERE NOT EXISTS (SELECT 1 FROM load l WHERE l.id = a.id)", acked).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if missing != 0 {
			t.Fatalf("%d acknowledged writes missing on the new leader", missing)
		}
		v := waitFor(t, c, 2*time.Minute, "old leader streaming again", func(v *cluster.Cluster) bool {
			return localcluster.Healthy(v, 3) && v.LeaderName() == leader
		})
		if h := v.History[len(v.History)-1]; h.NewLeader != leader || !strings.Contains(h.Reason, "switchover") {
			t.Fatalf("history entry %+v", h)
		}
		_ = old
	})

	t.Run("concurrent switchovers: exactly one wins", func(t *testing.T) {
		candidate := otherThan(c, leader, "m3")
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = apiCall(t, c, leader, "POST", "/switchover",
					map[string]string{"leader": leader, "candidate": candidate}, "right")
			}()
		}
		wg.Wait()
		ok, conflict := 0, 0
		for _, code := range codes {
			switch code {
			case http.StatusOK:
				ok++
			case http.StatusConflict:
				conflict++
			}
		}
		if ok != 1 || conflict != 1 {
			t.Fatalf("codes %v, want one 200 and one 409", codes)
		}
		leader = candidate
		waitFor(t, c, 2*time.Minute, "healthy after the second switchover", func(v *cluster.Cluster) bool {
			return localcluster.Healthy(v, 3) && v.LeaderName() == leader
		})
	})

	t.Run("edit-config: concurrent edits conflict, parameters reload or wait for restart", func(t *testing.T) {
		v, err := c.View(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rev := fmt.Sprint(v.ConfigRevision)
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for i, lag := range []int{2 << 20, 3 << 20} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = apiCall(t, c, leader, "PATCH", "/config", map[string]int{"maximum_lag_on_failover": lag}, "right", "If-Match", rev)
			}()
		}
		wg.Wait()
		if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
			t.Fatalf("concurrent PATCH codes %v, want one 200 and one 409", codes)
		}
		if code, body := apiCall(t, c, leader, "PATCH", "/config", map[string]int{"ttl": 2}, "right"); code != http.StatusBadRequest {
			t.Fatalf("invalid timing accepted: %d %s", code, body)
		}
		out, err := cli(t, c, "edit-config", "-s", "loop_wait=1", "-p", "work_mem=8MB", "-p", "max_connections=120", "--force")
		if err != nil {
			t.Fatalf("edit-config: %v\n%s", err, out)
		}
		eventually(t, 30*time.Second, "work_mem reloaded on the leader", func() error {
			conn, err := connect(t, c, leader)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			var wm string
			if err := conn.QueryRow(context.Background(), "SHOW work_mem").Scan(&wm); err != nil {
				return err
			}
			if wm != "8MB" {
				return fmt.Errorf("work_mem = %s", wm)
			}
			return nil
		})
		waitFor(t, c, 30*time.Second, "pending_restart for max_connections", func(v *cluster.Cluster) bool {
			m := v.Member(leader)
			_, ok := m.PendingRestartReason["max_connections"]
			return m.PendingRestart && ok
		})
		out, err = cli(t, c, "restart", leader, "--pending", "--force")
		if err != nil {
			t.Fatalf("restart --pending: %v\n%s", err, out)
		}
		v = waitFor(t, c, time.Minute, "leader restarted without pending changes", func(v *cluster.Cluster) bool {
			m := v.LeaderMember()
			return m != nil && m.State == cluster.StateRunning && !m.PendingRestart
		})
		if v.LeaderName() != leader {
			t.Fatalf("restarting the leader failed over to %s", v.LeaderName())
		}
	})

	t.Run("reinit: refused on the leader, works on a replica", func(t *testing.T) {
		if code, body := apiCall(t, c, leader, "POST", "/reinitialize", map[string]bool{}, "right"); code != http.StatusServiceUnavailable {
			t.Fatalf("reinit of the leader: %d %s", code, body)
		}
		replica := otherThan(c, leader)
		// The replica judges from its own last view, up to a loop behind
		// the DCS: right after the leader's restart it may not have seen
		// the leader running yet, and refuses (as Patroni does). Wait for
		// that state, not for time; any other refusal fails the test.
		eventually(t, 30*time.Second, "reinit accepted once the replica sees a running leader", func() error {
			out, err := cli(t, c, "reinit", replica, "--wait", "--force")
			if err != nil && strings.Contains(out, "no running leader to clone from") {
				return fmt.Errorf("%v: %s", err, out)
			}
			if err != nil {
				t.Fatalf("reinit: %v\n%s", err, out)
			}
			return nil
		})
		waitFor(t, c, 2*time.Minute, "healthy after reinit", func(v *cluster.Cluster) bool { return localcluster.Healthy(v, 3) })
		// At once, while its key may still be from its first loop: a
		// just-reinitialized replica that streams is an eligible
		// candidate, not one that "lags" by the WAL segment its own base
		// backup switched to.
		at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		if code, body := apiCall(t, c, leader, "POST", "/switchover",
			map[string]string{"leader": leader, "candidate": replica, "scheduled_at": at}, "right"); code != http.StatusAccepted {
			t.Fatalf("switchover to the just-reinitialized %s: %d %s", replica, code, body)
		}
		if code, body := apiCall(t, c, leader, "DELETE", "/switchover", nil, "right"); code != http.StatusOK {
			t.Fatalf("cancel: %d %s", code, body)
		}
	})

	t.Run("scheduled restart", func(t *testing.T) {
		before := c.PostmasterPID("m3")
		at := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
		if out, err := cli(t, c, "restart", "m3", "--scheduled", at, "--force"); err != nil {
			t.Fatalf("restart --scheduled: %v\n%s", err, out)
		}
		eventually(t, 30*time.Second, "m3 restarted on schedule", func() error {
			if pid := c.PostmasterPID("m3"); pid == before || pid == 0 {
				return fmt.Errorf("postmaster pid still %d", pid)
			}
			return nil
		})
		waitFor(t, c, time.Minute, "healthy after the scheduled restart", func(v *cluster.Cluster) bool { return localcluster.Healthy(v, 3) })
	})

	t.Run("cascading replica streams from its replicatefrom member", func(t *testing.T) {
		if leader != "m1" {
			if out, err := cli(t, c, "switchover", "--candidate", "m1", "--force"); err != nil {
				t.Fatalf("switchover to m1: %v\n%s", err, out)
			}
			leader = "m1"
			waitFor(t, c, 2*time.Minute, "healthy with leader m1", func(v *cluster.Cluster) bool {
				return localcluster.Healthy(v, 3) && v.LeaderName() == "m1"
			})
		}
		eventually(t, 60*time.Second, "m3 streaming from m2", func() error {
			conn, err := connect(t, c, "m2")
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			var n int
			if err := conn.QueryRow(context.Background(),
				"SELECT count(*) FROM pg_stat_replication WHERE application_name = 'm3' AND state = 'streaming'").Scan(&n); err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("m3 does not stream from m2")
			}
			return nil
		})
		out, err := cli(t, c, "topology")
		if err != nil {
			t.Fatalf("topology: %v\n%s", err, out)
		}
		indent := func(name string) int {
			for _, line := range strings.Split(out, "\n") {
				if i := strings.Index(line, name+" "); i >= 0 {
					return i
				}
			}
			return -1
		}
		if !(indent("m1") < indent("m2") && indent("m2") < indent("m3")) {
			t.Fatalf("topology does not nest m3 under m2 under m1:\n%s", out)
		}
	})

	t.Run("history, topology and dsn", func(t *testing.T) {
		out, err := cli(t, c, "history")
		if err != nil || !strings.Contains(out, "switchover") {
			t.Fatalf("history: %v\n%s", err, out)
		}
		out, err = cli(t, c, "topology")
		if err != nil || !strings.Contains(out, leader) {
			t.Fatalf("topology: %v\n%s", err, out)
		}
		out, err = cli(t, c, "dsn", "--role", "primary")
		m, _ := c.Member(leader)
		if err != nil || !strings.Contains(out, fmt.Sprintf("port=%d", m.PGPort)) {
			t.Fatalf("dsn: %v\n%s", err, out)
		}
	})

	t.Run("paused cluster does not fail over until resumed", func(t *testing.T) {
		if out, err := cli(t, c, "pause", "--wait"); err != nil {
			t.Fatalf("pause: %v\n%s", err, out)
		}
		out, err := cli(t, c, "list")
		if err != nil || !strings.Contains(strings.ToLower(out), "maintenance mode") {
			t.Fatalf("list does not show maintenance mode: %v\n%s", err, out)
		}
		pm := c.PostmasterPID(leader)
		if err := c.Kill(leader); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The dead leader's key expires after ttl; nobody may take it
		// while paused. Watch for three ttl periods.
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			v, err := c.View(context.Background())
			if err == nil && v.LeaderName() != "" && v.LeaderName() != leader {
				t.Fatalf("paused cluster failed over to %s", v.LeaderName())
			}
			time.Sleep(200 * time.Millisecond) // sampling interval of the absence check
		}
		if out, err := cli(t, c, "resume"); err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
		v := waitFor(t, c, time.Minute, "failover after resume", func(v *cluster.Cluster) bool {
			l := v.LeaderMember()
			return l != nil && l.Name != leader && l.State == cluster.StateRunning && l.Role == cluster.RolePrimary
		})
		dead := leader
		leader = v.LeaderName()
		if err := c.Start(dead); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c, 2*time.Minute, "healthy again", func(v *cluster.Cluster) bool { return localcluster.Healthy(v, 3) })
	})

	t.Run("manual failover of a cluster without a leader", func(t *testing.T) {
		if out, err := cli(t, c, "pause", "--wait"); err != nil {
			t.Fatalf("pause: %v\n%s", err, out)
		}
		pm := c.PostmasterPID(leader)
		if err := c.Kill(leader); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c, 30*time.Second, "the dead leader's key to expire", func(v *cluster.Cluster) bool { return v.Leader == nil })
		candidate := otherThan(c, leader, "m3")
		out, err := cli(t, c, "failover", "--candidate", candidate, "--force")
		if err != nil {
			t.Fatalf("failover: %v\n%s", err, out)
		}
		if got := leaderOf(t, c); got != candidate {
			t.Fatalf("leader %s after failover to %s", got, candidate)
		}
		if out, err := cli(t, c, "resume", "--wait"); err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
	})
}

// TestSwitchoverWithoutReplicaIsRefused checks the one refusal that needs
// a cluster without replicas.
func TestSwitchoverWithoutReplicaIsRefused(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, 1)
	leader := leaderOf(t, c)
	code, body := apiCall(t, c, leader, "POST", "/switchover", map[string]string{"leader": leader}, "right")
	if code != http.StatusPreconditionFailed {
		t.Fatalf("switchover without replicas: %d %s", code, body)
	}
}
