package cluster

import (
	"encoding/json"
	"strings"
	"testing"
)

// patroniConfig is the config key as Patroni 4 and patronictl edit-config
// write it: numbers and booleans among the parameters, and keys Regent does
// not implement (docs/rest_api.rst "Config endpoint", dynamic_configuration.rst).
const patroniConfig = `{"ttl": 30, "loop_wait": 10, "retry_timeout": 10, "maximum_lag_on_failover": 1048576,
 "check_timeline": true, "member_slots_ttl": "30min", "primary_stop_timeout": 0,
 "slots": {"keep_me": {"type": "physical"}, "logical1": {"type": "logical", "database": "app", "plugin": "pgoutput"}},
 "ignore_slots": [{"name": "ext_slot", "type": "physical"}],
 "standby_cluster": null,
 "postgresql": {"use_slots": true, "use_pg_rewind": true,
   "pg_hba": ["host replication replicator 127.0.0.1/32 md5"],
   "parameters": {"hot_standby": "on", "wal_level": "hot_standby", "max_wal_senders": 5,
     "max_replication_slots": 5, "max_connections": "100", "wal_log_hints": true, "fsync": false,
     "random_page_cost": 1.1}}}`

func TestDecodePatroniConfig(t *testing.T) {
	t.Parallel()
	cfg, problems, err := DecodeDynamicConfig([]byte(patroniConfig))
	if err != nil || len(problems) > 0 {
		t.Fatalf("decode: %v %q", err, problems)
	}
	if cfg.TTL != 30 || cfg.LoopWait != 10 || !cfg.PostgreSQL.UsePgRewind {
		t.Errorf("known keys: %+v", cfg)
	}
	want := map[string]string{"hot_standby": "on", "wal_level": "hot_standby", "max_wal_senders": "5",
		"max_replication_slots": "5", "max_connections": "100", "wal_log_hints": "on", "fsync": "off",
		"random_page_cost": "1.1"}
	for k, v := range want {
		if got := cfg.PostgreSQL.Parameters[k]; got != v {
			t.Errorf("parameter %s = %q, want %q", k, got, v)
		}
	}
	// json.Unmarshal (strict) accepts it too.
	var strict DynamicConfig
	if err := json.Unmarshal([]byte(patroniConfig), &strict); err != nil {
		t.Errorf("json.Unmarshal: %v", err)
	}
}

// A rewrite keeps every key and the JSON form of every unchanged value.
func TestRewriteKeepsPatroniKeysAndForms(t *testing.T) {
	t.Parallel()
	cfg, _, err := DecodeDynamicConfig([]byte(patroniConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.PostgreSQL.Parameters["max_connections"] = "150"
	cfg.PostgreSQL.Parameters["max_wal_senders"] = "10" // changed: written as a string
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got, orig map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(patroniConfig), &orig)
	// member_slots_ttl is implemented (cluster.Seconds): "30min" is kept
	// as the seconds it means.
	if got["member_slots_ttl"] != float64(1800) {
		t.Errorf("member_slots_ttl = %v, want 1800 (%s)", got["member_slots_ttl"], b)
	}
	for _, k := range []string{"check_timeline", "primary_stop_timeout", "slots", "ignore_slots", "standby_cluster"} {
		ob, _ := json.Marshal(orig[k])
		gb, _ := json.Marshal(got[k])
		if _, ok := got[k]; !ok || string(ob) != string(gb) {
			t.Errorf("key %s = %s, want %s (%s)", k, gb, ob, b)
		}
	}
	pg := got["postgresql"].(map[string]any)
	if pg["use_slots"] != true || pg["pg_hba"] == nil {
		t.Errorf("postgresql section lost keys: %s", b)
	}
	params := pg["parameters"].(map[string]any)
	for k, v := range map[string]any{"max_replication_slots": 5.0, "wal_log_hints": true, "fsync": false,
		"random_page_cost": 1.1, "hot_standby": "on", "max_connections": "150", "max_wal_senders": "10"} {
		if params[k] != v {
			t.Errorf("parameter %s written as %#v, want %#v", k, params[k], v)
		}
	}
	if !strings.HasPrefix(string(b), `{"ttl":30,`) {
		t.Errorf("field order changed: %s", b)
	}
}

// A value of the wrong type is a problem of its key only; it is kept
// verbatim, and the other keys are decoded.
func TestDecodeKeepsOtherKeysOnAProblem(t *testing.T) {
	t.Parallel()
	in := `{"ttl": "thirty", "loop_wait": 2, "postgresql": {"use_pg_rewind": "yes",
		"parameters": {"work_mem": "8MB", "bad": {"x": 1}}}, "check_timeline": true}`
	cfg, problems, err := DecodeDynamicConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LoopWait != 2 || cfg.TTL != DefaultDynamicConfig().TTL {
		t.Errorf("ttl %d loop_wait %d", cfg.TTL, cfg.LoopWait)
	}
	joined := strings.Join(problems, "\n")
	for _, want := range []string{`key "ttl": expected an integer, got "thirty"`,
		`key "postgresql.use_pg_rewind": expected true or false, got "yes"`,
		`key "postgresql.parameters.bad": expected a string, number or boolean`} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems %q lack %q", problems, want)
		}
	}
	b, _ := json.Marshal(cfg)
	for _, want := range []string{`"ttl":"thirty"`, `"use_pg_rewind":"yes"`, `"bad":{"x":1}`, `"check_timeline":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("rewrite %s lacks %s", b, want)
		}
	}
	var strict DynamicConfig
	if err := json.Unmarshal([]byte(in), &strict); err == nil {
		t.Error("json.Unmarshal accepted a value of the wrong type")
	}
	for _, bad := range []string{`[1]`, `"x"`, `{"ttl":`} {
		if _, _, err := DecodeDynamicConfig([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestIsPatroniOnlyKey(t *testing.T) {
	t.Parallel()
	// slots, ignore_slots, member_slots_ttl and postgresql.use_slots are
	// implemented (internal/slots): no longer Patroni-only.
	for k, want := range map[string]bool{"slots": false, "postgresql.use_slots": false, "standby_cluster": true,
		"check_timeline": true, "postgresql.recovery_conf": true,
		"ttl": false, "postgresql.parameters": false, "tll": false, "postgresql.foo": false} {
		if got := IsPatroniOnlyKey(k); got != want {
			t.Errorf("IsPatroniOnlyKey(%q) = %v", k, got)
		}
	}
}
