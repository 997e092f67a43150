package ctl

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/regent-ha/regent/internal/cluster"
)

// doc parses a JSON document for tests.
func doc(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := decodeJSONMap([]byte(s))
	if err != nil {
		t.Fatalf("bad test document %s: %v", s, err)
	}
	return m
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSetDotted(t *testing.T) {
	base := `{"ttl":5,"postgresql":{"use_pg_rewind":true,"parameters":{"work_mem":"4MB"}}}`
	cases := []struct {
		name, arg, want, err string
	}{
		{"top-level int", "ttl=10", `{"postgresql":{"parameters":{"work_mem":"4MB"},"use_pg_rewind":true},"ttl":10}`, ""},
		{"nested bool", "postgresql.use_pg_rewind=false", `{"postgresql":{"parameters":{"work_mem":"4MB"},"use_pg_rewind":false},"ttl":5}`, ""},
		{"float", "safety_margin=0.5", `{"postgresql":{"parameters":{"work_mem":"4MB"},"use_pg_rewind":true},"safety_margin":0.5,"ttl":5}`, ""},
		{"string", "postgresql.parameters.work_mem=8MB", `{"postgresql":{"parameters":{"work_mem":"8MB"},"use_pg_rewind":true},"ttl":5}`, ""},
		{"quoted string", "postgresql.parameters.x='on'", `{"postgresql":{"parameters":{"work_mem":"4MB","x":"on"},"use_pg_rewind":true},"ttl":5}`, ""},
		{"creates mappings", "a.b.c=1", `{"a":{"b":{"c":1}},"postgresql":{"parameters":{"work_mem":"4MB"},"use_pg_rewind":true},"ttl":5}`, ""},
		{"null deletes", "ttl=null", `{"postgresql":{"parameters":{"work_mem":"4MB"},"use_pg_rewind":true}}`, ""},
		{"null deletes nested", "postgresql.parameters.work_mem=null", `{"postgresql":{"parameters":{},"use_pg_rewind":true},"ttl":5}`, ""},
		{"null below missing key is a no-op", "nosuch.key=null", base, ""},
		{"below a scalar", "ttl.x=1", "", "ttl is not a mapping"},
		{"no value", "ttl=", "", "ttl=null"},
		{"no equals", "ttl", "", "key=value"},
		{"empty element", "postgresql..x=1", "", "empty path element"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := doc(t, base)
			path, v, err := ParseAssignment(tc.arg)
			if err == nil {
				err = SetPath(d, path, v)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := jsonOf(t, d); got != jsonOf(t, doc(t, tc.want)) {
				t.Fatalf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseParameterKeepsText(t *testing.T) {
	path, v, err := ParseParameter("auto_explain.log_min_duration=200")
	if err != nil || !reflect.DeepEqual(path, []string{"postgresql", "parameters", "auto_explain.log_min_duration"}) || v != "200" {
		t.Fatalf("ParseParameter = %v %#v %v", path, v, err)
	}
	if _, v, _ := ParseParameter("work_mem=null"); v != nil {
		t.Fatalf("null parameter = %#v", v)
	}
	if _, _, err := ParseParameter("=1"); err == nil {
		t.Fatal("empty name accepted")
	}
}

func TestMergePatch(t *testing.T) {
	cases := []struct{ name, old, new, want string }{
		{"identical", `{"a":1,"b":{"c":2}}`, `{"a":1,"b":{"c":2}}`, `{}`},
		{"changed scalar", `{"a":1,"b":2}`, `{"a":3,"b":2}`, `{"a":3}`},
		{"added key", `{"a":1}`, `{"a":1,"b":true}`, `{"b":true}`},
		{"removed key is null", `{"a":1,"b":2}`, `{"a":1}`, `{"b":null}`},
		{"nested change and removal", `{"p":{"x":"1","y":"2"},"t":5}`, `{"p":{"x":"3"},"t":5}`, `{"p":{"x":"3","y":null}}`},
		{"mapping replaced by scalar", `{"p":{"x":1}}`, `{"p":7}`, `{"p":7}`},
		{"scalar replaced by mapping", `{"p":7}`, `{"p":{"x":1}}`, `{"p":{"x":1}}`},
		{"int equals float", `{"f":1}`, `{"f":1.0}`, `{}`},
		{"list changed", `{"l":[1,2]}`, `{"l":[1]}`, `{"l":[1]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, nw := doc(t, tc.old), doc(t, tc.new)
			patch := MergePatch(old, nw)
			if got := jsonOf(t, patch); got != jsonOf(t, doc(t, tc.want)) {
				t.Fatalf("patch %s, want %s", got, tc.want)
			}
			// Applying the patch to old gives new (RFC 7386 round trip).
			applied := CloneDoc(old)
			ApplyMergePatch(applied, patch)
			if !Equal(applied, nw) {
				t.Fatalf("old+patch = %s, want %s", jsonOf(t, applied), tc.new)
			}
		})
	}
}

func TestRenderYAMLUsesJSONKeysAndExactNumbers(t *testing.T) {
	cfg := cluster.DefaultDynamicConfig()
	cfg.PostgreSQL.Parameters = map[string]string{"work_mem": "8MB"}
	m, err := ConfigMap(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	y, err := RenderYAML(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"maximum_lag_on_failover: 1048576\n", "ttl: 5\n", "safety_margin: 0.5\n", "postgresql:\n  parameters:\n    work_mem: 8MB\n  use_pg_rewind: true\n"} {
		if !strings.Contains(y, want) {
			t.Errorf("YAML lacks %q:\n%s", want, y)
		}
	}
	back, err := ParseDocument([]byte(y))
	if err != nil || !Equal(back, m) {
		t.Fatalf("YAML does not round-trip: %v\n%s", err, y)
	}
	if _, err := ConfigMap(nil); err == nil {
		t.Fatal("nil config accepted")
	}
}

func TestParseDocument(t *testing.T) {
	if m, err := ParseDocument([]byte(`{"ttl": 10, "postgresql": {"parameters": {"x": null}}}`)); err != nil || m["ttl"] != int64(10) {
		t.Fatalf("JSON document: %v %v", m, err)
	}
	if m, err := ParseDocument(nil); err != nil || len(m) != 0 {
		t.Fatalf("empty document: %v %v", m, err)
	}
	if _, err := ParseDocument([]byte("- a\n- b\n")); err == nil {
		t.Fatal("list accepted as a document")
	}
	if _, err := ParseDocument([]byte("ttl: [\n")); err == nil || !strings.Contains(err.Error(), "invalid YAML") {
		t.Fatalf("bad YAML: %v", err)
	}
}

func TestBuildConfig(t *testing.T) {
	cfg := cluster.DefaultDynamicConfig()
	cfg.PostgreSQL.Parameters = map[string]string{"work_mem": "4MB", "shared_buffers": "128MB"}
	old, err := ConfigMap(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"apply.yaml":   "loop_wait: 2\npostgresql:\n  parameters:\n    shared_buffers: null\n    max_connections: 200\n    hot_standby: true\n",
		"replace.yaml": "ttl: 9\nloop_wait: 1\nretry_timeout: 1\nmaximum_lag_on_failover: null\n",
	}
	read := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	t.Run("apply then flags", func(t *testing.T) {
		d, replace, err := BuildConfig(old, EditConfigOptions{Apply: "apply.yaml", Set: []string{"ttl=10"}, PGParams: []string{"work_mem=8MB"}}, read)
		if err != nil || replace {
			t.Fatalf("err %v replace %v", err, replace)
		}
		want := `{"loop_wait":2,"ttl":10,"postgresql":{"parameters":{"hot_standby":"true","max_connections":"200","shared_buffers":null,"work_mem":"8MB"}}}`
		if got := jsonOf(t, MergePatch(old, d)); got != jsonOf(t, doc(t, want)) {
			t.Fatalf("patch %s\nwant %s", got, want)
		}
		if jsonOf(t, old["postgresql"]) != `{"parameters":{"shared_buffers":"128MB","work_mem":"4MB"},"use_pg_rewind":true,"use_slots":true}` {
			t.Fatalf("old document modified: %s", jsonOf(t, old))
		}
	})
	t.Run("replace", func(t *testing.T) {
		d, replace, err := BuildConfig(old, EditConfigOptions{Replace: "replace.yaml"}, read)
		if err != nil || !replace {
			t.Fatalf("err %v replace %v", err, replace)
		}
		if jsonOf(t, d) != `{"loop_wait":1,"retry_timeout":1,"ttl":9}` {
			t.Fatalf("replaced document %s", jsonOf(t, d))
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, o := range []EditConfigOptions{
			{Apply: "apply.yaml", Replace: "replace.yaml"},
			{Apply: "missing.yaml"},
			{Set: []string{"ttl"}},
			{PGParams: []string{"novalue"}},
		} {
			if _, _, err := BuildConfig(old, o, read); err == nil {
				t.Errorf("%+v accepted", o)
			}
		}
	})
}

func TestConfigCheck(t *testing.T) {
	cfg := cluster.DefaultDynamicConfig()
	ok, _ := ConfigMap(&cfg)
	if err := ConfigCheck(ok); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	cases := []struct{ name, set, want string }{
		{"unknown key", "synchronous_modus=on", `unknown key "synchronous_modus"`},
		{"unknown nested key", "postgresql.use_slot=true", `unknown key "postgresql.use_slot"`},
		{"wrong type", "ttl=abc", `key "ttl": expected an integer, got "abc"`},
		{"timing rule", "ttl=2", "loop_wait + 2*retry_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := CloneDoc(ok)
			path, v, err := ParseAssignment(tc.set)
			if err != nil {
				t.Fatal(err)
			}
			if err := SetPath(d, path, v); err != nil {
				t.Fatal(err)
			}
			if err := ConfigCheck(d); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	d := CloneDoc(ok)
	_ = SetDotted(d, "postgresql.parameters.anything_at_all", "1")
	if err := ConfigCheck(d); err != nil {
		t.Fatalf("parameter refused: %v", err)
	}
}
