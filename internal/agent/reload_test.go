package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/config"
)

// memberFile is a member file with the settings the tests change.
const memberFile = `scope: demo
name: pg-1
etcd:
  endpoints: [http://127.0.0.1:2379]
restapi:
  listen: 127.0.0.1:8008
  authentication: {username: regent, password: PW_API}
log: {level: LEVEL}
tags: {noloadbalance: NOLB}
postgresql:
  listen: 127.0.0.1:PORT
  data_dir: DATA
  pg_hba: ["host all all 127.0.0.1/32 HBA"]
  parameters: {work_mem: WORK_MEM}
  authentication:
    superuser: {password: PW_SU}
    replication: {password: repl-secret}
`

type memberVals struct{ apiPW, level, nolb, port, data, hba, workMem, suPW string }

func (v memberVals) render() string {
	return strings.NewReplacer("PW_API", v.apiPW, "LEVEL", v.level, "NOLB", v.nolb, "PORT", v.port,
		"DATA", v.data, "HBA", v.hba, "WORK_MEM", v.workMem, "PW_SU", v.suPW).Replace(memberFile)
}

var firstVals = memberVals{"api-1", "info", "false", "5432", "/data", "trust", "4MB", "su-1"}

func parse(t *testing.T, v memberVals) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(v.render()), "member.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPlanReload(t *testing.T) {
	old := parse(t, firstVals)
	if rep := planReload(old, parse(t, firstVals)); len(rep.Applied)+len(rep.NotApplied) != 0 {
		t.Errorf("unchanged file: %+v", rep)
	}
	v := firstVals
	v.apiPW, v.level, v.nolb, v.hba, v.workMem, v.suPW = "api-2", "debug", "true", "scram-sha-256", "8MB", "su-2"
	v.port, v.data = "5433", "/other"
	rep := planReload(old, parse(t, v))
	wantApplied := []string{"restapi.authentication", "postgresql.authentication.superuser.password",
		"postgresql.parameters", "postgresql.pg_hba", "tags.noloadbalance", "log.level"}
	for _, w := range wantApplied {
		if !slices.Contains(rep.Applied, w) {
			t.Errorf("applied %v lacks %s", rep.Applied, w)
		}
	}
	notApplied := strings.Join(rep.NotApplied, "\n")
	for _, w := range []string{"postgresql.listen: needs a restart", "postgresql.data_dir: needs a restart",
		"postgresql.connect_address: needs a restart"} { // connect_address defaults to listen
		if !strings.Contains(notApplied, w) {
			t.Errorf("not applied:\n%s\nlacks %q", notApplied, w)
		}
	}
	if len(rep.NotApplied) != 3 {
		t.Errorf("not applied: %q, want listen, connect_address and data_dir only", rep.NotApplied)
	}

	tlsOn := parse(t, firstVals)
	tlsOn.RestAPI.CertFile, tlsOn.RestAPI.KeyFile = "/c.pem", "/k.pem"
	rep = planReload(old, tlsOn)
	if len(rep.Applied) != 0 || len(rep.NotApplied) != 2 || !strings.Contains(rep.NotApplied[0], "between HTTP and HTTPS") {
		t.Errorf("turning TLS on: %+v", rep)
	}
	boot := parse(t, firstVals)
	boot.Bootstrap.DCS.TTL = 99
	if rep := planReload(old, boot); len(rep.NotApplied) != 1 || !strings.Contains(rep.NotApplied[0], "edit-config") {
		t.Errorf("bootstrap.dcs change: %+v", rep)
	}
}

// TestReloadAppliesTheFile reloads a member (PostgreSQL not running) from
// a changed file and checks each setting where it is used; then a broken
// file, which must change nothing.
func TestReloadAppliesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "member.yaml")
	first := firstVals
	first.data = filepath.Join(dir, "data")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(first.render())
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	a, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Skipf("no PostgreSQL server installed: %v", err)
	}
	a.SetConfigPath(path)
	a.SetLogLevel(level)
	a.api = api.New(a.pub, nil, a.log)

	next := first
	next.apiPW, next.level, next.nolb, next.hba, next.workMem, next.suPW, next.port =
		"api-2", "debug", "true", "scram-sha-256", "8MB", "su-2", "5433"
	write(next.render())
	rep, err := a.reload(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.NotApplied) != 2 || !strings.HasPrefix(rep.NotApplied[0], "postgresql.listen:") {
		t.Errorf("not applied = %q, want postgresql.listen and connect_address", rep.NotApplied)
	}
	if !a.cfg.Tags.NoLoadBalance {
		t.Error("tags not reloaded")
	}
	if got := a.cfg.PostgreSQL.Parameters["work_mem"]; got != "8MB" {
		t.Errorf("work_mem = %q", got)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level = %v, want debug", level.Level())
	}
	hba, su, _ := a.pg.Access()
	if len(hba) != 1 || !strings.HasSuffix(hba[0], "scram-sha-256") || su.Password != "su-2" {
		t.Errorf("PostgreSQL access: hba %q, superuser password %q", hba, su.Password)
	}
	if pw, _ := a.cfg.RestAPI.Authentication.Password.Value(); pw != "api-2" {
		t.Errorf("restapi password = %q", pw)
	}
	if a.cfg.PostgreSQL.Listen != "127.0.0.1:5432" {
		t.Errorf("postgresql.listen changed to %q without a restart", a.cfg.PostgreSQL.Listen)
	}

	write(strings.Replace(next.render(), "tags:", "tagz:", 1))
	if _, err := a.reload(context.Background(), "test"); err == nil || !strings.Contains(err.Error(), "tagz") {
		t.Fatalf("broken file: err = %v", err)
	}
	if !a.cfg.Tags.NoLoadBalance || level.Level() != slog.LevelDebug {
		t.Error("a rejected file changed the running configuration")
	}
}
