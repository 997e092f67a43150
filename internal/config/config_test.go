package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/config"
)

// base is a minimal valid configuration. postgresql is its last section, so
// tests can append keys to it ("  listen: ...") or add top-level sections.
const base = `scope: demo
name: pg-1
etcd:
  endpoints: [http://127.0.0.1:2379]
postgresql:
  data_dir: /data
  authentication:
    superuser: {password: su-secret}
    replication: {password: repl-secret}
`

// without removes one line from base.
func without(line string) string {
	if !strings.Contains(base, line+"\n") {
		panic("base has no line " + line)
	}
	return strings.Replace(base, line+"\n", "", 1)
}

func mustParse(t *testing.T, data string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(data), "member.yaml")
	if err != nil {
		t.Fatalf("Parse: %v\n--- input ---\n%s", err, data)
	}
	return c
}

func value(t *testing.T, s config.Secret) string {
	t.Helper()
	v, err := s.Value()
	if err != nil {
		t.Fatalf("Secret.Value: %v", err)
	}
	return v
}

func TestLoadExample(t *testing.T) {
	c, err := config.Load(filepath.Join("testdata", "member.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"scope", c.Scope, "demo"},
		{"name", c.Name, "pg-1"},
		{"prefix", c.Prefix(), "/service/demo/"},
		{"api url", c.APIURL(), "http://10.0.0.21:8008/patroni"},
		{"conn url", c.ConnURL(), "postgres://10.0.0.21:5432/postgres"},
		{"endpoints", len(c.Etcd.Endpoints), 3},
		{"dial timeout", c.Etcd.DialTimeout, config.Duration(2 * time.Second)},
		{"etcd password set", c.Etcd.Password.IsSet(), false},
		{"data dir", c.PostgreSQL.DataDir, "/var/lib/postgresql/15/main"},
		{"superuser", c.PostgreSQL.Authentication.Superuser.Username, "postgres"},
		{"superuser password", value(t, c.PostgreSQL.Authentication.Superuser.Password), "change-me-superuser"},
		{"replication password", value(t, c.PostgreSQL.Authentication.Replication.Password), "change-me-replication"},
		{"local parameter", c.PostgreSQL.Parameters["shared_buffers"], "1GB"},
		{"pg_hba lines", len(c.PostgreSQL.PgHBA), 4},
		{"dcs int parameter", c.Bootstrap.DCS.PostgreSQL.Parameters["max_connections"], "200"},
		{"dcs bool parameter", c.Bootstrap.DCS.PostgreSQL.Parameters["hot_standby"], "on"},
		{"dcs ttl", c.Bootstrap.DCS.TTL, 5},
		{"failover priority", c.Tags.Priority(), 1},
		{"log", c.Log, config.LogConfig{Level: "info", Format: "text"}},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.what, tc.got, tc.want)
		}
	}
}

// TestExampleDocumentsEveryKey keeps testdata/member.yaml complete: every
// key of Config must appear in it.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "member.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	var walkNode func(n *yaml.Node, path string)
	walkNode = func(n *yaml.Node, path string) {
		if n.Kind == yaml.DocumentNode {
			walkNode(n.Content[0], path)
			return
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := strings.TrimPrefix(path+"."+n.Content[i].Value, ".")
			present[p] = true
			walkNode(n.Content[i+1], p)
		}
	}
	walkNode(&doc, "")

	leaf := map[reflect.Type]bool{reflect.TypeFor[config.Secret](): true, reflect.TypeFor[config.Duration](): true}
	var walkType func(t reflect.Type, path string, visit func(string))
	walkType = func(typ reflect.Type, path string, visit func(string)) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" || name == "-" {
				continue // custom tags (any key), or not in the file
			}
			p := strings.TrimPrefix(path+"."+name, ".")
			visit(p)
			if f.Type.Kind() == reflect.Struct && !leaf[f.Type] {
				walkType(f.Type, p, visit)
			}
		}
	}
	walkType(reflect.TypeFor[config.Config](), "", func(p string) {
		if !present[p] {
			t.Errorf("testdata/member.yaml does not document key %q", p)
		}
	})
}

