package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/dcs"
	"github.com/regent-ha/regent/internal/operate"
)

var _ ControlStore = (*dcs.Client)(nil)

// fakeStore is an in-memory DCS with etcd-like mod revisions.
type fakeStore struct {
	mu  sync.Mutex
	c   *cluster.Cluster
	rev int64
	// beforeCreate, when set, runs at the start of CreateFailover, outside
	// the lock (a barrier for race tests).
	beforeCreate func()
	// afterCreate, when set, runs after a successful CreateFailover, outside
	// the lock (it plays the HA loop).
	afterCreate func(f cluster.Failover)
	// beforeSetConfig, when set, runs at the start of SetConfig.
	beforeSetConfig func()
	putErr          error
	failovers       []cluster.Failover // every failover written
}

func newStore(c *cluster.Cluster) *fakeStore { return &fakeStore{c: c, rev: 100} }

func cloneCluster(c *cluster.Cluster) *cluster.Cluster {
	out := *c
	if c.Config != nil {
		cfg := *c.Config
		cfg.PostgreSQL.Parameters = maps.Clone(cfg.PostgreSQL.Parameters)
		out.Config = &cfg
	}
	if c.Leader != nil {
		l := *c.Leader
		out.Leader = &l
	}
	if c.Failover != nil {
		f := *c.Failover
		out.Failover = &f
	}
	out.Members = map[string]*cluster.Member{}
	for k, m := range c.Members {
		mc := *m
		out.Members[k] = &mc
	}
	return &out
}

func (s *fakeStore) Load(context.Context) (*cluster.Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneCluster(s.c), nil
}

func (s *fakeStore) update(f func(c *cluster.Cluster)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.c)
}

func (s *fakeStore) view() *cluster.Cluster {
	c, _ := s.Load(context.Background())
	return c
}

func (s *fakeStore) CreateFailover(_ context.Context, f cluster.Failover) (bool, error) {
	if s.beforeCreate != nil {
		s.beforeCreate()
	}
	s.mu.Lock()
	if s.c.Failover != nil {
		s.mu.Unlock()
		return false, nil
	}
	s.rev++
	f.Revision = s.rev
	s.c.Failover = &f
	s.failovers = append(s.failovers, f)
	s.mu.Unlock()
	if s.afterCreate != nil {
		s.afterCreate(f)
	}
	return true, nil
}

func (s *fakeStore) ClearFailover(_ context.Context, modRevision int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := int64(0)
	if s.c.Failover != nil {
		cur = s.c.Failover.Revision
	}
	if modRevision != 0 && cur != modRevision {
		return false, nil
	}
	s.c.Failover = nil
	return true, nil
}

func (s *fakeStore) SetConfig(_ context.Context, cfg cluster.DynamicConfig, modRevision int64) (bool, error) {
	if s.beforeSetConfig != nil {
		s.beforeSetConfig()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if (modRevision == 0 && s.c.Config != nil) || (modRevision != 0 && (s.c.Config == nil || s.c.ConfigRevision != modRevision)) {
		return false, nil
	}
	s.rev++
	s.c.Config, s.c.ConfigRevision = &cfg, s.rev
	return true, nil
}

func (s *fakeStore) PutConfig(_ context.Context, cfg cluster.DynamicConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.putErr != nil {
		return s.putErr
	}
	s.rev++
	s.c.Config, s.c.ConfigRevision = &cfg, s.rev
	return nil
}

// fakeOperator records requests and answers as configured.
type fakeOperator struct {
	mu         sync.Mutex
	restarts   []RestartRequest
	reinits    []ReinitRequest
	reloads    int
	restartRes RestartResult
	restartErr error
	cancelled  bool
	cancelErr  error
	reloadErr  error
	reinitErr  error
}

func (o *fakeOperator) Restart(_ context.Context, r RestartRequest) (RestartResult, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.restarts = append(o.restarts, r)
	return o.restartRes, o.restartErr
}

func (o *fakeOperator) CancelRestart(context.Context) (bool, error) { return o.cancelled, o.cancelErr }

func (o *fakeOperator) Reload(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reloads++
	return o.reloadErr
}

func (o *fakeOperator) Reinitialize(_ context.Context, r ReinitRequest) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reinits = append(o.reinits, r)
	return o.reinitErr
}

// controlCluster: pg1 leads; pg2 is an eligible replica, pg3 has
// nofailover.
func controlCluster() *cluster.Cluster {
	cfg := cluster.DefaultDynamicConfig()
	return &cluster.Cluster{
		Scope:          "demo",
		Config:         &cfg,
		ConfigRevision: 7,
		Leader:         &cluster.Leader{Name: "pg1"},
		Status:         cluster.Status{Optime: optime},
		Members: map[string]*cluster.Member{
			"pg1": {Name: "pg1", State: "running", Role: "primary", XLogLocation: i64(optime)},
			"pg2": {Name: "pg2", State: "running", Role: "replica", ReplicationState: "streaming", XLogLocation: i64(optime - 100)},
			"pg3": {Name: "pg3", State: "running", Role: "replica", ReplicationState: "streaming", XLogLocation: i64(optime - 100),
				Tags: &cluster.Tags{NoFailover: true}},
		},
	}
}

func controlServer(c *cluster.Cluster) (*Server, *fakeStore, *fakeOperator) {
	store, op := newStore(c), &fakeOperator{}
	srv := New(fakeSource{primarySnap()}, store, nil)
	srv.Store, srv.Operator = store, op
	srv.pollInterval = 5 * time.Millisecond
	srv.SwitchoverTimeout = 2 * time.Second
	return srv, store, op
}

