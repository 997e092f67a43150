package operate

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/regent-ha/regent/internal/cluster"
)

func current() cluster.DynamicConfig {
	c := cluster.DefaultDynamicConfig()
	c.TTL = 10
	c.LoopWait = 2
	c.PostgreSQL.Parameters = map[string]string{"max_connections": "100", "work_mem": "4MB"}
	return c
}

func TestPatchConfig(t *testing.T) {
	tests := []struct {
		name  string
		patch string
		want  func(c *cluster.DynamicConfig) // applied to current() for the expected result
		err   string                         // substring of a BadRequestError
	}{
		{name: "empty patch", patch: `{}`, want: func(*cluster.DynamicConfig) {}},
		{name: "top-level field", patch: `{"maximum_lag_on_failover": 2097152}`,
			want: func(c *cluster.DynamicConfig) { c.MaximumLagOnFailover = 2 << 20 }},
		{name: "pause", patch: `{"pause": true}`, want: func(c *cluster.DynamicConfig) { c.Pause = true }},
		{name: "nested merge keeps siblings", patch: `{"postgresql": {"parameters": {"work_mem": "8MB", "shared_buffers": "1GB"}}}`,
			want: func(c *cluster.DynamicConfig) {
				c.PostgreSQL.Parameters = map[string]string{"max_connections": "100", "work_mem": "8MB", "shared_buffers": "1GB"}
			}},
		{name: "nested bool keeps parameters", patch: `{"postgresql": {"use_pg_rewind": false}}`,
			want: func(c *cluster.DynamicConfig) { c.PostgreSQL.UsePgRewind = false }},
		{name: "numbers and booleans keep their form", patch: `{"postgresql": {"parameters": {"max_connections": 200, "hot_standby": true, "ratio": 0.50}}}`,
			want: func(c *cluster.DynamicConfig) {
				c.PostgreSQL.Parameters = map[string]string{"max_connections": "200", "work_mem": "4MB", "hot_standby": "on", "ratio": "0.50"}
				c.PostgreSQL.ParameterForms = map[string]json.RawMessage{"max_connections": json.RawMessage("200"),
					"hot_standby": json.RawMessage("true"), "ratio": json.RawMessage("0.50")}
			}},
		{name: "null deletes a parameter", patch: `{"postgresql": {"parameters": {"work_mem": null}}}`,
			want: func(c *cluster.DynamicConfig) { c.PostgreSQL.Parameters = map[string]string{"max_connections": "100"} }},
		{name: "null restores a default", patch: `{"ttl": null, "loop_wait": null}`,
			want: func(c *cluster.DynamicConfig) { c.TTL, c.LoopWait = 5, 1 }},
		{name: "null section restores defaults", patch: `{"postgresql": null}`,
			want: func(c *cluster.DynamicConfig) { c.PostgreSQL = cluster.DefaultDynamicConfig().PostgreSQL }},
		{name: "unknown top-level key", patch: `{"tll": 5}`, err: `unknown key "tll"`},
		{name: "unknown nested key", patch: `{"postgresql": {"paramters": {"a": "b"}}}`, err: `unknown key "postgresql.paramters"`},
		{name: "every problem reported", patch: `{"x": 1, "ttl": "30"}`, err: `key "ttl": expected an integer, got "30"; unknown key "x"`},
		{name: "type error", patch: `{"ttl": "30"}`, err: `key "ttl": expected an integer, got "30"`},
		{name: "fraction for an integer", patch: `{"loop_wait": 1.5}`, err: `key "loop_wait": expected an integer, got 1.5`},
		{name: "bool type error", patch: `{"pause": "yes"}`, err: `key "pause": expected true or false`},
		{name: "float field takes integers", patch: `{"fence_timeout": 2, "ttl": 10}`, want: func(c *cluster.DynamicConfig) { c.FenceTimeout = 2 }},
		{name: "section type error", patch: `{"postgresql": []}`, err: `key "postgresql": expected an object, got a list`},
		{name: "parameter value type", patch: `{"postgresql": {"parameters": {"work_mem": {"a": 1}}}}`,
			err: `key "postgresql.parameters.work_mem": expected a string, number or boolean, got an object`},
		{name: "parameter name", patch: `{"postgresql": {"parameters": {"work mem": "1"}}}`, err: `"work mem" is not a parameter name`},
		{name: "custom parameter name", patch: `{"postgresql": {"parameters": {"pg_stat_statements.max": 1000}}}`,
			want: func(c *cluster.DynamicConfig) {
				c.PostgreSQL.Parameters["pg_stat_statements.max"] = "1000"
				c.PostgreSQL.ParameterForms = map[string]json.RawMessage{"pg_stat_statements.max": json.RawMessage("1000")}
			}},
		{name: "invalid timing", patch: `{"ttl": 3, "loop_wait": 2, "retry_timeout": 2}`,
			err: "invalid configuration: loop_wait + 2*retry_timeout must not exceed ttl: 2 + 2*2 > 3"},
		{name: "range errors joined", patch: `{"ttl": 1, "loop_wait": 0}`,
			err: "invalid configuration: ttl must be in [2, 3600] seconds, got 1; loop_wait must be in [1, 3600] seconds"},
		{name: "not an object", patch: `[1]`, err: "must be a JSON object, got a list"},
		{name: "empty body", patch: ``, err: "the configuration is empty"},
		{name: "bad JSON", patch: `{"ttl": }`, err: "invalid JSON"},
		{name: "trailing data", patch: `{} {}`, err: "unexpected data after"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur := current()
			got, err := PatchConfig(cur, []byte(tc.patch))
			if tc.err != "" {
				var b *BadRequestError
				if !errors.As(err, &b) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want a BadRequestError containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("PatchConfig: %v", err)
			}
			want := current()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if !reflect.DeepEqual(cur, current()) {
				t.Errorf("PatchConfig modified its input: %+v", cur)
			}
		})
	}
}

