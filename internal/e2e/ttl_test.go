package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
	"github.com/regent-ha/regent/internal/localcluster"
	"github.com/regent-ha/regent/internal/nemesis"
)

// TestTTLChangeKeepsFencingInsideTheLease changes ttl up and down in the
// dynamic configuration while a member leads, then cuts the leader from
// etcd. etcd deletes the leader key when the lease etcd actually granted
// runs out; the leader must have stopped its PostgreSQL before that, so
// every deadline must follow the lease etcd granted, not the configured
// ttl (before the fix the lease kept the member file's 5 s while the
// deadlines moved to the new ttl: two writable primaries in async mode).
// Throughout, the lease's remaining time in the metrics never exceeds the
// remaining TTL etcd holds for the leader key's lease.
func TestTTLChangeKeepsFencingInsideTheLease(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t)
	direct, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Close() })
	proxy, err := nemesis.NewProxy(strings.TrimPrefix(etcd.Endpoints()[0], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)

	c := startMembers(t, etcd, []localcluster.MemberSpec{{
		Name: "m1", PGPort: freePort(t), APIPort: freePort(t), Etcd: []string{"http://" + proxy.Addr()},
	}})
	waitFor(t, c, 3*time.Minute, "m1 leading", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.Name == "m1" && l.Role == cluster.RolePrimary && l.State == cluster.StateRunning
	})
	leaderKey := "/service/e2e/leader"

	for _, ttl := range []int64{30, 8} {
		if code, body := apiCall(t, c, "m1", "PATCH", "/config", map[string]int64{"ttl": ttl}, "right"); code != http.StatusOK {
			t.Fatalf("PATCH ttl=%d: %d %s", ttl, code, body)
		}
		eventually(t, 30*time.Second, fmt.Sprintf("the leader key on a lease granted with ttl %d", ttl), func() error {
			if got := grantedTTL(t, direct, leaderKey); got != ttl {
				return fmt.Errorf("leader key's lease granted with %d s", got)
			}
			return nil
		})
		for range 5 {
			// etcd first: its remaining time only shrinks while the
			// metric is read.
			remaining := remainingTTL(t, direct, leaderKey)
			metric := leaseRemainingMetric(t, c, "m1")
			if metric > remaining {
				t.Fatalf("ttl %d: regent_lease_remaining_seconds %.3f exceeds the %.3f s etcd has left on the leader key's lease",
					ttl, metric, remaining)
			}
		}
	}

	pm := c.PostmasterPID("m1")
	if pm == 0 {
		t.Fatal("no postmaster pid")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	deleted := make(chan time.Time, 1)
	wch := direct.Watch(ctx, leaderKey)
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type == mvccpb.DELETE {
					deleted <- time.Now()
					return
				}
			}
		}
	}()
	fenced := make(chan time.Time, 1)
	go func() {
		for alive(pm) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond) // sampling the postmaster's liveness
		}
		fenced <- time.Now()
	}()
	cut := time.Now()
	proxy.Cut()
	var deletedAt, fencedAt time.Time
	select {
	case deletedAt = <-deleted:
	case <-ctx.Done():
		t.Fatal("etcd never deleted the leader key of the cut-off leader")
	}
	select {
	case fencedAt = <-fenced:
	case <-time.After(time.Second):
		t.Fatalf("etcd deleted the leader key %s after the cut, and m1's postmaster (pid %d) was still running a second later",
			deletedAt.Sub(cut).Round(time.Millisecond), pm)
	}
	t.Logf("cut from etcd; postmaster fenced after %s, leader key deleted by etcd after %s",
		fencedAt.Sub(cut).Round(time.Millisecond), deletedAt.Sub(cut).Round(time.Millisecond))
	if !fencedAt.Before(deletedAt) {
		t.Fatalf("postmaster fenced %s after the cut, after etcd deleted the leader key (%s)",
			fencedAt.Sub(cut).Round(time.Millisecond), deletedAt.Sub(cut).Round(time.Millisecond))
	}
	proxy.Heal()
}

// grantedTTL is the TTL etcd granted the lease of key (0: no key or lease).
func grantedTTL(t *testing.T, cli *clientv3.Client, key string) int64 {
	t.Helper()
	id := keyLease(t, cli, key)
	if id == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.TimeToLive(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return resp.GrantedTTL
}

// remainingTTL is how long etcd will keep key's lease without a renewal;
// etcd reports whole seconds, rounded down, so one second is added.
func remainingTTL(t *testing.T, cli *clientv3.Client, key string) float64 {
	t.Helper()
	id := keyLease(t, cli, key)
	if id == 0 {
		t.Fatalf("%s has no lease", key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.TimeToLive(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return float64(resp.TTL + 1)
}

func keyLease(t *testing.T, cli *clientv3.Client, key string) clientv3.LeaseID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}

// leaseRemainingMetric scrapes regent_lease_remaining_seconds.
func leaseRemainingMetric(t *testing.T, c *localcluster.Cluster, member string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.APIURL(member)+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "regent_lease_remaining_seconds") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	t.Fatalf("%s: no regent_lease_remaining_seconds in /metrics", member)
	return 0
}