// call sends a request with a body (Content-Length set) and headers given
// as "Key: value" strings.
func call(t testing.TB, h http.Handler, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ": ")
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func errorOf(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e errorJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("body %q (%s) is not a JSON error: %v", rec.Body, rec.Header().Get("Content-Type"), err)
	}
	return e.Error
}

// promote plays the HA loop completing a switchover to name.
func promote(s *fakeStore, old, name string) {
	s.update(func(c *cluster.Cluster) {
		c.Leader = &cluster.Leader{Name: name}
		c.Members[name].Role, c.Members[name].ReplicationState = cluster.RolePrimary, ""
		if m := c.Members[old]; m != nil {
			m.Role = cluster.RoleReplica
		}
		c.Failover = nil
	})
}

func TestAccess(t *testing.T) {
	_, allowNet, _ := net.ParseCIDR("192.0.2.0/24")
	_, v6, _ := net.ParseCIDR("::1/128")
	srv, _, op := controlServer(controlCluster())
	srv.Access = Access{Username: "admin", Password: "s3cret", Allowlist: []*net.IPNet{allowNet, v6}}
	h := srv.Handler()
	send := func(remote, user, pass, method, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = remote
		if user != "" || pass != "" {
			r.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	tests := []struct {
		name, remote, user, pass, method, path string
		code                                   int
		err                                    string
	}{
		{"no credentials", "192.0.2.1:1234", "", "", "POST", "/reload", 401, "authentication required"},
		{"wrong password", "192.0.2.1:1234", "admin", "nope", "POST", "/reload", 401, "wrong username or password"},
		{"wrong user", "192.0.2.1:1234", "root", "s3cret", "POST", "/reload", 401, "wrong username or password"},
		{"right credentials", "192.0.2.1:1234", "admin", "s3cret", "POST", "/reload", 202, ""},
		{"IPv6 allowed", "[::1]:1234", "admin", "s3cret", "POST", "/reload", 202, ""},
		{"outside the allowlist", "10.1.2.3:1234", "admin", "s3cret", "POST", "/reload", 403, "client address 10.1.2.3 is not in restapi.allowlist"},
		{"allowlist checked first", "10.1.2.3:1234", "", "", "DELETE", "/switchover", 403, "client address 10.1.2.3 is not in restapi.allowlist"},
		{"unparseable address", "garbage", "admin", "s3cret", "POST", "/reload", 403, "client address garbage is not in restapi.allowlist"},
		{"PATCH checked", "192.0.2.1:1234", "", "", "PATCH", "/config", 401, "authentication required"},
		{"405 only after access", "192.0.2.1:1234", "", "", "POST", "/primary", 401, "authentication required"},
		{"GET /primary open", "10.1.2.3:1234", "", "", "GET", "/primary", 200, ""},
		{"GET /config open", "10.1.2.3:1234", "", "", "GET", "/config", 200, ""},
		{"OPTIONS open", "10.1.2.3:1234", "", "", "OPTIONS", "/replica", 503, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := send(tc.remote, tc.user, tc.pass, tc.method, tc.path)
			if rec.Code != tc.code {
				t.Fatalf("= %d %s, want %d", rec.Code, rec.Body, tc.code)
			}
			if tc.err != "" {
				if got := errorOf(t, rec); got != tc.err {
					t.Errorf("error = %q, want %q", got, tc.err)
				}
			}
			if tc.code == 401 && rec.Header().Get("WWW-Authenticate") != `Basic realm="regent"` {
				t.Errorf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
	if op.reloads != 2 {
		t.Errorf("reloads = %d, want 2 (only the authorised requests)", op.reloads)
	}

	// Client certificates.
	srv.Access = Access{RequireClientCert: true}
	if rec := send("192.0.2.1:1", "", "", "POST", "/reload"); rec.Code != 403 || errorOf(t, rec) != "client certificate required" {
		t.Errorf("without a client certificate = %d %s", rec.Code, rec.Body)
	}
	r := httptest.NewRequest("POST", "/reload", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{}}}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 202 {
		t.Errorf("with a client certificate = %d %s", rec.Code, rec.Body)
	}
	if rec := send("192.0.2.1:1", "", "", "GET", "/primary"); rec.Code != 200 {
		t.Errorf("GET without a client certificate = %d", rec.Code)
	}
}

func TestNotAvailable(t *testing.T) {
	h := New(fakeSource{primarySnap()}, &fakeReader{c: testCluster()}, nil).Handler()
	for _, ep := range []struct{ method, path, body string }{
		{"POST", "/switchover", `{"leader":"pg1"}`},
		{"DELETE", "/switchover", ""},
		{"POST", "/failover", `{"candidate":"pg2"}`},
		{"PATCH", "/config", `{"ttl":10}`},
		{"PUT", "/config", `{}`},
		{"POST", "/restart", ""},
		{"DELETE", "/restart", ""},
		{"POST", "/reload", ""},
		{"POST", "/reinitialize", ""},
	} {
		rec := call(t, h, ep.method, ep.path, ep.body)
		if rec.Code != 503 || !strings.Contains(errorOf(t, rec), "not available") {
			t.Errorf("%s %s = %d %s, want 503 not available", ep.method, ep.path, rec.Code, rec.Body)
		}
	}
}

func TestSwitchoverRefused(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name string
		mod  func(c *cluster.Cluster)
		body string
		code int
		err  string
	}{
		{"no leader name", nil, `{"candidate":"pg2"}`, 400, "leader name is required"},
		{"empty body", nil, ``, 400, "leader name is required"},
		{"same as leader", nil, `{"leader":"pg1","candidate":"pg1"}`, 412, `candidate "pg1" is already the leader`},
		{"candidate and member differ", nil, `{"leader":"pg1","candidate":"pg2","member":"pg3"}`, 400, "differ"},
		{"unknown field", nil, `{"leader":"pg1","candiate":"pg2"}`, 400, `invalid request body: unknown field "candiate"`},
		{"bad JSON", nil, `{"leader":`, 400, "invalid request body"},
		{"schedule without zone", nil, `{"leader":"pg1","scheduled_at":"2030-01-01T00:00:00"}`, 400, "has no time zone"},
		{"schedule garbage", nil, `{"leader":"pg1","scheduled_at":"tomorrow"}`, 400, "is not ISO 8601"},
		{"schedule in the past", nil, `{"leader":"pg1","scheduled_at":"2020-01-01T00:00:00Z"}`, 400, "is not in the future"},
		{"schedule while paused", func(c *cluster.Cluster) { c.Config.Pause = true },
			`{"leader":"pg1","candidate":"pg2","scheduled_at":"` + future + `"}`, 400, "cannot schedule a switchover while paused"},
		{"wrong leader", nil, `{"leader":"pg2","candidate":"pg3"}`, 412, "leader name does not match: the leader is pg1"},
		{"unknown candidate", nil, `{"leader":"pg1","candidate":"pgx"}`, 412, `candidate "pgx" does not exist`},
		{"nofailover candidate", nil, `{"leader":"pg1","member":"pg3"}`, 412, `candidate "pg3" has tag nofailover`},
		{"lagging candidate", func(c *cluster.Cluster) { c.Members["pg2"].XLogLocation = i64(optime - 2*mb) },
			`{"leader":"pg1","candidate":"pg2"}`, 412, `candidate "pg2" lags 2097152 bytes behind (maximum_lag_on_failover 1048576)`},
		{"no eligible replica", func(c *cluster.Cluster) { c.Members["pg2"].State = "stopped" }, `{"leader":"pg1"}`, 412, "cluster has no eligible replica"},
		{"only the leader", func(c *cluster.Cluster) { delete(c.Members, "pg2"); delete(c.Members, "pg3") },
			`{"leader":"pg1"}`, 412, "cluster does not have members except leader"},
		{"already in progress", func(c *cluster.Cluster) { c.Failover = &cluster.Failover{Leader: "pg1", Revision: 3} },
			`{"leader":"pg1","candidate":"pg2"}`, 409, "a switchover or failover is already in progress"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := controlCluster()
			if tc.mod != nil {
				tc.mod(c)
			}
			srv, store, _ := controlServer(c)
			rec := call(t, srv.Handler(), "POST", "/switchover", tc.body)
			if rec.Code != tc.code || !strings.Contains(errorOf(t, rec), tc.err) {
				t.Fatalf("= %d %s, want %d %q", rec.Code, rec.Body, tc.code, tc.err)
			}
			if len(store.failovers) != 0 {
				t.Errorf("failover written despite the refusal: %+v", store.failovers)
			}
		})
	}
}

func TestSwitchoverScheduledAndDeleted(t *testing.T) {
	srv, store, _ := controlServer(controlCluster())
	h := srv.Handler()
	if rec := call(t, h, "DELETE", "/switchover", ""); rec.Code != 404 || errorOf(t, rec) != "no switchover is scheduled" {
		t.Fatalf("DELETE without a schedule = %d %s", rec.Code, rec.Body)
	}
	at := time.Now().Add(time.Hour).In(time.FixedZone("", 2*3600)).Truncate(time.Second)
	body := `{"leader":"pg1","candidate":"pg2","scheduled_at":"` + at.Format("2006-01-02 15:04:05.000000-07:00") + `"}`
	rec := call(t, h, "POST", "/switchover", body)
	if rec.Code != 202 || rec.Body.String() != `{"message":"switchover scheduled"}` {
		t.Fatalf("scheduled switchover = %d %s", rec.Code, rec.Body)
	}
	f := store.view().Failover
	if f == nil || f.Leader != "pg1" || f.Member != "pg2" || f.ScheduledAt != at.Format(time.RFC3339) {
		t.Fatalf("failover key = %+v", f)
	}
	// An immediate request while one is scheduled conflicts.
	if rec := call(t, h, "POST", "/switchover", `{"leader":"pg1"}`); rec.Code != 409 {
		t.Errorf("second switchover = %d %s, want 409", rec.Code, rec.Body)
	}
	// A concurrent change of the key makes DELETE conflict.
	store.update(func(c *cluster.Cluster) { c.Failover.Revision = 999 })
	srv.Store = &staleStore{fakeStore: store, rev: 998}
	if rec := call(t, h, "DELETE", "/switchover", ""); rec.Code != 409 {
		t.Errorf("DELETE on a changed key = %d %s, want 409", rec.Code, rec.Body)
	}
	srv.Store = store
	if rec := call(t, h, "DELETE", "/switchover", ""); rec.Code != 200 || rec.Body.String() != `{"message":"scheduled switchover deleted"}` {
		t.Fatalf("DELETE = %d %s", rec.Code, rec.Body)
	}
	if store.view().Failover != nil {
		t.Error("failover key still there")
	}
	if rec := call(t, h, "DELETE", "/switchover", ""); rec.Code != 404 {
		t.Errorf("second DELETE = %d, want 404", rec.Code)
	}
	// An immediate (unscheduled) request is not deleted.
	store.update(func(c *cluster.Cluster) { c.Failover = &cluster.Failover{Leader: "pg1", Revision: 5} })
	if rec := call(t, h, "DELETE", "/switchover", ""); rec.Code != 404 {
		t.Errorf("DELETE of an immediate switchover = %d, want 404", rec.Code)
	}
}

// staleStore reports the failover key at an older revision than stored.
type staleStore struct {
	*fakeStore
	rev int64
}

func (s *staleStore) Load(ctx context.Context) (*cluster.Cluster, error) {
	c, err := s.fakeStore.Load(ctx)
	if c.Failover != nil {
		c.Failover.Revision = s.rev
	}
	return c, err
}

func TestSwitchoverCompletes(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		after func(s *fakeStore, f cluster.Failover)
		code  int
		text  string // plain-text body, or the JSON error
	}{
		{"to the candidate", `{"leader":"pg1","candidate":"pg2"}`,
			func(s *fakeStore, f cluster.Failover) { promote(s, "pg1", "pg2") }, 200, `Successfully switched over to "pg2"`},
		{"leader picks", `{"leader":"pg1"}`,
			func(s *fakeStore, f cluster.Failover) { promote(s, "pg1", "pg2") }, 200, `Successfully switched over to "pg2"`},
		{"another member won", `{"leader":"pg1","candidate":"pg2"}`,
			func(s *fakeStore, f cluster.Failover) {
				s.update(func(c *cluster.Cluster) { c.Members["pg3"].Tags = nil })
				promote(s, "pg1", "pg3")
			}, 200, `Switched over to "pg3" instead of "pg2"`},
		{"new leader not yet primary, then primary", `{"leader":"pg1","candidate":"pg2"}`,
			func(s *fakeStore, f cluster.Failover) {
				s.update(func(c *cluster.Cluster) { c.Leader = &cluster.Leader{Name: "pg2"}; c.Failover = nil })
				time.Sleep(30 * time.Millisecond)
				promote(s, "pg1", "pg2")
			}, 200, `Successfully switched over to "pg2"`},
		{"leader cancels", `{"leader":"pg1","candidate":"pg2"}`,
			func(s *fakeStore, f cluster.Failover) { s.update(func(c *cluster.Cluster) { c.Failover = nil }) },
			503, "switchover failed: pg1 cancelled it and remains the leader"},
		{"nothing happens", `{"leader":"pg1","candidate":"pg2"}`, nil, 503, "switchover status unknown after 200ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, store, _ := controlServer(controlCluster())
			srv.SwitchoverTimeout = 200 * time.Millisecond
			if tc.after != nil {
				store.afterCreate = func(f cluster.Failover) {
					go func() {
						time.Sleep(20 * time.Millisecond)
						tc.after(store, f)
					}()
				}
			}
			rec := call(t, srv.Handler(), "POST", "/switchover", tc.body)
			if rec.Code != tc.code {
				t.Fatalf("= %d %s, want %d", rec.Code, rec.Body, tc.code)
			}
			if tc.code == 200 {
				if rec.Body.String() != tc.text || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
					t.Errorf("body = %q (%s), want %q", rec.Body, rec.Header().Get("Content-Type"), tc.text)
				}
			} else if got := errorOf(t, rec); !strings.Contains(got, tc.text) {
				t.Errorf("error = %q, want %q", got, tc.text)
			}
			if len(store.failovers) != 1 || store.failovers[0].Leader != "pg1" {
				t.Errorf("failovers written = %+v", store.failovers)
			}
		})
	}
}

