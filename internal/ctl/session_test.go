package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// request is one call a fake member received.
type request struct {
	member, method, path, ifMatch string
	body                          map[string]any
}

// fakeMembers runs one REST server per member and records the calls. The
// reply function decides each response.
type fakeMembers struct {
	mu    sync.Mutex
	calls []request
	srvs  map[string]*httptest.Server
	reply func(r request) (int, string)
}

func newFakeMembers(t *testing.T, names ...string) *fakeMembers {
	f := &fakeMembers{srvs: map[string]*httptest.Server{}}
	for _, n := range names {
		name := n
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			req := request{member: name, method: r.Method, path: r.URL.Path, ifMatch: r.Header.Get("If-Match")}
			if len(b) > 0 {
				_ = json.Unmarshal(b, &req.body)
			}
			f.mu.Lock()
			f.calls = append(f.calls, req)
			reply := f.reply
			f.mu.Unlock()
			status, body := http.StatusOK, ""
			if reply != nil {
				status, body = reply(req)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		f.srvs[name] = srv
	}
	return f
}

func (f *fakeMembers) apiURL(name string) string { return f.srvs[name].URL + "/patroni" }

func (f *fakeMembers) recorded() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.calls...)
}

// threeMembers is a view of n1 (leader), n2 and n3 pointing at the fakes.
func threeMembers(f *fakeMembers) *cluster.Cluster {
	mb := int64(1 << 20)
	cfg := cluster.DefaultDynamicConfig()
	return &cluster.Cluster{
		Scope:          "demo",
		Leader:         &cluster.Leader{Name: "n1"},
		Config:         &cfg,
		ConfigRevision: 77,
		Status:         cluster.Status{Optime: 3 * mb},
		Members: map[string]*cluster.Member{
			"n1": {Name: "n1", APIURL: f.apiURL("n1"), ConnURL: "postgres://127.0.0.1:5441/postgres", State: "running", Role: "primary", XLogLocation: lsn(3 * mb)},
			"n2": {Name: "n2", APIURL: f.apiURL("n2"), ConnURL: "postgres://127.0.0.1:5442/postgres", State: "running", Role: "replica", ReplicationState: "streaming", XLogLocation: lsn(2 * mb)},
			"n3": {Name: "n3", APIURL: f.apiURL("n3"), ConnURL: "postgres://127.0.0.1:5443/postgres", State: "running", Role: "replica", ReplicationState: "streaming", XLogLocation: lsn(3 * mb)},
		},
	}
}

// testSession serves views in turn (the last one repeats).
func testSession(views ...*cluster.Cluster) (*Session, *bytes.Buffer) {
	var out bytes.Buffer
	var mu sync.Mutex
	i := 0
	return &Session{
		Load: func(context.Context) (*cluster.Cluster, error) {
			mu.Lock()
			defer mu.Unlock()
			v := views[min(i, len(views)-1)]
			i++
			return v, nil
		},
		API:    &APIClient{Username: "regent", Password: "pw"},
		Prompt: &Prompter{In: strings.NewReader(""), Out: &out},
		Out:    &out,
		Poll:   time.Millisecond,
	}, &out
}