func TestDefaults(t *testing.T) {
	wantHBA := []string{
		"local all all scram-sha-256",
		"host all all 127.0.0.1/32 scram-sha-256",
		"host all all ::1/128 scram-sha-256",
		"host replication all 127.0.0.1/32 scram-sha-256",
		"host replication all ::1/128 scram-sha-256",
		"host all all 0.0.0.0/0 scram-sha-256",
		"host replication all 0.0.0.0/0 scram-sha-256",
	}
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *config.Config)
	}{
		{"minimal file gets every default", base, func(t *testing.T, c *config.Config) {
			want := config.Default()
			want.Scope, want.Name = "demo", "pg-1"
			want.Etcd.Endpoints = []string{"http://127.0.0.1:2379"}
			want.PostgreSQL.DataDir = "/data"
			want.PostgreSQL.Authentication.Superuser.Password = c.PostgreSQL.Authentication.Superuser.Password
			want.PostgreSQL.Authentication.Replication.Password = c.PostgreSQL.Authentication.Replication.Password
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("got  %+v\nwant %+v", *c, want)
			}
			if c.Namespace != "/service" || c.RestAPI.Listen != "127.0.0.1:8008" || c.RestAPI.ConnectAddress != "127.0.0.1:8008" ||
				c.PostgreSQL.Listen != "127.0.0.1:5432" || c.PostgreSQL.ConnectAddress != "127.0.0.1:5432" ||
				c.PostgreSQL.BinDir != "" || c.PostgreSQL.RunAsUser != "postgres" ||
				c.PostgreSQL.Authentication.Superuser.Username != "postgres" ||
				c.PostgreSQL.Authentication.Replication.Username != "replicator" ||
				c.Etcd.DialTimeout != config.Duration(2*time.Second) || c.Log.Level != "info" || c.Log.Format != "text" {
				t.Errorf("unexpected defaults: %+v", *c)
			}
			if !reflect.DeepEqual(c.PostgreSQL.PgHBA, wantHBA) {
				t.Errorf("pg_hba = %q, want %q", c.PostgreSQL.PgHBA, wantHBA)
			}
			if !reflect.DeepEqual(c.Bootstrap.DCS, cluster.DefaultDynamicConfig()) {
				t.Errorf("bootstrap.dcs = %+v, want the cluster defaults", c.Bootstrap.DCS)
			}
		}},
		{"connect addresses follow listen", base + "  listen: 10.0.0.5:5433\nrestapi:\n  listen: 10.0.0.5:8009\n", func(t *testing.T, c *config.Config) {
			if c.PostgreSQL.ConnectAddress != "10.0.0.5:5433" || c.RestAPI.ConnectAddress != "10.0.0.5:8009" {
				t.Errorf("connect addresses = %q, %q", c.PostgreSQL.ConnectAddress, c.RestAPI.ConnectAddress)
			}
		}},
		{"dcs keys override single fields", base + "bootstrap:\n  dcs:\n    ttl: 10\n    postgresql:\n      parameters: {max_connections: 50}\n", func(t *testing.T, c *config.Config) {
			want := cluster.DefaultDynamicConfig()
			want.TTL = 10
			want.PostgreSQL.Parameters = map[string]string{"max_connections": "50"}
			if !reflect.DeepEqual(c.Bootstrap.DCS, want) {
				t.Errorf("bootstrap.dcs = %+v, want %+v", c.Bootstrap.DCS, want)
			}
		}},
		{"synchronous_mode quorum", base + "bootstrap:\n  dcs: {synchronous_mode: quorum, synchronous_node_count: 2, synchronous_mode_strict: true}\n", func(t *testing.T, c *config.Config) {
			d := c.Bootstrap.DCS
			if d.SynchronousMode != cluster.SyncQuorum || d.SynchronousNodeCount != 2 || !d.SynchronousModeStrict {
				t.Errorf("bootstrap.dcs = %+v", d)
			}
		}},
		{"parameters keep scalars as written", base + "  parameters: {max_connections: 100, hot_standby: true, fsync: off, ratio: 0.50, archive_command: ''}\n", func(t *testing.T, c *config.Config) {
			want := map[string]string{"max_connections": "100", "hot_standby": "true", "fsync": "off", "ratio": "0.50", "archive_command": ""}
			if !reflect.DeepEqual(c.PostgreSQL.Parameters, want) {
				t.Errorf("parameters = %q, want %q", c.PostgreSQL.Parameters, want)
			}
		}},
		{"empty values keep defaults", base + "namespace:\nrestapi:\nlog: {level: }\n", func(t *testing.T, c *config.Config) {
			if c.Namespace != "/service" || c.RestAPI.Listen != "127.0.0.1:8008" || c.Log.Level != "info" {
				t.Errorf("defaults lost: %+v", *c)
			}
		}},
		{"given pg_hba replaces the default", base + "  pg_hba: [\"host all all 10.0.0.0/8 md5\"]\n", func(t *testing.T, c *config.Config) {
			if !reflect.DeepEqual(c.PostgreSQL.PgHBA, []string{"host all all 10.0.0.0/8 md5"}) {
				t.Errorf("pg_hba = %q", c.PostgreSQL.PgHBA)
			}
		}},
		{"YAML merge keys", base + "  parameters:\n    <<: &common {work_mem: 4MB, max_connections: 10}\n    max_connections: 20\n", func(t *testing.T, c *config.Config) {
			want := map[string]string{"work_mem": "4MB", "max_connections": "20"}
			if !reflect.DeepEqual(c.PostgreSQL.Parameters, want) {
				t.Errorf("parameters = %q, want %q", c.PostgreSQL.Parameters, want)
			}
		}},
		{"tags", base + "tags: {nofailover: true, failover_priority: 3, replicatefrom: pg-2}\n", func(t *testing.T, c *config.Config) {
			if !c.Tags.NoFailover || c.Tags.FailoverPriority == nil || *c.Tags.FailoverPriority != 3 || c.Tags.ReplicateFrom != "pg-2" {
				t.Errorf("tags = %+v", c.Tags)
			}
		}},
		{"Patroni callbacks and hooks", base + "  callbacks:\n    on_start: /cb start\n    on_stop: /cb\n    on_restart: /cb\n    on_reload: /cb\n    on_role_change: '/cb x'\n  pre_promote: /pp\n  before_stop: /bs\n  callback_timeout: 5s\n", func(t *testing.T, c *config.Config) {
			want := config.CallbacksConfig{OnStart: "/cb start", OnStop: "/cb", OnRestart: "/cb", OnReload: "/cb", OnRoleChange: "/cb x"}
			if c.PostgreSQL.Callbacks != want || c.PostgreSQL.PrePromote != "/pp" || c.PostgreSQL.BeforeStop != "/bs" ||
				time.Duration(c.PostgreSQL.CallbackTimeout) != 5*time.Second {
				t.Errorf("postgresql = %+v", c.PostgreSQL)
			}
		}},
		{"custom and Patroni 4 tags", base + "tags:\n  dc: east\n  rack: 3\n  ssd: true\n  weight: 1.5\n  nofailovr: true\n  nostream: true\n  sync_priority: 2\n", func(t *testing.T, c *config.Config) {
			want := map[string]any{"dc": "east", "rack": 3, "ssd": true, "weight": 1.5, "nofailovr": true}
			if !reflect.DeepEqual(c.Tags.Custom, want) {
				t.Errorf("custom tags = %#v, want %#v", c.Tags.Custom, want)
			}
			if !c.Tags.NoStream || c.Tags.SyncPriority == nil || *c.Tags.SyncPriority != 2 || c.Tags.NoFailover {
				t.Errorf("tags = %+v", c.Tags)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustParse(t, tc.yaml))
		})
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"unknown top-level key", base + "scpoe: x\n", []string{`member.yaml: unknown key "scpoe" (line 10)`, `did you mean "scope"?`}},
		{"unknown nested key", base + "  paramters: {a: b}\n", []string{`member.yaml: unknown key "postgresql.paramters" (line 10)`, `did you mean "parameters"?`}},
		{"unknown dcs key", base + "bootstrap:\n  dcs:\n    tll: 30\n", []string{`unknown key "bootstrap.dcs.tll" (line 12)`, `did you mean "ttl"?`}},
		{"unknown deep dcs key", base + "bootstrap:\n  dcs:\n    postgresql:\n      xyz: 1\n", []string{`unknown key "bootstrap.dcs.postgresql.xyz" (line 13)`, "valid keys here are use_pg_rewind"}},
		{"custom tag not a scalar", base + "tags:\n  dc: [east, west]\n", []string{`tags.dc (line 11): expected a string, number or boolean, got a list`}},
		{"custom tag given twice", base + "tags:\n  dc: east\n  dc: west\n", []string{`tags.dc (line 12): key given twice`}},
		{"known tag of the wrong type", base + "tags:\n  sync_priority: high\n", []string{`tags.sync_priority (line 11): expected an integer, got "high"`}},
		{"duplicate key", base + "  authentication:\n", []string{`member.yaml: postgresql.authentication (line 10): key given twice`}},
		{"unknown password form", strings.Replace(base, "{password: su-secret}", "{password: {fil: /x}}", 1), []string{`unknown key "postgresql.authentication.superuser.password.fil"`, `did you mean "file"?`}},
		{"all unknown keys reported", base + "a: 1\nb: 2\n", []string{`unknown key "a"`, `unknown key "b"`}},
		{"wrong type", base + "bootstrap: {dcs: {ttl: ten}}\n", []string{`bootstrap.dcs.ttl (line 10): expected an integer, got "ten"`}},
		{"section not a mapping", base + "restapi: 8008\n", []string{`restapi (line 10): expected a mapping`}},
		{"endpoints not a list", strings.Replace(base, "[http://127.0.0.1:2379]", "http://127.0.0.1:2379", 1), []string{"etcd.endpoints (line 4): expected a list"}},
		{"missing scope", without("scope: demo"), []string{"member.yaml: scope is required"}},
		{"missing name", without("name: pg-1"), []string{"member.yaml: name is required"}},
		{"bad name", strings.Replace(base, "name: pg-1", "name: pg 1", 1), []string{`name "pg 1" may only contain`}},
		{"missing endpoints", without("  endpoints: [http://127.0.0.1:2379]"), []string{"etcd.endpoints is required"}},
		{"endpoint without scheme", strings.Replace(base, "http://127.0.0.1:2379", "127.0.0.1:2379", 1), []string{`etcd.endpoints[0] "127.0.0.1:2379" must start with http:// or https://`}},
		{"endpoint without port", strings.Replace(base, "http://127.0.0.1:2379", "http://etcd", 1), []string{`etcd.endpoints[0] "http://etcd" must name a host and a port`}},
		{"missing data_dir", without("  data_dir: /data"), []string{"postgresql.data_dir is required"}},
		{"missing password", strings.Replace(base, "{password: su-secret}", "{username: admin}", 1), []string{"postgresql.authentication.superuser.password is required", "{file: /path}", "{env: NAME}"}},
		{"listen without port", base + "restapi: {listen: localhost}\n", []string{`restapi.listen "localhost" is not host:port`}},
		{"listen with bad port", base + "  listen: 127.0.0.1:99999\n", []string{`postgresql.listen "127.0.0.1:99999": port "99999" is not a port number`}},
		{"unreachable connect address", base + "restapi: {listen: 0.0.0.0:8008}\n", []string{`restapi.connect_address "0.0.0.0:8008" cannot be reached by other members`}},
		{"same port", base + "  listen: 10.0.0.1:8008\nrestapi: {listen: 0.0.0.0:8008, connect_address: 10.0.0.1:8008}\n", []string{"use the same port on the same address"}},
		{"bad log level", base + "log: {level: verbose, format: xml}\n", []string{`log.level "verbose"`, `log.format "xml"`}},
		{"unknown synchronous_mode", base + "bootstrap:\n  dcs: {synchronous_mode: any}\n", []string{`synchronous_mode must be off, on or quorum, got "any"`}},
		{"timing invariant", base + "bootstrap:\n  dcs: {ttl: 3, loop_wait: 2, retry_timeout: 2}\n", []string{"member.yaml: bootstrap.dcs: loop_wait + 2*retry_timeout must not exceed ttl"}},
		{"missing TLS file", strings.Replace(base, "etcd:\n", "etcd:\n  cacert: "+filepath.Join(dir, "ca.pem")+"\n", 1), []string{"etcd.cacert file", "ca.pem", "no such file"}},
		{"cert without key", strings.Replace(base, "etcd:\n", "etcd:\n  cert: "+filepath.Join(dir, "nope.pem")+"\n", 1), []string{"etcd.cert file", "nope.pem", "etcd.cert and etcd.key must be given together"}},
		{"username without password", strings.Replace(base, "etcd:\n", "etcd:\n  username: root\n", 1), []string{"etcd.password is required when etcd.username is set"}},
		{"bad pg_hba", base + "  pg_hba: [\"all all trust\"]\n", []string{`postgresql.pg_hba[0] "all all trust" does not start with a connection type`}},
		{"empty file", "# nothing\n", []string{"member.yaml: the file is empty"}},
		{"syntax error", "scope: [\n", []string{"member.yaml: invalid YAML"}},
		{"two documents", base + "---\nscope: other\n", []string{"more than one YAML document"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml), "member.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "member.yaml")
	_, err := config.Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load of a missing file: %v, want an error naming %s", err, path)
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "su.pw"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := strings.Replace(base, "data_dir: /data", "data_dir: pgdata", 1)
	data = strings.Replace(data, "{password: su-secret}", "{password: {file: su.pw}}", 1)
	path := filepath.Join(dir, "member.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := filepath.Join(dir, "pgdata"); c.PostgreSQL.DataDir != want {
		t.Errorf("data_dir = %q, want %q", c.PostgreSQL.DataDir, want)
	}
	if got := value(t, c.PostgreSQL.Authentication.Superuser.Password); got != "from-file" {
		t.Errorf("password = %q, want the file's contents", got)
	}

	// Without a directory in the source, the current directory is the base.
	c, err = config.Parse([]byte(strings.Replace(base, "data_dir: /data", "data_dir: pgdata", 1)), "member.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "pgdata"); c.PostgreSQL.DataDir != want {
		t.Errorf("data_dir = %q, want %q", c.PostgreSQL.DataDir, want)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pwFile := write("pw", "s3cret\n")
	crlfFile := write("pw-crlf", "s3cret\r\n")
	emptyFile := write("empty", "\n")
	t.Setenv("REGENT_TEST_PW", "from-env")
	t.Setenv("REGENT_TEST_EMPTY", "")

	tests := []struct {
		name     string
		password string // YAML for the superuser password
		want     string
		wantErr  []string
	}{
		{"inline", `"inline pw"`, "inline pw", nil},
		{"inline number", `12345`, "12345", nil},
		{"file", "{file: " + pwFile + "}", "s3cret", nil},
		{"file with CRLF", "{file: " + crlfFile + "}", "s3cret", nil},
		{"env", "{env: REGENT_TEST_PW}", "from-env", nil},
		{"missing env var", "{env: REGENT_TEST_UNSET_VARIABLE}", "",
			[]string{`postgresql.authentication.superuser.password: environment variable "REGENT_TEST_UNSET_VARIABLE" is not set`}},
		{"empty env var", "{env: REGENT_TEST_EMPTY}", "", []string{`environment variable "REGENT_TEST_EMPTY" is empty`}},
		{"missing file", "{file: " + filepath.Join(dir, "nope") + "}", "",
			[]string{"cannot read password file", filepath.Join(dir, "nope"), "no such file"}},
		{"empty file", "{file: " + emptyFile + "}", "", []string{"is empty"}},
		{"file and env", "{file: " + pwFile + ", env: X}", "", []string{"exactly one of"}},
		{"list", "[a, b]", "", []string{"expected a password"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.Replace(base, "{password: su-secret}", "{password: "+tc.password+"}", 1)
			c, err := config.Parse([]byte(data), "member.yaml")
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Parse succeeded, want error containing %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not contain %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := value(t, c.PostgreSQL.Authentication.Superuser.Password); got != tc.want {
				t.Errorf("Value() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSecretResolvedOnce(t *testing.T) {
	t.Setenv("REGENT_TEST_PW", "first")
	c := mustParse(t, strings.Replace(base, "{password: su-secret}", "{password: {env: REGENT_TEST_PW}}", 1))
	t.Setenv("REGENT_TEST_PW", "second")
	if got := value(t, c.PostgreSQL.Authentication.Superuser.Password); got != "first" {
		t.Errorf("Value() = %q, want the value read at load time", got)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	data := strings.Replace(base, "etcd:\n", "etcd:\n  username: root\n  password: etcd-secret\n", 1)
	c := mustParse(t, data)
	secrets := []string{"etcd-secret", "su-secret", "repl-secret"}

	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("loaded", "config", c, "value", *c, "pw", c.Etcd.Password)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("loaded", "config", c, "pw", c.Etcd.Password)
	jsonOut, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	yamlOut, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v of *Config": fmt.Sprintf("%v", c),
		"slog text":     text.String(),
		"slog json":     js.String(),
		"json":          string(jsonOut),
		"yaml":          string(yamlOut),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
		outputs[verb] = fmt.Sprintf(verb, *c)
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) || strings.Contains(out, fmt.Sprintf("%x", s)) {
				t.Errorf("%s output reveals %q:\n%s", name, s, out)
			}
		}
		if !strings.Contains(out, "******") {
			t.Errorf("%s output has no redacted password:\n%s", name, out)
		}
	}
}

func TestPrefix(t *testing.T) {
	tests := []struct{ namespace, scope, want string }{
		{"/service", "demo", "/service/demo/"},
		{"/service/", "demo", "/service/demo/"},
		{"service", "demo", "/service/demo/"},
		{"//a//b//", "demo", "/a/b/demo/"},
		{"", "demo", "/demo/"},
		{"/", "demo", "/demo/"},
	}
	for _, tc := range tests {
		c := config.Config{Namespace: tc.namespace, Scope: tc.scope}
		if got := c.Prefix(); got != tc.want {
			t.Errorf("Prefix(%q, %q) = %q, want %q", tc.namespace, tc.scope, got, tc.want)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		yaml    string
		want    time.Duration
		wantErr bool
	}{
		{`2s`, 2 * time.Second, false},
		{`"500ms"`, 500 * time.Millisecond, false},
		{`1m30s`, 90 * time.Second, false},
		{`3`, 3 * time.Second, false},
		{`0.5`, 500 * time.Millisecond, false},
		{`"1.5"`, 1500 * time.Millisecond, false},
		{`abc`, 0, true},
		{`.nan`, 0, true},
		{`1e30`, 0, true},
		{`[1]`, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.yaml, func(t *testing.T) {
			data := strings.Replace(base, "etcd:\n", "etcd:\n  dial_timeout: "+tc.yaml+"\n", 1)
			c, err := config.Parse([]byte(data), "member.yaml")
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "etcd.dial_timeout (line 4)") {
					t.Fatalf("Parse: %v, want an error naming etcd.dial_timeout", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := time.Duration(c.Etcd.DialTimeout); got != tc.want {
				t.Errorf("dial_timeout = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := config.Parse([]byte(strings.Replace(base, "etcd:\n", "etcd:\n  dial_timeout: 0s\n", 1)), "m.yaml"); err == nil ||
		!strings.Contains(err.Error(), "etcd.dial_timeout must be positive") {
		t.Errorf("zero dial_timeout: %v, want a validation error", err)
	}
}

func TestDefaultIsIncomplete(t *testing.T) {
	c := config.Default()
	err := c.Validate()
	if err == nil {
		t.Fatal("Default().Validate() succeeded; scope, name, endpoints, data_dir and passwords have no defaults")
	}
	for _, w := range []string{"scope is required", "name is required", "etcd.endpoints is required", "postgresql.data_dir is required"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}

func TestMisspeltTagsAreNamed(t *testing.T) {
	tags := cluster.Tags{Custom: map[string]any{"nofailovr": true, "dc": "east", "sync_prority": 2}}
	got := config.MisspeltTags(tags)
	want := []string{
		"tags.nofailovr is not a tag Regent acts on (published as a custom tag); did you mean nofailover?",
		"tags.sync_prority is not a tag Regent acts on (published as a custom tag); did you mean sync_priority?",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("MisspeltTags = %q, want %q", got, want)
	}
}

// A Patroni member file's bootstrap.dcs may hold keys of Patroni's dynamic
// configuration Regent does not implement: they load, are kept verbatim,
// and the bootstrap writes them into the config key. A misspelt key is
// still refused.
func TestBootstrapDCSKeepsPatroniKeys(t *testing.T) {
	data := base + "bootstrap:\n  dcs:\n    check_timeline: true\n    standby_cluster:\n      host: 10.0.0.1\n      port: 5432\n" +
		"    postgresql:\n      recovery_conf:\n        restore_command: cp /arch/%f %p\n"
	c, err := config.Parse([]byte(data), "member.yaml")
	if err != nil {
		t.Fatalf("a Patroni bootstrap.dcs is refused: %v", err)
	}
	b, err := json.Marshal(c.Bootstrap.DCS)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"check_timeline":true`, `"standby_cluster":{"host":"10.0.0.1","port":5432}`,
		`"recovery_conf":{"restore_command":"cp /arch/%f %p"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config key from bootstrap.dcs %s lacks %s", b, want)
		}
	}
	if _, err := config.Parse([]byte(base+"bootstrap:\n  dcs:\n    check_timelin: true\n"), "member.yaml"); err == nil ||
		!strings.Contains(err.Error(), `did you mean "check_timeline"?`) {
		t.Errorf("misspelt Patroni key: %v", err)
	}
}