func TestConcurrentSwitchovers(t *testing.T) {
	srv, store, _ := controlServer(controlCluster())
	// Both requests read the view before either writes, so the DCS
	// compare-and-create, not the view check, must pick the winner.
	var arrived sync.WaitGroup
	arrived.Add(2)
	store.beforeCreate = func() { arrived.Done(); arrived.Wait() }
	store.afterCreate = func(cluster.Failover) {
		go func() { time.Sleep(20 * time.Millisecond); promote(store, "pg1", "pg2") }()
	}
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			codes[i] = call(t, srv.Handler(), "POST", "/switchover", `{"leader":"pg1","candidate":"pg2"}`).Code
		})
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
		t.Fatalf("codes = %v, want one 200 and one 409", codes)
	}
	if len(store.failovers) != 1 {
		t.Errorf("failovers written = %+v, want one", store.failovers)
	}
}

func TestFailover(t *testing.T) {
	t.Run("leaderless: lagging candidate promoted", func(t *testing.T) {
		c := controlCluster()
		c.Leader = nil
		c.Members["pg1"].State = "stopped"
		c.Members["pg2"].XLogLocation = i64(optime - 10*mb)
		c.Members["pg2"].ReplicationState = ""
		srv, store, _ := controlServer(c)
		store.afterCreate = func(cluster.Failover) {
			go func() { time.Sleep(20 * time.Millisecond); promote(store, "", "pg2") }()
		}
		rec := call(t, srv.Handler(), "POST", "/failover", `{"candidate":"pg2"}`)
		if rec.Code != 200 || rec.Body.String() != `Successfully failed over to "pg2"` {
			t.Fatalf("= %d %s", rec.Code, rec.Body)
		}
		if want := []cluster.Failover{{Member: "pg2", Revision: 101}}; len(store.failovers) != 1 || store.failovers[0] != want[0] {
			t.Errorf("failovers = %+v, want %+v", store.failovers, want)
		}
	})
	t.Run("with a leader it is a switchover", func(t *testing.T) {
		srv, store, _ := controlServer(controlCluster())
		store.afterCreate = func(cluster.Failover) {
			go func() { time.Sleep(20 * time.Millisecond); promote(store, "pg1", "pg2") }()
		}
		rec := call(t, srv.Handler(), "POST", "/failover", `{"member":"pg2"}`)
		if rec.Code != 200 || rec.Body.String() != `Successfully failed over to "pg2"` {
			t.Fatalf("= %d %s", rec.Code, rec.Body)
		}
		if len(store.failovers) != 1 || store.failovers[0].Leader != "pg1" || store.failovers[0].Member != "pg2" {
			t.Errorf("failovers = %+v", store.failovers)
		}
	})
	tests := []struct {
		name string
		mod  func(c *cluster.Cluster)
		body string
		code int
		err  string
	}{
		{"no candidate", nil, `{}`, 400, "failover could be performed only to a specific candidate"},
		{"scheduled", nil, `{"candidate":"pg2","scheduled_at":"2030-01-01T00:00:00Z"}`, 400, "a failover cannot be scheduled"},
		{"with a leader: switchover rules", func(c *cluster.Cluster) { c.Members["pg2"].XLogLocation = i64(optime - 2*mb) },
			`{"candidate":"pg2"}`, 412, "lags"},
		{"named leader wrong", nil, `{"leader":"pg2","candidate":"pg3"}`, 412, "leader name does not match"},
		{"leaderless: nofailover", func(c *cluster.Cluster) { c.Leader = nil }, `{"candidate":"pg3"}`, 412, "nofailover"},
		{"leaderless: not running", func(c *cluster.Cluster) { c.Leader = nil; c.Members["pg2"].State = "crashed" },
			`{"candidate":"pg2"}`, 412, `candidate "pg2" is not running`},
		{"leaderless: unknown", func(c *cluster.Cluster) { c.Leader = nil }, `{"candidate":"pgx"}`, 412, "does not exist"},
		{"pending request", func(c *cluster.Cluster) { c.Leader = nil; c.Failover = &cluster.Failover{Member: "pg3"} },
			`{"candidate":"pg2"}`, 409, "already in progress"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := controlCluster()
			if tc.mod != nil {
				tc.mod(c)
			}
			srv, store, _ := controlServer(c)
			rec := call(t, srv.Handler(), "POST", "/failover", tc.body)
			if rec.Code != tc.code || !strings.Contains(errorOf(t, rec), tc.err) {
				t.Fatalf("= %d %s, want %d %q", rec.Code, rec.Body, tc.code, tc.err)
			}
			if len(store.failovers) != 0 {
				t.Errorf("failover written: %+v", store.failovers)
			}
		})
	}
}

