package dcs

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
)

func TestLoadEmptyPrefix(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	cl, err := c.Load(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if cl.Scope != "test" {
		t.Errorf("scope = %q, want test", cl.Scope)
	}
	if cl.Leader != nil || cl.Config != nil || cl.Initialize != nil || cl.Failover != nil || cl.History != nil {
		t.Errorf("empty prefix decoded to %+v", cl)
	}
	if len(cl.Members) != 0 {
		t.Errorf("members = %v, want none", cl.Members)
	}
	if cl.Revision <= 0 {
		t.Errorf("revision = %d, want > 0", cl.Revision)
	}
}

func TestRoundtrip(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	lease := refresh(t, c)

	lsn := int64(0x3000060)
	m := &cluster.Member{
		ConnURL: "postgres://h1:5432/postgres", APIURL: "http://h1:8008/patroni",
		State: cluster.StateRunning, Role: cluster.RolePrimary, Version: "0.1.0",
		XLogLocation: &lsn, Timeline: 2, Tags: &cluster.Tags{NoSync: true},
	}
	if err := c.TouchMember(ctx, m); err != nil {
		t.Fatal(err)
	}
	cfg := cluster.DefaultDynamicConfig()
	cfg.TTL = 30
	cfg.PostgreSQL.Parameters = map[string]string{"max_connections": "100"}
	if ok, err := c.SetConfig(ctx, cfg, 0); err != nil || !ok {
		t.Fatalf("SetConfig = %v, %v", ok, err)
	}
	st := cluster.Status{Optime: 12345, Slots: map[string]int64{"n2": 100}}
	if err := c.WriteStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	h1 := cluster.HistoryEntry{Timeline: 1, SwitchLSN: 100, Reason: "no recovery target specified", Time: ts, NewLeader: "n1"}
	h2 := cluster.HistoryEntry{Timeline: 2, SwitchLSN: 200, Reason: "switchover", Time: ts, NewLeader: "n2"}
	for _, h := range []cluster.HistoryEntry{h1, h2, h2} {
		if err := c.AppendHistory(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetInitialize(ctx, "7268616322854375442"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetFailover(ctx, cluster.Failover{Leader: "n1", Member: "n2"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.AcquireLeader(ctx); err != nil || !ok {
		t.Fatalf("AcquireLeader = %v, %v", ok, err)
	}

	cl, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := cl.Member("n1")
	if got == nil {
		t.Fatalf("member n1 missing: %v", cl.Members)
	}
	if got.Name != "n1" || got.Revision == 0 {
		t.Errorf("member name/revision = %q/%d", got.Name, got.Revision)
	}
	want := *m
	want.Name, want.Revision = got.Name, got.Revision
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("member = %+v, want %+v", *got, want)
	}
	if cl.Config == nil || !reflect.DeepEqual(*cl.Config, cfg) || cl.ConfigRevision == 0 {
		t.Errorf("config = %+v @%d, want %+v", cl.Config, cl.ConfigRevision, cfg)
	}
	if !reflect.DeepEqual(cl.Status, st) {
		t.Errorf("status = %+v, want %+v", cl.Status, st)
	}
	if len(cl.History) != 2 || cl.History[0].NewLeader != "n1" || cl.History[1].Timeline != 2 ||
		!cl.History[1].Time.Equal(ts) || cl.History[1].Reason != "switchover" {
		t.Errorf("history = %+v", cl.History)
	}
	if cl.Initialize == nil || cl.Initialize.SystemID != "7268616322854375442" {
		t.Errorf("initialize = %+v", cl.Initialize)
	}
	if cl.Failover == nil || cl.Failover.Leader != "n1" || cl.Failover.Member != "n2" || cl.Failover.Revision == 0 {
		t.Errorf("failover = %+v", cl.Failover)
	}
	if cl.Leader == nil || cl.Leader.Name != "n1" || cl.Leader.Lease != int64(lease.ID) || cl.Leader.CreateRevision == 0 {
		t.Errorf("leader = %+v, lease %x", cl.Leader, lease.ID)
	}

	// Wire format: Patroni's plain leader, JSON member, history lines.
	r := raw(t, srv)
	resp, err := r.Get(ctx, testPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{}
	for _, kv := range resp.Kvs {
		vals[strings.TrimPrefix(string(kv.Key), testPrefix)] = string(kv.Value)
	}
	if vals["leader"] != "n1" {
		t.Errorf("raw leader = %q", vals["leader"])
	}
	var lines [][]any
	if err := json.Unmarshal([]byte(vals["history"]), &lines); err != nil {
		t.Fatalf("raw history %q: %v", vals["history"], err)
	}
	if len(lines) != 2 || len(lines[0]) != 5 || lines[1][0] != float64(2) || lines[1][4] != "n2" {
		t.Errorf("raw history = %s", vals["history"])
	}
	if !strings.Contains(vals["members/n1"], `"conn_url":"postgres://h1:5432/postgres"`) {
		t.Errorf("raw member = %s", vals["members/n1"])
	}
	if !strings.Contains(vals["failover"], `"member":"n2"`) {
		t.Errorf("raw failover = %s", vals["failover"])
	}

	if ok, err := c.ClearFailover(ctx, cl.Failover.Revision); err != nil || !ok {
		t.Fatalf("ClearFailover = %v, %v", ok, err)
	}
	if cl, err = c.Load(ctx); err != nil || cl.Failover != nil {
		t.Fatalf("after clear failover = %+v, %v", cl.Failover, err)
	}
}

func TestLoadDecodesPatroniValues(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	r := raw(t, srv)
	for k, v := range map[string]string{
		"config":         `{"ttl":30,"loop_wait":10,"postgresql":{"use_pg_rewind":false}}`,
		"members/good":   `{"conn_url":"postgres://h:5432/postgres","api_url":"http://h:8008/patroni","state":"running","role":"replica","version":"4.0.6","xlog_location":185863039192,"replication_state":"streaming","timeline":6}`,
		"members/broken": `{not json`,
		"failover":       `{}`,
		"optime/leader":  `999`,
		"sync":           `{"leader":"good"}`,
	} {
		if _, err := r.Put(ctx, testPrefix+k, v); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	def := cluster.DefaultDynamicConfig()
	if cl.Config.TTL != 30 || cl.Config.LoopWait != 10 || cl.Config.RetryTimeout != def.RetryTimeout ||
		cl.Config.FenceTimeout != def.FenceTimeout || cl.Config.PostgreSQL.UsePgRewind {
		t.Errorf("config = %+v", cl.Config)
	}
	if len(cl.Members) != 1 || cl.Member("good").XLogLocation == nil || *cl.Member("good").XLogLocation != 185863039192 {
		t.Errorf("members = %v", cl.Members)
	}
	if cl.Failover != nil {
		t.Errorf("failover {} decoded to %+v, want nil", cl.Failover)
	}
	if cl.Status.Optime != 999 {
		t.Errorf("legacy optime = %d, want 999", cl.Status.Optime)
	}

	if _, err := r.Put(ctx, testPrefix+"config", `{"ttl":`); err != nil {
		t.Fatal(err)
	}
	cl, err = c.Load(ctx)
	if err != nil || cl.Config != nil || !strings.Contains(cl.ConfigProblem, testPrefix+"config") {
		t.Fatalf("corrupt config: %+v, %v; want a view without config and a problem naming the key", cl, err)
	}
	if cl.Member("good") == nil || cl.Status.Optime != 999 {
		t.Errorf("corrupt config: the other keys were not decoded: %+v", cl)
	}
}

// The config key as patronictl edit-config -p writes it (E1): numbers
// among the parameters, keys Regent does not implement. A value of the
// wrong type makes the key unusable but keeps the rest of the view.
func TestLoadConfigAsPatroniWritesIt(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := testCtx(t)
	r := raw(t, srv)
	put := func(v string) {
		t.Helper()
		if _, err := r.Put(ctx, testPrefix+"config", v); err != nil {
			t.Fatal(err)
		}
	}
	put(`{"ttl": 5, "loop_wait": 1, "retry_timeout": 1, "slots": {"s1": {"type": "physical"}},
		"postgresql": {"use_pg_rewind": true, "use_slots": true, "parameters": {"max_connections": 150, "hot_standby": true}}}`)
	cl, err := c.Load(ctx)
	if err != nil || cl.ConfigProblem != "" || cl.Config == nil {
		t.Fatalf("Load = %+v, %v", cl, err)
	}
	if p := cl.Config.PostgreSQL.Parameters; p["max_connections"] != "150" || p["hot_standby"] != "on" {
		t.Errorf("parameters = %v", p)
	}
	if ok, err := c.SetConfig(ctx, *cl.Config, cl.ConfigRevision); !ok || err != nil {
		t.Fatalf("SetConfig = %v, %v", ok, err)
	}
	got, err := r.Get(ctx, testPrefix+"config")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"max_connections":150`, `"hot_standby":true`, `"use_slots":true`, `"slots":{"s1":{"type":"physical"}}`} {
		if !strings.Contains(string(got.Kvs[0].Value), want) {
			t.Errorf("rewritten config %s lacks %s", got.Kvs[0].Value, want)
		}
	}

	put(`{"ttl": "5", "loop_wait": 1}`)
	cl, err = c.Load(ctx)
	if err != nil || cl.Config == nil || !strings.Contains(cl.ConfigProblem, `key "ttl": expected an integer`) {
		t.Errorf("wrong type: %+v, %v", cl, err)
	}
	put(`{"ttl": 2, "loop_wait": 1, "retry_timeout": 1}`)
	cl, err = c.Load(ctx)
	if err != nil || !strings.Contains(cl.ConfigProblem, "loop_wait + 2*retry_timeout must not exceed ttl") {
		t.Errorf("invalid timing: %+v, %v", cl, err)
	}
}

func TestAppendEventKeepsTheLatest(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := open(t, srv, "n1", 5*time.Second)
	ctx := context.Background()
	for i := range keepEvents + 5 {
		ev := cluster.Event{Time: fmt.Sprint(i), Member: "n2", Kind: cluster.EventPromotionRefused, Reason: fmt.Sprintf("reason %d", i)}
		if err := c.AppendEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Events) != keepEvents || cl.Events[0].Reason != "reason 5" || cl.Events[keepEvents-1].Reason != fmt.Sprintf("reason %d", keepEvents+4) {
		t.Fatalf("events = %d, first %+v, last %+v", len(cl.Events), cl.Events[0], cl.Events[len(cl.Events)-1])
	}
}
