package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMetricsRoute(t *testing.T) {
	srv := New(fakeSource{snap: primarySnap()}, nil, nil)
	// Basic auth on the mutating endpoints does not apply to /metrics.
	srv.Access = Access{Username: "admin", Password: "s3cret"}
	send := func(method string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(method, "/metrics", nil))
		return rec
	}

	// Not enabled: 503 with a JSON error.
	rec := send(http.MethodGet)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /metrics without a handler: %d, want 503", rec.Code)
	}
	var body struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Errorf("503 body %q is not a JSON error: %v", rec.Body, err)
	}
	if rec := send(http.MethodHead); rec.Code != http.StatusServiceUnavailable || rec.Body.Len() != 0 {
		t.Errorf("HEAD /metrics without a handler: %d with %d body bytes, want 503 and none", rec.Code, rec.Body.Len())
	}

	var calls []string
	srv.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, r.Method)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte("patroni_primary{scope=\"demo\",name=\"pg1\"} 1\n"))
	})
	rec = send(http.MethodGet)
	if rec.Code != http.StatusOK || rec.Body.String() != "patroni_primary{scope=\"demo\",name=\"pg1\"} 1\n" {
		t.Errorf("GET /metrics: %d %q", rec.Code, rec.Body)
	}
	if rec := send(http.MethodHead); rec.Code != http.StatusOK {
		t.Errorf("HEAD /metrics: %d, want 200", rec.Code)
	}
	if len(calls) != 2 || calls[0] != http.MethodGet || calls[1] != http.MethodHead {
		t.Errorf("handler calls %v, want [GET HEAD]", calls)
	}

	// Other methods: 405 naming the allowed ones (after authentication,
	// like every mutating method).
	r := httptest.NewRequest(http.MethodPost, "/metrics", nil)
	r.SetBasicAuth("admin", "s3cret")
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, r)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /metrics: %d Allow %q, want 405 and \"GET, HEAD\"", rec.Code, rec.Header().Get("Allow"))
	}
	if len(calls) != 2 {
		t.Errorf("POST reached the metrics handler")
	}
}

func TestSnapshotMetricsHelpers(t *testing.T) {
	s := primarySnap()
	now := s.Taken
	if !s.LeaseHeldAt(now) {
		t.Errorf("LeaseHeldAt: false for a fresh primary snapshot")
	}
	if s.LeaseHeldAt(now.Add(2 * ttlOf(&s))) {
		t.Errorf("LeaseHeldAt: true two TTLs later")
	}
	r := Snapshot{Role: "replica", ReplayLSN: optime - mb, Cluster: testCluster()}
	if lag, ok := r.ReplicaReplayLag(); !ok || lag != mb {
		t.Errorf("ReplicaReplayLag = %d, %v; want %d, true", lag, ok, mb)
	}
	if _, ok := (&Snapshot{}).ReplicaReplayLag(); ok {
		t.Errorf("ReplicaReplayLag known without any WAL position")
	}
}