// chunked sends a request without Content-Length.
func chunked(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, io.NopCloser(strings.NewReader(body)))
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestPatchConfig(t *testing.T) {
	srv, store, _ := controlServer(controlCluster())
	h := srv.Handler()

	rec := call(t, h, "GET", "/config", "")
	if rec.Code != 200 || rec.Header().Get("ETag") != `"7"` {
		t.Fatalf("GET /config = %d ETag %q", rec.Code, rec.Header().Get("ETag"))
	}
	rec = call(t, h, "PATCH", "/config", `{"ttl": 10, "postgresql": {"parameters": {"max_connections": 200}}}`)
	if rec.Code != 200 {
		t.Fatalf("PATCH = %d %s", rec.Code, rec.Body)
	}
	got := decode(t, rec)
	if got["ttl"] != float64(10) || got["postgresql"].(map[string]any)["parameters"].(map[string]any)["max_connections"] != float64(200) {
		t.Errorf("PATCH answer = %s (a number stays a number, as in Patroni)", rec.Body)
	}
	v := store.view()
	if v.Config.TTL != 10 || v.Config.PostgreSQL.Parameters["max_connections"] != "200" || v.ConfigRevision == 7 {
		t.Errorf("stored config = %+v rev %d", v.Config, v.ConfigRevision)
	}
	// Pause is an ordinary patch.
	if rec := call(t, h, "PATCH", "/config", `{"pause": true}`); rec.Code != 200 || !store.view().Config.Pause {
		t.Errorf("pause = %d %s", rec.Code, rec.Body)
	}

	// A write between our read and our compare-and-set conflicts.
	store.beforeSetConfig = func() {
		store.update(func(c *cluster.Cluster) { c.ConfigRevision += 1000 })
	}
	if rec := call(t, h, "PATCH", "/config", `{"loop_wait": 2}`); rec.Code != 409 || errorOf(t, rec) != "configuration changed concurrently; retry" {
		t.Errorf("concurrent PATCH = %d %s", rec.Code, rec.Body)
	}
	store.beforeSetConfig = nil
	rev := store.view().ConfigRevision
	if rec := call(t, h, "PATCH", "/config", `{"loop_wait": 2}`, "If-Match: \"1\""); rec.Code != 409 {
		t.Errorf("PATCH with a stale If-Match = %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, "PATCH", "/config", `{"loop_wait": 2}`, "If-Match: "+configETag(rev)); rec.Code != 200 || store.view().Config.LoopWait != 2 {
		t.Errorf("PATCH with the current If-Match = %d %s", rec.Code, rec.Body)
	}

	refusals := []struct {
		name, body string
		headers    []string
		code       int
		err        string
	}{
		{"unknown key", `{"postgresql": {"paramters": {}}}`, nil, 400, `unknown key "postgresql.paramters"`},
		{"type error", `{"ttl": "10"}`, nil, 400, `key "ttl": expected an integer`},
		{"invalid timing", `{"ttl": 3, "loop_wait": 2, "retry_timeout": 2}`, nil, 400, "loop_wait + 2*retry_timeout must not exceed ttl"},
		{"bad JSON", `{`, nil, 400, "invalid JSON"},
		{"bad If-Match", `{}`, []string{"If-Match: abc"}, 400, "is not a configuration revision"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := store.view()
			rec := call(t, h, "PATCH", "/config", tc.body, tc.headers...)
			if rec.Code != tc.code || !strings.Contains(errorOf(t, rec), tc.err) {
				t.Errorf("= %d %s, want %d %q", rec.Code, rec.Body, tc.code, tc.err)
			}
			if after := store.view(); after.ConfigRevision != before.ConfigRevision {
				t.Error("configuration written despite the refusal")
			}
		})
	}
	if rec := chunked(h, "PATCH", "/config", `{"ttl": 10}`); rec.Code != 411 {
		t.Errorf("PATCH without Content-Length = %d %s, want 411", rec.Code, rec.Body)
	}
	if rec := call(t, h, "PATCH", "/config", strings.Repeat(" ", maxBody+1)); rec.Code != 413 {
		t.Errorf("huge PATCH = %d, want 413", rec.Code)
	}
	store.update(func(c *cluster.Cluster) { c.Config = nil; c.ConfigRevision = 0 })
	if rec := call(t, h, "PATCH", "/config", `{"ttl": 10}`); rec.Code != 503 || errorOf(t, rec) != "no configuration in the DCS" {
		t.Errorf("PATCH without config = %d %s", rec.Code, rec.Body)
	}
}

