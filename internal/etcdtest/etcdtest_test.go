package etcdtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/etcdserver"
)

func TestStartServesClients(t *testing.T) {
	t.Parallel()
	s := Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "/k")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get /k = %v, want v", resp.Kvs)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	resp, err = cli.Get(ctx, "/k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("after restart get /k = %v, %v; want data kept", resp, err)
	}
	s.Stop()
	s.Stop() // idempotent
	if s.Etcd() != nil {
		t.Error("Etcd() after Stop is not nil")
	}
}

func TestStartEmbedded(t *testing.T) {
	t.Parallel()
	c, p, err := freeURLs()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "etcd.log")
	e, err := etcdserver.StartEmbedded(t.TempDir(), c, p, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Server.Cfg.ElectionTicks; got != 10 {
		t.Errorf("election ticks = %d, want 10 (1000 ms / 100 ms)", got)
	}
	if st, err := os.Stat(log); err != nil || st.Size() == 0 {
		t.Errorf("etcd log file not written: %v", err)
	}
}
