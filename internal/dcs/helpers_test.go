package dcs

import (
	"context"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/etcdtest"
)

const testPrefix = "/service/test/"

// open connects a Client named name to srv with the given TTL.
func open(t *testing.T, srv *etcdtest.Server, name string, ttl time.Duration) *Client {
	t.Helper()
	c, err := Open(context.Background(), Options{
		Endpoints:      srv.Endpoints(),
		DialTimeout:    5 * time.Second,
		Prefix:         testPrefix,
		Name:           name,
		TTL:            ttl,
		RequestTimeout: 3 * time.Second,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// raw returns a plain etcd client for srv.
func raw(t *testing.T, srv *etcdtest.Server) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// testCtx returns a context bounded for one test step.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refresh renews or grants c's lease, failing the test on error.
func refresh(t *testing.T, c *Client) LeaseState {
	t.Helper()
	st, err := c.RefreshLease(testCtx(t))
	if err != nil {
		t.Fatalf("refresh lease: %v", err)
	}
	return st
}