func TestPutConfig(t *testing.T) {
	srv, store, _ := controlServer(controlCluster())
	h := srv.Handler()
	rec := call(t, h, "PUT", "/config", `{"ttl": 10, "loop_wait": 2, "postgresql": {"parameters": {"wal_level": "logical"}}}`)
	if rec.Code != 200 {
		t.Fatalf("PUT = %d %s", rec.Code, rec.Body)
	}
	want := cluster.DefaultDynamicConfig()
	want.TTL, want.LoopWait = 10, 2
	want.PostgreSQL.Parameters = map[string]string{"wal_level": "logical"}
	if got := store.view().Config; got == nil || got.TTL != 10 || got.LoopWait != 2 || got.RetryTimeout != want.RetryTimeout ||
		len(got.PostgreSQL.Parameters) != 1 || got.PostgreSQL.Parameters["wal_level"] != "logical" {
		t.Errorf("stored = %+v, want %+v", got, want)
	}
	if rec := call(t, h, "PUT", "/config", `{"tll": 10}`); rec.Code != 400 || !strings.Contains(errorOf(t, rec), `unknown key "tll"`) {
		t.Errorf("PUT with a typo = %d %s", rec.Code, rec.Body)
	}
	if rec := chunked(h, "PUT", "/config", `{}`); rec.Code != 411 {
		t.Errorf("PUT without Content-Length = %d", rec.Code)
	}
	if rec := call(t, h, "PUT", "/config", `{}`, `If-Match: "3"`); rec.Code != 409 {
		t.Errorf("PUT with a stale If-Match = %d %s", rec.Code, rec.Body)
	}
	store.putErr = errors.New("etcd down")
	if rec := call(t, h, "PUT", "/config", `{}`); rec.Code != 502 || !strings.Contains(errorOf(t, rec), "etcd down") {
		t.Errorf("PUT with a failing DCS = %d %s", rec.Code, rec.Body)
	}
}