func TestSwitchoverFallsBackWhenLeaderUnreachable(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) { return http.StatusOK, `Successfully switched over to "n3"` }
	view := threeMembers(f)
	f.srvs["n1"].Close()
	s, out := testSession(view)
	if err := s.Switchover(context.Background(), SwitchoverOptions{Candidate: "n3", Force: true}); err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	if len(calls) != 1 || calls[0].member != "n2" || calls[0].method != http.MethodPost || calls[0].path != "/switchover" ||
		calls[0].body["leader"] != "n1" || calls[0].body["candidate"] != "n3" || calls[0].body["scheduled_at"] != nil {
		t.Fatalf("calls %+v", calls)
	}
	if !strings.Contains(out.String(), "Member n1 is unreachable") || !strings.Contains(out.String(), `Successfully switched over to "n3"`) {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestSwitchoverRefusals(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) {
		return http.StatusPreconditionFailed, `{"error":"candidate does not exists"}`
	}
	view := threeMembers(f)
	ctx := context.Background()
	cases := []struct {
		name string
		o    SwitchoverOptions
		want string
	}{
		{"unknown candidate", SwitchoverOptions{Candidate: "nosuch", Force: true}, "member nosuch is not in cluster demo"},
		{"candidate is leader", SwitchoverOptions{Candidate: "n1", Force: true}, "already the leader"},
		{"wrong leader", SwitchoverOptions{Leader: "n2", Candidate: "n3", Force: true}, "n2 is not the leader"},
		{"no terminal, no candidate", SwitchoverOptions{}, "pass --candidate NAME, or --force"},
		{"no terminal, no force", SwitchoverOptions{Candidate: "n2"}, "pass --force"},
		{"past schedule", SwitchoverOptions{Candidate: "n2", Force: true, Scheduled: "2000-01-01T00:00:00Z"}, "in the past"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testSession(view)
			if err := s.Switchover(ctx, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if n := len(f.recorded()); n != 0 {
		t.Fatalf("%d requests sent for refused switchovers", n)
	}
	s, _ := testSession(view)
	err := s.Switchover(ctx, SwitchoverOptions{Candidate: "n2", Force: true})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 412 || !strings.HasPrefix(err.Error(), "candidate does not exists") {
		t.Fatalf("server refusal: %v", err)
	}
	noLeader := threeMembers(f)
	noLeader.Leader = nil
	s, _ = testSession(noLeader)
	if err := s.Switchover(ctx, SwitchoverOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "regent failover") {
		t.Fatalf("no leader: %v", err)
	}
}

func TestSwitchoverInteractiveAndScheduled(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) {
		if r.method == http.MethodDelete {
			return http.StatusNotFound, `{"error":"no switchover scheduled"}`
		}
		return http.StatusAccepted, "Switchover scheduled"
	}
	view := threeMembers(f)
	s, out := testSession(view)
	s.Prompt = &Prompter{In: strings.NewReader("n2\ny\n"), Out: out, Interactive: true}
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	if err := s.Switchover(context.Background(), SwitchoverOptions{Scheduled: at}); err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	if len(calls) != 1 || calls[0].member != "n1" || calls[0].body["candidate"] != "n2" || calls[0].body["scheduled_at"] != at {
		t.Fatalf("calls %+v", calls)
	}
	for _, want := range []string{"Candidates: n2, n3", "Are you sure you want to switchover cluster demo, demoting current leader n1 in favour of n2 at " + at + "? [y/N]", "Switchover scheduled"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Answering no sends nothing.
	s, _ = testSession(view)
	s.Prompt = &Prompter{In: strings.NewReader("n\n"), Out: io.Discard, Interactive: true}
	if err := s.Switchover(context.Background(), SwitchoverOptions{Candidate: "n2"}); !errors.Is(err, ErrAborted) {
		t.Fatalf("declined: %v", err)
	}
	if len(f.recorded()) != 1 {
		t.Fatal("declined switchover was sent")
	}
	// Cancel with nothing scheduled fails.
	if err := s.CancelSwitchover(context.Background()); err == nil || !strings.Contains(err.Error(), "no switchover is scheduled") {
		t.Fatalf("cancel: %v", err)
	}
}

func TestFailover(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) { return http.StatusOK, `Successfully failed over to "n2"` }
	s, out := testSession(threeMembers(f))
	if err := s.Failover(context.Background(), FailoverOptions{Candidate: "n2", Force: true}); err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	if len(calls) != 1 || calls[0].member != "n2" || calls[0].path != "/failover" || calls[0].body["candidate"] != "n2" || len(calls[0].body) != 1 {
		t.Fatalf("calls %+v", calls)
	}
	for _, want := range []string{"up to 1.0 MB of WAL acknowledged by the old leader may be lost", "has a leader (n1)", `Successfully failed over to "n2"`} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := s.Failover(context.Background(), FailoverOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "--candidate") {
		t.Fatalf("no candidate: %v", err)
	}
	if err := s.Failover(context.Background(), FailoverOptions{Candidate: "n2"}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("no terminal: %v", err)
	}
}

func TestEditConfigSendsMergePatchWithRevision(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) { return http.StatusOK, `{}` }
	view := threeMembers(f)
	view.Config.PostgreSQL.Parameters = map[string]string{"work_mem": "4MB"}
	s, out := testSession(view)
	err := s.EditConfig(context.Background(), EditConfigOptions{
		Set: []string{"ttl=10", "postgresql.use_pg_rewind=false"}, PGParams: []string{"work_mem=null", "max_connections=200"}, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	if len(calls) != 1 || calls[0].member != "n1" || calls[0].method != http.MethodPatch || calls[0].path != "/config" || calls[0].ifMatch != "77" {
		t.Fatalf("calls %+v", calls)
	}
	want := `{"postgresql":{"parameters":{"max_connections":"200","work_mem":null},"use_pg_rewind":false},"ttl":10}`
	if got := jsonOf(t, calls[0].body); got != want {
		t.Fatalf("patch %s, want %s", got, want)
	}
	for _, want := range []string{"-ttl: 5\n+ttl: 10\n", "-    work_mem: 4MB\n", "Configuration changed\n"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestEditConfigOutcomes(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) {
		if r.method == http.MethodPatch {
			return http.StatusConflict, `{"error":"config changed"}`
		}
		return http.StatusOK, `{}`
	}
	view := threeMembers(f)
	ctx := context.Background()

	s, out := testSession(view)
	if err := s.EditConfig(ctx, EditConfigOptions{Set: []string{"ttl=5"}, Force: true}); err != nil || !strings.Contains(out.String(), "Not changed") {
		t.Fatalf("unchanged: %v %q", err, out.String())
	}
	s, _ = testSession(view)
	if err := s.EditConfig(ctx, EditConfigOptions{}); !errors.Is(err, ErrNothingToChange) {
		t.Fatalf("no change without a terminal: %v", err)
	}
	s, _ = testSession(view)
	if err := s.EditConfig(ctx, EditConfigOptions{Set: []string{"ttl=10"}, Force: true}); err == nil || err.Error() != "configuration was changed by someone else in the meantime; run again" {
		t.Fatalf("conflict: %v", err)
	}
	s, _ = testSession(view)
	if err := s.EditConfig(ctx, EditConfigOptions{Set: []string{"nonsense=1"}, Force: true}); err == nil || !strings.Contains(err.Error(), `unknown key "nonsense"`) {
		t.Fatalf("unknown key: %v", err)
	}
	s, _ = testSession(view)
	if err := s.EditConfig(ctx, EditConfigOptions{Set: []string{"ttl=10"}}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("no confirmation without a terminal: %v", err)
	}
	if n := len(f.recorded()); n != 1 {
		t.Fatalf("%d requests, want only the conflicting PATCH", n)
	}
	// --replace from standard input sends PUT with the whole document.
	s, out = testSession(view)
	s.Stdin = strings.NewReader(`{"ttl": 9, "loop_wait": 1, "retry_timeout": 1}`)
	if err := s.EditConfig(ctx, EditConfigOptions{Replace: "-", Force: true}); err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	last := calls[len(calls)-1]
	if last.method != http.MethodPut || last.ifMatch != "" || jsonOf(t, last.body) != `{"loop_wait":1,"retry_timeout":1,"ttl":9}` {
		t.Fatalf("replace request %+v", last)
	}
	// show-config
	s, out = testSession(view)
	if err := s.ShowConfig(ctx); err != nil || !strings.Contains(out.String(), "loop_wait: 1\n") {
		t.Fatalf("show-config: %v\n%s", err, out.String())
	}
}

func TestPauseWait(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) { return http.StatusOK, `{"pause":true}` }
	before := threeMembers(f)
	during := threeMembers(f)
	during.Config.Pause = true
	during.Members["n1"].Pause = true
	after := threeMembers(f)
	after.Config.Pause = true
	for _, m := range after.Members {
		m.Pause = true
	}
	s, out := testSession(before, during, during, after)
	if err := s.SetPause(context.Background(), true, true); err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	if len(calls) != 1 || calls[0].member != "n1" || calls[0].method != http.MethodPatch || jsonOf(t, calls[0].body) != `{"pause":true}` {
		t.Fatalf("calls %+v", calls)
	}
	for _, want := range []string{"Success: cluster management is paused", "still waiting for: n2, n3", "All members report pause=true"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	s, _ = testSession(after)
	if err := s.SetPause(context.Background(), true, false); err == nil || !strings.Contains(err.Error(), "already paused") {
		t.Fatalf("pause twice: %v", err)
	}
	s, _ = testSession(during)
	s.WaitTimeout = 20 * time.Millisecond
	during.Config.Pause = false
	if err := s.SetPause(context.Background(), true, true); err == nil || !strings.Contains(err.Error(), "gave up waiting") {
		t.Fatalf("wait timeout: %v", err)
	}
}

func TestRestartAndCancel(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) {
		switch {
		case r.method == http.MethodDelete:
			return http.StatusNotFound, `{"error":"no restart scheduled"}`
		case r.member == "n3":
			return http.StatusServiceUnavailable, `{"error":"restart conditions are not satisfied"}`
		}
		return http.StatusOK, "restarted successfully"
	}
	s, out := testSession(threeMembers(f))
	err := s.Restart(context.Background(), RestartOptions{Role: "replica", Pending: true, Timeout: 60, Force: true})
	if err == nil || !strings.Contains(err.Error(), "restart failed on 1 of 2 members: n3") {
		t.Fatalf("err = %v", err)
	}
	calls := f.recorded()
	if len(calls) != 2 || calls[0].member != "n2" || calls[1].member != "n3" ||
		jsonOf(t, calls[0].body) != `{"restart_pending":true,"role":"replica","timeout":60}` {
		t.Fatalf("calls %+v", calls)
	}
	if !strings.Contains(out.String(), "Success: restart of member n2") || !strings.Contains(out.String(), "restart conditions are not satisfied") {
		t.Fatalf("output:\n%s", out.String())
	}
	if err := s.CancelRestart(context.Background(), []string{"n1"}, ""); err == nil || !strings.Contains(err.Error(), "no scheduled restart") {
		t.Fatalf("cancel without scheduled restart: %v", err)
	}
	if err := s.Restart(context.Background(), RestartOptions{Members: []string{"n1"}}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restart without confirmation: %v", err)
	}
}

func TestReload(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) { return http.StatusAccepted, "reload scheduled" }
	s, out := testSession(threeMembers(f))
	if err := s.Reload(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if n := len(f.recorded()); n != 3 || strings.Count(out.String(), "Reload request received") != 3 {
		t.Fatalf("%d calls, output:\n%s", n, out.String())
	}
	if err := s.Reload(context.Background(), []string{"n9"}); err == nil {
		t.Fatal("unknown member accepted")
	}
}

func TestReinitWait(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) { return http.StatusOK, "reinitialize started" }
	start := threeMembers(f)
	cloning := threeMembers(f)
	cloning.Members["n2"].State, cloning.Members["n2"].ReplicationState = cluster.StateCreatingReplica, ""
	starting := threeMembers(f)
	starting.Members["n2"].State, starting.Members["n2"].ReplicationState = cluster.StateStarting, ""
	done := threeMembers(f)
	s, out := testSession(start, start, cloning, starting, done)
	if err := s.Reinit(context.Background(), ReinitOptions{Members: []string{"n2"}, FromLeader: true, Force: true, Wait: true}); err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	if len(calls) != 1 || calls[0].member != "n2" || calls[0].path != "/reinitialize" || jsonOf(t, calls[0].body) != `{"force":true,"from_leader":true}` {
		t.Fatalf("calls %+v", calls)
	}
	for _, want := range []string{"n2: creating replica", "n2: starting", "Reinitialize is complete on member n2"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	s, _ = testSession(start)
	if err := s.Reinit(context.Background(), ReinitOptions{Members: []string{"n1"}, Force: true}); err == nil || !strings.Contains(err.Error(), "is the leader") {
		t.Fatalf("reinit of the leader: %v", err)
	}
}

func TestEditConfigInEditor(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) { return http.StatusOK, `{}` }
	view := threeMembers(f)
	s, out := testSession(view)
	s.EditorOK = true
	// The "editor" changes ttl and deletes the fence_timeout line.
	err := s.EditConfig(context.Background(), EditConfigOptions{Editor: `sed -i -e 's/^ttl: 5$/ttl: 7/' -e '/^fence_timeout:/d'`, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	if len(calls) != 1 || jsonOf(t, calls[0].body) != `{"fence_timeout":null,"ttl":7}` || calls[0].ifMatch != "77" {
		t.Fatalf("calls %+v", calls)
	}
	if !strings.Contains(out.String(), "-fence_timeout: 1\n") {
		t.Fatalf("output:\n%s", out.String())
	}
	// Saving unchanged, or a failing editor, changes nothing.
	s, out = testSession(view)
	s.EditorOK = true
	if err := s.EditConfig(context.Background(), EditConfigOptions{Editor: "true"}); err != nil || !strings.Contains(out.String(), "Not changed") {
		t.Fatalf("unchanged: %v %q", err, out.String())
	}
	if err := s.EditConfig(context.Background(), EditConfigOptions{Editor: "false"}); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("failing editor: %v", err)
	}
	if err := s.EditConfig(context.Background(), EditConfigOptions{Editor: `sh -c 'echo "ttl: [" > "$1"' x`}); err == nil || !strings.Contains(err.Error(), "invalid YAML") {
		t.Fatalf("broken YAML: %v", err)
	}
	if len(f.recorded()) != 1 {
		t.Fatal("unexpected requests")
	}
}

// A config key that is not even a JSON object (E1) cannot be patched, but
// --replace writes a whole one; numbers Patroni wrote stay numbers when
// another key changes, and Patroni's keys are accepted.
func TestEditConfigRepairsAndKeepsPatroniForms(t *testing.T) {
	f := newFakeMembers(t, "n1", "n2", "n3")
	f.reply = func(r request) (int, string) { return http.StatusOK, `{}` }
	ctx := context.Background()

	broken := threeMembers(f)
	broken.Config, broken.ConfigProblem = nil, "key /service/demo/config: invalid dynamic configuration: invalid JSON"
	s, _ := testSession(broken)
	if err := s.EditConfig(ctx, EditConfigOptions{PGParams: []string{"max_connections=150"}, Force: true}); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("patch over a broken key: %v", err)
	}
	s, _ = testSession(broken)
	s.Stdin = strings.NewReader(`{"ttl": 9, "loop_wait": 1, "retry_timeout": 1, "slots": {"s": {"type": "physical"}}}`)
	if err := s.EditConfig(ctx, EditConfigOptions{Replace: "-", Force: true}); err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	if last := calls[len(calls)-1]; last.method != http.MethodPut || !strings.Contains(jsonOf(t, last.body), `"slots":{"s":{"type":"physical"}}`) {
		t.Fatalf("replace request %+v", last)
	}

	view := threeMembers(f)
	cfg, problems, err := cluster.DecodeDynamicConfig([]byte(`{"ttl": 5, "loop_wait": 1, "retry_timeout": 1,
		"postgresql": {"use_slots": true, "parameters": {"max_connections": 150}}}`))
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	view.Config = &cfg
	s, _ = testSession(view)
	if err := s.EditConfig(ctx, EditConfigOptions{Set: []string{"ttl=10", "check_timeline=true"}, Force: true}); err != nil {
		t.Fatal(err)
	}
	calls = f.recorded()
	if got := jsonOf(t, calls[len(calls)-1].body); got != `{"check_timeline":true,"ttl":10}` {
		t.Fatalf("patch %s", got)
	}
}
