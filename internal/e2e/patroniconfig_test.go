package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// TestPatroniWrittenConfigKeepsFailover is evidence E1 of issue 11: the
// config key as Patroni's tools write it (patronictl edit-config -p
// max_connections=150 stores a JSON number; Patroni keys Regent does not
// implement) is applied, and a config key that cannot be used at all
// leaves elections and failover working: every member keeps its
// configuration and reports the problem, a replica takes over from a
// killed leader, and `regent edit-config --replace` repairs the key.
//
// The JSON patronictl writes is put into etcd directly, always. When
// Debian's patronictl is installed (apt-get install patroni; scripts/test
// does in CI), the subtest "patronictl edit-config" also runs the real
// tool against the cluster.
func TestPatroniWrittenConfigKeepsFailover(t *testing.T) {
	t.Parallel()
	c, etcd := startCluster(t, 3)
	direct, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Close() })
	key := "/service/" + c.Spec.Scope + "/config"
	put := func(v string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := direct.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	get := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := direct.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get %s: %v %v", key, resp, err)
		}
		return string(resp.Kvs[0].Value)
	}

	view := waitFor(t, c, 3*time.Minute, "a healthy cluster", func(v *cluster.Cluster) bool { return localcluster.Healthy(v, 3) })
	t.Logf("bootstrapped: %s", describe(view))

	// What patronictl edit-config -p max_connections=150 writes (E1), with
	// Patroni keys Regent keeps verbatim.
	var doc map[string]any
	if err := json.Unmarshal([]byte(get()), &doc); err != nil {
		t.Fatal(err)
	}
	pg, _ := doc["postgresql"].(map[string]any)
	if pg == nil {
		pg = map[string]any{}
		doc["postgresql"] = pg
	}
	pg["parameters"] = map[string]any{"max_connections": 150, "wal_log_hints": true}
	pg["use_slots"] = true
	doc["check_timeline"] = true
	doc["ignore_slots"] = []any{map[string]any{"name": "external", "type": "physical"}}
	b, _ := json.Marshal(doc)
	put(string(b))
	waitFor(t, c, 60*time.Second, "every member pending a restart for max_connections=150", func(v *cluster.Cluster) bool {
		n := 0
		for _, m := range v.Members {
			if _, ok := m.PendingRestartReason["max_connections"]; ok {
				n++
			}
		}
		return n == 3 && v.ConfigProblem == ""
	})
	for _, m := range c.Spec.Members {
		if p := configProblemOf(t, c, m.Name); p != "" {
			t.Errorf("%s reports a config problem for a valid Patroni config: %s", m.Name, p)
		}
	}

	// Regent's own rewrite keeps the number and the Patroni keys.
	if out, err := cli(t, c, "edit-config", "-s", "maximum_lag_on_failover=2097152", "--force"); err != nil {
		t.Fatalf("regent edit-config: %v\n%s", err, out)
	}
	rewritten := get()
	for _, want := range []string{`"max_connections":150`, `"wal_log_hints":true`, `"use_slots":true`,
		`"check_timeline":true`, `"ignore_slots":[{"name":"external","type":"physical"}]`, `"maximum_lag_on_failover":2097152`} {
		if !strings.Contains(rewritten, want) {
			t.Errorf("config after regent edit-config lacks %s: %s", want, rewritten)
		}
	}

	t.Run("patronictl edit-config", func(t *testing.T) {
		patronictl, err := exec.LookPath("patronictl")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("patronictl is not installed (CI=true): scripts/test installs the Debian package patroni")
			}
			t.Skip("patronictl is not installed (apt-get install patroni); the same JSON was written through etcd above")
		}
		cfgPath := filepath.Join(t.TempDir(), "patronictl.yaml")
		y := fmt.Sprintf("scope: %s\nnamespace: /service/\netcd3:\n  hosts: %s\n", c.Spec.Scope,
			strings.TrimPrefix(etcd.Endpoints()[0], "http://"))
		if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(patronictl, "-c", cfgPath, "edit-config", "-p", "max_connections=160", "-s", "maximum_lag_on_failover=3145728", "--force")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("patronictl edit-config: %v\n%s", err, out)
		}
		t.Logf("patronictl edit-config:\n%s", out)
		waitFor(t, c, 60*time.Second, "max_connections=160 from patronictl applied", func(v *cluster.Cluster) bool {
			n := 0
			for _, m := range v.Members {
				if ch, ok := m.PendingRestartReason["max_connections"]; ok && fmt.Sprint(ch.New) == "160" {
					n++
				}
			}
			return n == 3 && v.ConfigProblem == ""
		})
	})

	// A config key that cannot be used: a value of the wrong type.
	bad := strings.Replace(get(), `"ttl":`, `"ttl":"thirty","_was_ttl":`, 1)
	put(bad)
	for _, m := range c.Spec.Members {
		eventually(t, 30*time.Second, m.Name+" reports the config problem", func() error {
			if p := configProblemOf(t, c, m.Name); !strings.Contains(p, `key "ttl": expected an integer`) {
				return fmt.Errorf("config_problem = %q", p)
			}
			return nil
		})
	}
	eventually(t, 30*time.Second, "a config_invalid event", func() error {
		_, body := apiCall(t, c, c.Spec.Members[0].Name, http.MethodGet, "/events", nil, "right")
		if !strings.Contains(body, cluster.EventConfigInvalid) {
			return fmt.Errorf("events: %s", body)
		}
		return nil
	})

	view = waitFor(t, c, 30*time.Second, "a leader", func(v *cluster.Cluster) bool { return v.LeaderMember() != nil })
	oldLeader := view.LeaderName()
	pm := c.PostmasterPID(oldLeader)
	if err := c.Kill(oldLeader); err != nil {
		t.Fatal(err)
	}
	if pm > 0 {
		_ = syscall.Kill(pm, syscall.SIGKILL)
	}
	v := waitFor(t, c, 90*time.Second, "a replica takes over while the config key is invalid", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.Name != oldLeader && l.Role == cluster.RolePrimary && l.State == cluster.StateRunning
	})
	t.Logf("new leader %s with an invalid config key: %s", v.LeaderName(), describe(v))
	eventually(t, 30*time.Second, "writes on the new leader", func() error {
		return execOn(t, c, v.LeaderName(), "CREATE TABLE IF NOT EXISTS after_failover (id int)")
	})

	// regent edit-config --replace writes a valid one; the members apply it.
	replacement := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(replacement, []byte("ttl: 5\nloop_wait: 1\nretry_timeout: 1\ncheck_timeline: true\npostgresql:\n  use_pg_rewind: true\n  parameters:\n    max_connections: 150\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := cli(t, c, "edit-config", "--replace", replacement, "--force"); err != nil {
		t.Fatalf("regent edit-config --replace: %v\n%s", err, out)
	}
	waitFor(t, c, 30*time.Second, "a usable config key", func(v *cluster.Cluster) bool { return v.ConfigProblem == "" })
	for _, m := range c.Spec.Members {
		if m.Name == oldLeader {
			continue
		}
		eventually(t, 30*time.Second, m.Name+" no longer reports a config problem", func() error {
			if p := configProblemOf(t, c, m.Name); p != "" {
				return fmt.Errorf("config_problem = %q", p)
			}
			return nil
		})
	}
	if got := get(); !strings.Contains(got, `"check_timeline":true`) || strings.Contains(got, "thirty") {
		t.Errorf("replaced config = %s", got)
	}
}

// configProblemOf is regent.config_problem of a member's GET /patroni.
func configProblemOf(t *testing.T, c *localcluster.Cluster, member string) string {
	t.Helper()
	_, body := apiCall(t, c, member, http.MethodGet, "/patroni", nil, "none")
	var st struct {
		Regent struct {
			ConfigProblem string `json:"config_problem"`
		} `json:"regent"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("GET /patroni on %s: %v: %s", member, err, body)
	}
	return st.Regent.ConfigProblem
}