func TestRestart(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name   string
		body   string
		res    RestartResult
		err    error
		pause  bool
		code   int
		answer string // plain text body or JSON error/message substring
		want   *RestartRequest
	}{
		{name: "now", body: ``, code: 200, answer: "restarted successfully", want: &RestartRequest{}},
		{name: "filters", body: `{"role":"master","restart_pending":true,"timeout":"45"}`, code: 200, answer: "restarted successfully",
			want: &RestartRequest{Role: "primary", PendingOnly: true, Timeout: 45 * time.Second}},
		{name: "numeric timeout", body: `{"role":"replica","timeout":30}`, code: 200, answer: "restarted successfully",
			want: &RestartRequest{Role: "replica", Timeout: 30 * time.Second}},
		{name: "scheduled", body: `{"schedule":"` + future.Format(time.RFC3339) + `"}`, res: RestartResult{Scheduled: true},
			code: 202, answer: "restart scheduled", want: &RestartRequest{ScheduledAt: future}},
		{name: "skipped", body: `{"role":"replica"}`, res: RestartResult{Skipped: "role does not match"}, code: 503, answer: "role does not match"},
		{name: "already scheduled", err: &operate.ConflictError{Reason: "another restart is already scheduled"}, code: 409, answer: "already scheduled"},
		{name: "refused", err: &operate.PreconditionError{Reason: "cannot restart now"}, code: 503, answer: "cannot restart now"},
		{name: "failed", err: errors.New("pg_ctl failed"), code: 503, answer: "pg_ctl failed"},
		{name: "bad role", body: `{"role":"boss"}`, code: 400, answer: "is not a role"},
		{name: "pg version", body: `{"postgres_version":"16"}`, code: 400, answer: "not supported"},
		{name: "bad timeout", body: `{"timeout":"soon"}`, code: 400, answer: "timeout"},
		{name: "negative timeout", body: `{"timeout":-1}`, code: 400, answer: "must be positive"},
		{name: "unknown field", body: `{"rol":"replica"}`, code: 400, answer: "unknown field"},
		{name: "schedule without zone", body: `{"schedule":"2030-01-01T00:00:00"}`, code: 400, answer: "no time zone"},
		{name: "schedule garbage", body: `{"schedule":"soon"}`, code: 422, answer: "not ISO 8601"},
		{name: "schedule in the past", body: `{"schedule":"2020-01-01T00:00:00+00:00"}`, code: 422, answer: "not in the future"},
		{name: "schedule while paused", body: `{"schedule":"` + future.Format(time.RFC3339) + `"}`, pause: true, code: 500, answer: "while paused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, op := controlServer(controlCluster())
			if tc.pause {
				s := primarySnap()
				s.Pause = true
				srv.src = fakeSource{s}
				srv.pub = nil
			}
			op.restartRes, op.restartErr = tc.res, tc.err
			rec := call(t, srv.Handler(), "POST", "/restart", tc.body)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.answer) {
				t.Fatalf("= %d %s, want %d %q", rec.Code, rec.Body, tc.code, tc.answer)
			}
			if tc.code == 200 && rec.Body.String() != tc.answer {
				t.Errorf("body = %q, want exactly %q", rec.Body, tc.answer)
			}
			if tc.want != nil {
				if len(op.restarts) != 1 || !op.restarts[0].ScheduledAt.Equal(tc.want.ScheduledAt) {
					t.Fatalf("restarts = %+v, want %+v", op.restarts, *tc.want)
				}
				got := op.restarts[0]
				got.ScheduledAt = tc.want.ScheduledAt
				if got != *tc.want {
					t.Errorf("request = %+v, want %+v", got, *tc.want)
				}
			}
		})
	}
}