func TestReplaceConfig(t *testing.T) {
	got, err := ReplaceConfig([]byte(`{"ttl": 10, "loop_wait": 2, "pause": true, "postgresql": {"parameters": {"max_connections": 50}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.DefaultDynamicConfig()
	want.TTL, want.LoopWait, want.Pause = 10, 2, true
	want.PostgreSQL.Parameters = map[string]string{"max_connections": "50"}
	want.PostgreSQL.ParameterForms = map[string]json.RawMessage{"max_connections": json.RawMessage("50")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got, err := ReplaceConfig([]byte(`{}`)); err != nil || !reflect.DeepEqual(got, cluster.DefaultDynamicConfig()) {
		t.Errorf("empty document = %+v, %v; want the defaults", got, err)
	}
	if got, err := ReplaceConfig([]byte(`{"ttl": null}`)); err != nil || got.TTL != 5 {
		t.Errorf("null ttl = %+v, %v; want the default", got, err)
	}
	for doc, msg := range map[string]string{
		`{"ttl": 10, "bogus": 1}`:              `unknown key "bogus"`,
		`{"retry_timeout": "1"}`:               `key "retry_timeout": expected an integer`,
		`{"ttl": 3, "loop_wait": 2}`:           "invalid configuration",
		`{"postgresql": {"use_pg_rewind": 1}}`: `key "postgresql.use_pg_rewind": expected true or false, got 1`,
		`"ttl"`:                                "must be a JSON object",
	} {
		_, err := ReplaceConfig([]byte(doc))
		var b *BadRequestError
		if !errors.As(err, &b) || !strings.Contains(err.Error(), msg) {
			t.Errorf("ReplaceConfig(%s) = %v, want a BadRequestError containing %q", doc, err, msg)
		}
	}
}

// Keys of Patroni's configuration Regent does not implement are accepted
// and kept; a value the config key holds that cannot be decoded blocks a
// patch until the patch fixes it, and PUT replaces it.
func TestPatchConfigPatroniKeys(t *testing.T) {
	cur, problems, err := cluster.DecodeDynamicConfig([]byte(`{"ttl": 10, "loop_wait": 2, "slots": {"s": {"type": "physical"}},
		"postgresql": {"use_slots": false, "parameters": {"max_connections": 150}}}`))
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	got, err := PatchConfig(cur, []byte(`{"check_timeline": true, "standby_cluster": {"host": "10.0.0.1", "port": 5432},
		"postgresql": {"pg_hba": ["host all all 0.0.0.0/0 md5"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	for _, want := range []string{`"check_timeline":true`, `"standby_cluster":{"host":"10.0.0.1","port":5432}`,
		`"slots":{"s":{"type":"physical"}}`, `"use_slots":false`, `"pg_hba":["host all all 0.0.0.0/0 md5"]`, `"max_connections":150`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("patched config %s lacks %s", b, want)
		}
	}
	if got, err = PatchConfig(got, []byte(`{"slots": null}`)); err != nil || strings.Contains(mustJSON(t, got), `"slots"`) {
		t.Errorf("null did not delete slots: %s, %v", mustJSON(t, got), err)
	}

	bad, problems, _ := cluster.DecodeDynamicConfig([]byte(`{"ttl": "10", "check_timeline": true}`))
	if len(problems) == 0 {
		t.Fatal("no problem")
	}
	if _, err := PatchConfig(bad, []byte(`{"loop_wait": 1}`)); err == nil || !strings.Contains(err.Error(), `key "ttl": expected an integer, got "10"`) {
		t.Errorf("patch over an invalid ttl: %v", err)
	}
	fixed, err := PatchConfig(bad, []byte(`{"ttl": 10}`))
	if err != nil || fixed.TTL != 10 || !strings.Contains(mustJSON(t, fixed), `"check_timeline":true`) {
		t.Errorf("patch fixing ttl = %s, %v", mustJSON(t, fixed), err)
	}
}

func mustJSON(t *testing.T, c cluster.DynamicConfig) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