func TestOtherOperations(t *testing.T) {
	srv, _, op := controlServer(controlCluster())
	h := srv.Handler()
	if rec := call(t, h, "DELETE", "/restart", ""); rec.Code != 404 || errorOf(t, rec) != "no restart is scheduled" {
		t.Errorf("DELETE /restart without a schedule = %d %s", rec.Code, rec.Body)
	}
	op.cancelled = true
	if rec := call(t, h, "DELETE", "/restart", ""); rec.Code != 200 {
		t.Errorf("DELETE /restart = %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, "POST", "/reload", ""); rec.Code != 202 || rec.Body.String() != `{"message":"reload scheduled"}` || op.reloads != 1 {
		t.Errorf("reload = %d %s", rec.Code, rec.Body)
	}
	op.reloadErr = errors.New("postgres not running")
	if rec := call(t, h, "POST", "/reload", ""); rec.Code != 503 || errorOf(t, rec) != "postgres not running" {
		t.Errorf("failed reload = %d %s", rec.Code, rec.Body)
	}
	rec := call(t, h, "POST", "/reinitialize", `{"force":true,"from_leader":true}`)
	if rec.Code != 200 || rec.Body.String() != "reinitialize started" || len(op.reinits) != 1 || op.reinits[0] != (ReinitRequest{FromLeader: true, Force: true}) {
		t.Errorf("reinitialize = %d %s %+v", rec.Code, rec.Body, op.reinits)
	}
	if rec := call(t, h, "POST", "/reinitialize", ""); rec.Code != 200 || op.reinits[1] != (ReinitRequest{}) {
		t.Errorf("reinitialize without a body = %d %s", rec.Code, rec.Body)
	}
	op.reinitErr = &operate.PreconditionError{Reason: "I am the leader, can not reinitialize"}
	if rec := call(t, h, "POST", "/reinitialize", ""); rec.Code != 503 || errorOf(t, rec) != "I am the leader, can not reinitialize" {
		t.Errorf("reinitialize on the leader = %d %s", rec.Code, rec.Body)
	}
	op.reinitErr = &operate.ConflictError{Reason: "reinitialize already in progress"}
	if rec := call(t, h, "POST", "/reinitialize", ""); rec.Code != 503 {
		t.Errorf("reinitialize in progress = %d %s, want 503", rec.Code, rec.Body)
	}
	if rec := call(t, h, "POST", "/reinitialize", `{"force":"yes"}`); rec.Code != 400 {
		t.Errorf("bad reinitialize body = %d %s", rec.Code, rec.Body)
	}
}

// selfSigned returns a certificate valid for 127.0.0.1 that is its own CA
// and usable by servers and clients.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "regent-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestServeTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv, _, op := controlServer(controlCluster())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.Access = Access{RequireClientCert: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "https://" + ln.Addr().String()
	client := func(withCert bool) *http.Client {
		cfg := &tls.Config{RootCAs: pool}
		if withCert {
			cfg.Certificates = []tls.Certificate{cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
	}
	status := func(c *http.Client, method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(client(false), "GET", "/primary"); got != 200 {
		t.Errorf("GET /primary over TLS without a client certificate = %d", got)
	}
	if got := status(client(false), "POST", "/reload"); got != 403 {
		t.Errorf("POST /reload without a client certificate = %d, want 403", got)
	}
	if got := status(client(true), "POST", "/reload"); got != 202 || op.reloads != 1 {
		t.Errorf("POST /reload with a client certificate = %d, reloads %d", got, op.reloads)
	}
}

// fakePositions is a PositionReader with fixed answers.
type fakePositions struct {
	optime int64
	flush  map[string]int64
	ok     bool
	calls  int
}

func (p *fakePositions) PrimaryPositions(context.Context) (int64, map[string]int64, bool) {
	p.calls++
	return p.optime, p.flush, p.ok
}

// TestSwitchoverChecksLagAtOneMoment pins the failed TestOperatorControls
// run: pg2's key is from its first loop after a clone (0/3000000, where
// its WAL receiver started), the leader's status and key already count
// the WAL switch of another member's base backup and a CREATE TABLE
// (0/40222E8). The leader's own PostgreSQL, read when the request
// arrives, shows pg2 has flushed all of it: the switchover is accepted.
func TestSwitchoverChecksLagAtOneMoment(t *testing.T) {
	view := func() *cluster.Cluster {
		c := controlCluster()
		c.Status = cluster.Status{Optime: 0x40222E8, RetainSlots: []string{"pg2"}}
		c.Members["pg1"].XLogLocation = i64(0x40222E8)
		c.Members["pg2"].XLogLocation = i64(0x3000000)
		return c
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body := `{"leader":"pg1","candidate":"pg2","scheduled_at":"` + future + `"}`

	srv, store, _ := controlServer(view())
	if rec := call(t, srv.Handler(), "POST", "/switchover", body); rec.Code != 412 ||
		!strings.Contains(errorOf(t, rec), `candidate "pg2" lags 16917224 bytes behind`) {
		t.Fatalf("without a fresh reading: %d %s, want the key-based 412", rec.Code, rec.Body)
	}

	srv, store, _ = controlServer(view())
	pos := &fakePositions{optime: 0x40222E8, flush: map[string]int64{"pg2": 0x40222E8, "pg3": 0x40222E8}, ok: true}
	srv.Positions = pos
	if rec := call(t, srv.Handler(), "POST", "/switchover", body); rec.Code != 202 {
		t.Fatalf("with the leader's reading: %d %s, want 202", rec.Code, rec.Body)
	}
	if f := store.view().Failover; f == nil || f.Member != "pg2" || pos.calls != 1 {
		t.Fatalf("failover key %+v after %d readings", f, pos.calls)
	}

	// A candidate that is really behind is still refused.
	srv, _, _ = controlServer(view())
	srv.Positions = &fakePositions{optime: 0x40222E8, flush: map[string]int64{"pg2": 0x3000000}, ok: true}
	if rec := call(t, srv.Handler(), "POST", "/switchover", body); rec.Code != 412 || !strings.Contains(errorOf(t, rec), "lags 16917224") {
		t.Fatalf("lagging per the reading: %d %s, want 412", rec.Code, rec.Body)
	}
	// A member that is not the leader in the view does not use its
	// own reading.
	srv, _, _ = controlServer(view())
	srv.Positions = &fakePositions{optime: 0x40222E8, flush: map[string]int64{"pg2": 0x40222E8}, ok: true}
	srv.src = fakeSource{func() Snapshot { s := primarySnap(); s.Name = "pg3"; return s }()}
	if rec := call(t, srv.Handler(), "POST", "/switchover", body); rec.Code != 412 {
		t.Fatalf("reading of a non-leader used: %d %s", rec.Code, rec.Body)
	}
}

// A config key that cannot be used (E1): GET /patroni says why, PATCH over
// a key that is not even an object is refused with what to do, and PUT
// /config (regent edit-config --replace) writes a valid one.
func TestUnusableConfigKey(t *testing.T) {
	c := controlCluster()
	c.Config, c.ConfigProblem = nil, "key /service/demo/config: invalid dynamic configuration: invalid JSON: unexpected end of JSON input"
	store := newStore(c)
	snap := primarySnap()
	snap.Cluster = c
	srv := New(fakeSource{snap}, store, nil)
	srv.Store = store
	h := srv.Handler()

	rec := call(t, h, "GET", "/patroni", "")
	var st struct {
		Regent struct {
			ConfigProblem string `json:"config_problem"`
		} `json:"regent"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Regent.ConfigProblem != c.ConfigProblem {
		t.Errorf("GET /patroni regent.config_problem = %q, %v (%s)", st.Regent.ConfigProblem, err, rec.Body)
	}
	rec = call(t, h, "PATCH", "/config", `{"ttl": 10}`)
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(errorOf(t, rec), "PUT /config") {
		t.Errorf("PATCH over an unusable key = %d %s", rec.Code, rec.Body)
	}
	rec = call(t, h, "GET", "/config", "")
	if rec.Code != http.StatusBadGateway || !strings.Contains(errorOf(t, rec), "invalid JSON") {
		t.Errorf("GET /config = %d %s", rec.Code, rec.Body)
	}
	rec = call(t, h, "PUT", "/config", `{"ttl": 5, "slots": {"s": {"type": "physical"}}, "postgresql": {"parameters": {"max_connections": 150}}}`)
	if rec.Code != 200 {
		t.Fatalf("PUT = %d %s", rec.Code, rec.Body)
	}
	v := store.view()
	b, _ := json.Marshal(v.Config)
	if !strings.Contains(string(b), `"slots":{"s":{"type":"physical"}}`) || !strings.Contains(string(b), `"max_connections":150`) {
		t.Errorf("stored config = %s", b)
	}
}
