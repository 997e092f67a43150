package metrics

import (
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
)

// now is the fixed scrape time of the tests.
var now = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type fakeSource struct{ snap api.Snapshot }

func (f *fakeSource) Snapshot() api.Snapshot { return f.snap }

func i64(v int64) *int64 { return &v }

const (
	optime = int64(0x5000000)
	mb     = int64(1 << 20)
)

func testView() *cluster.Cluster {
	return &cluster.Cluster{
		Scope:  "demo",
		Leader: &cluster.Leader{Name: "pg1"},
		Status: cluster.Status{Optime: optime},
		Members: map[string]*cluster.Member{
			"pg1": {Name: "pg1", Role: "primary", State: "running", XLogLocation: i64(optime)},
			"pg2": {Name: "pg2", Role: "replica", State: "running"},
			"pg3": {Name: "pg3", Role: "replica", State: "running"},
		},
	}
}

// primarySnap is pg1, the primary of a three-member cluster with one
// synchronous and one asynchronous standby.
func primarySnap() api.Snapshot {
	return api.Snapshot{
		Scope: "demo", Name: "pg1", Version: "0.1.0",
		Taken: now.Add(-1500 * time.Millisecond), LastLoop: now.Add(-1500 * time.Millisecond),
		Role: cluster.RolePrimary, State: cluster.StateRunning,
		HoldsLeaderKey: true, LeaseDeadline: now.Add(2 * time.Second),
		LastRenewalConfirmed: now.Add(-1450 * time.Millisecond),
		Writable:             true,
		PostmasterStartTime:  time.Date(2026, 3, 1, 0, 0, 0, 500_000_000, time.UTC),
		ServerVersion:        150007, Timeline: 3,
		XLogLocation: optime,
		Replication: []api.Replica{
			{ApplicationName: "pg2", State: "streaming", SyncState: "sync", SentLSN: optime, ReplayLSN: optime - mb, ReplayLagSeconds: 0.25},
			{ApplicationName: "pg3", State: "streaming", SyncState: "async", SentLSN: optime - 2*mb, ReplayLSN: optime - 3*mb, ReplayLagSeconds: 4},
			{ApplicationName: "pg3", State: "backup", SyncState: "async"}, // duplicate name: ignored
		},
		DCSLastSeen: now.Add(-time.Second), DCSReachable: true,
		Cluster:  testView(),
		LoopWait: time.Second, TTL: 5 * time.Second, MaximumLagOnFailover: mb,
		SyncStandbysExpected: 1,
		WatchdogState:        api.WatchdogActive,
		PendingRestart:       true,
		WALDiskFreeBytes:     30 << 30, WALDiskTotalBytes: 100 << 30,
	}
}

// replicaSnap is pg2, a streaming synchronous replica of primarySnap.
func replicaSnap() api.Snapshot {
	replayed := time.Date(2026, 3, 4, 5, 6, 5, 250_000_000, time.UTC)
	return api.Snapshot{
		Scope: "demo", Name: "pg2", Version: "0.1.0",
		Taken: now.Add(-500 * time.Millisecond), LastLoop: now.Add(-500 * time.Millisecond),
		Role: cluster.RoleReplica, State: cluster.StateRunning,
		PostmasterStartTime: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		ServerVersion:       150007, Timeline: 3,
		ReceiveLSN: optime - mb/2, ReplayLSN: optime - mb, ReplayedTimestamp: &replayed,
		ReplicationState: cluster.ReplicationStreaming,
		DCSLastSeen:      now.Add(-time.Second), DCSReachable: true,
		Cluster:  testView(),
		LoopWait: time.Second, TTL: 5 * time.Second, MaximumLagOnFailover: mb,
		SyncStandby: true,
		Tags:        cluster.Tags{NoFailover: true},
		XLogPaused:  true,
	}
}

func newTest(s api.Snapshot) (*Metrics, *fakeSource) {
	src := &fakeSource{snap: s}
	m := New(src)
	m.now = func() time.Time { return now }
	return m, src
}

type families map[string]*dto.MetricFamily

func gather(t *testing.T, m *Metrics) families {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := families{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// find returns the series of family name whose labels include want
// (pairs of label name and value).
func (f families) find(name string, want ...string) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if got[want[i]] != want[i+1] {
				continue next
			}
		}
		return m
	}
	return nil
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return math.NaN()
}

// expect checks the value of each named series; labels holds extra
// label pairs for all of them.
func expect(t *testing.T, f families, want map[string]float64, labels ...string) {
	t.Helper()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := f.find(n, labels...)
		if m == nil {
			t.Errorf("%s%v: missing", n, labels)
			continue
		}
		if got := metricValue(m); math.Abs(got-want[n]) > 1e-9 {
			t.Errorf("%s%v = %v, want %v", n, labels, got, want[n])
		}
	}
}

func expectAbsent(t *testing.T, f families, names ...string) {
	t.Helper()
	for _, n := range names {
		if f[n] != nil {
			t.Errorf("%s: present, want absent", n)
		}
	}
}

func TestPrimarySnapshotPatroniMetrics(t *testing.T) {
	m, _ := newTest(primarySnap())
	f := gather(t, m)
	expect(t, f, map[string]float64{
		"patroni_version":                      100, // "000100"
		"patroni_postgres_running":             1,
		"patroni_postmaster_start_time":        float64(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()) + 0.5,
		"patroni_primary":                      1,
		"patroni_xlog_location":                float64(optime),
		"patroni_standby_leader":               0,
		"patroni_replica":                      0,
		"patroni_sync_standby":                 0,
		"patroni_quorum_standby":               0,
		"patroni_xlog_received_location":       0,
		"patroni_xlog_replayed_location":       0,
		"patroni_xlog_replayed_timestamp":      0,
		"patroni_xlog_paused":                  0,
		"patroni_postgres_streaming":           0,
		"patroni_postgres_in_archive_recovery": 0,
		"patroni_postgres_server_version":      150007,
		"patroni_cluster_unlocked":             0,
		"patroni_failsafe_mode_is_active":      0,
		"patroni_failsafe_mode_enabled":        0,
		"patroni_failsafe_member":              0,
		"patroni_postgres_timeline":            3,
		"patroni_dcs_last_seen":                float64(now.Add(-time.Second).Unix()),
		"patroni_pending_restart":              1,
		"patroni_is_paused":                    0,
		"patroni_postgres_state":               5,
		"patroni_failover_priority":            1,
	}, "scope", "demo", "name", "pg1")

	// Types as in Patroni: LSNs and the timeline are counters.
	for name, typ := range map[string]dto.MetricType{
		"patroni_xlog_location":           dto.MetricType_COUNTER,
		"patroni_xlog_received_location":  dto.MetricType_COUNTER,
		"patroni_xlog_replayed_location":  dto.MetricType_COUNTER,
		"patroni_postgres_timeline":       dto.MetricType_COUNTER,
		"patroni_primary":                 dto.MetricType_GAUGE,
		"patroni_xlog_replayed_timestamp": dto.MetricType_GAUGE,
	} {
		if got := f[name].GetType(); got != typ {
			t.Errorf("%s: type %v, want %v", name, got, typ)
		}
	}
	// Every patroni_* series carries exactly the labels scope and name.
	for name, fam := range f {
		if !strings.HasPrefix(name, "patroni_") {
			continue
		}
		for _, s := range fam.GetMetric() {
			if len(s.GetLabel()) != 2 || s.GetLabel()[0].GetName() != "name" || s.GetLabel()[1].GetName() != "scope" {
				t.Errorf("%s: labels %v, want name and scope", name, s.GetLabel())
			}
		}
	}
}

func TestPrimarySnapshotRegentMetrics(t *testing.T) {
	m, _ := newTest(primarySnap())
	f := gather(t, m)
	lbl := []string{"scope", "demo", "name", "pg1"}
	expect(t, f, map[string]float64{
		"regent_snapshot_timestamp_seconds":             unix(now.Add(-1500 * time.Millisecond)),
		"regent_snapshot_age_seconds":                   1.5,
		"regent_ha_last_loop_timestamp_seconds":         unix(now.Add(-1500 * time.Millisecond)),
		"regent_leader_key_held":                        1,
		"regent_lease_remaining_seconds":                2,
		"regent_lease_last_confirmed_timestamp_seconds": unix(now.Add(-1450 * time.Millisecond)),
		"regent_config_ttl_seconds":                     5,
		"regent_config_loop_wait_seconds":               1,
		"regent_config_maximum_lag_on_failover_bytes":   float64(mb),
		"regent_dcs_reachable":                          1,
		"regent_fencing_active":                         0,
		"regent_postgres_writable":                      1,
		"regent_sync_standbys_expected":                 1,
		"regent_sync_standbys_observed":                 1,
		"regent_wal_disk_free_bytes":                    30 << 30,
		"regent_wal_disk_total_bytes":                   100 << 30,
		"regent_cluster_members":                        3,
		"regent_dcs_config_invalid":                     0,
	}, lbl...)
	expectAbsent(t, f, "regent_replica_replay_lag_bytes")

	expect(t, f, map[string]float64{"regent_watchdog_state": 1}, append(lbl, "state", "active")...)
	expect(t, f, map[string]float64{"regent_watchdog_state": 0}, append(lbl, "state", "off")...)
	expect(t, f, map[string]float64{"regent_watchdog_state": 0}, append(lbl, "state", "failed")...)

	// Per-standby lag as seen from the primary.
	expect(t, f, map[string]float64{
		"regent_replication_standby_replay_lag_bytes":   float64(mb),
		"regent_replication_standby_send_lag_bytes":     0,
		"regent_replication_standby_replay_lag_seconds": 0.25,
		"regent_replication_standby_info":               1,
	}, append(lbl, "standby", "pg2")...)
	expect(t, f, map[string]float64{
		"regent_replication_standby_replay_lag_bytes":   float64(3 * mb),
		"regent_replication_standby_send_lag_bytes":     float64(2 * mb),
		"regent_replication_standby_replay_lag_seconds": 4,
	}, append(lbl, "standby", "pg3")...)
	if s := f.find("regent_replication_standby_info", "standby", "pg2"); s == nil || labelOf(s, "sync_state") != "sync" || labelOf(s, "state") != "streaming" {
		t.Errorf("standby info of pg2: %v", s)
	}
	if n := len(f["regent_replication_standby_info"].GetMetric()); n != 2 {
		t.Errorf("regent_replication_standby_info has %d series, want 2 (duplicate application_name dropped)", n)
	}
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestReplicaSnapshot(t *testing.T) {
	m, _ := newTest(replicaSnap())
	f := gather(t, m)
	lbl := []string{"scope", "demo", "name", "pg2"}
	expect(t, f, map[string]float64{
		"patroni_primary":                      0,
		"patroni_replica":                      1,
		"patroni_sync_standby":                 1,
		"patroni_xlog_location":                0,
		"patroni_xlog_received_location":       float64(optime - mb/2),
		"patroni_xlog_replayed_location":       float64(optime - mb),
		"patroni_xlog_replayed_timestamp":      unix(time.Date(2026, 3, 4, 5, 6, 5, 250_000_000, time.UTC)),
		"patroni_xlog_paused":                  1,
		"patroni_postgres_streaming":           1,
		"patroni_postgres_in_archive_recovery": 0,
		"patroni_cluster_unlocked":             0,
		"patroni_failover_priority":            0, // nofailover
		"regent_leader_key_held":               0,
		"regent_replica_replay_lag_bytes":      float64(mb),
		"regent_postgres_writable":             0,
		"regent_snapshot_age_seconds":          0.5,
	}, lbl...)
	expectAbsent(t, f,
		"regent_lease_remaining_seconds", "regent_lease_last_confirmed_timestamp_seconds",
		"regent_sync_standbys_expected", "regent_sync_standbys_observed",
		"regent_replication_standby_info", "regent_replication_standby_replay_lag_bytes",
		"regent_wal_disk_free_bytes")
}

func TestStoppedMemberAndUnlockedCluster(t *testing.T) {
	s := replicaSnap()
	s.State = cluster.StateStopped
	s.Cluster = &cluster.Cluster{Scope: "demo", ConfigProblem: "key /service/demo/config: invalid"} // no leader key
	s.WatchdogState = "bogus"
	m, _ := newTest(s)
	f := gather(t, m)
	expect(t, f, map[string]float64{
		"patroni_postgres_running":        0,
		"patroni_postgres_state":          12,
		"patroni_postgres_timeline":       0,
		"patroni_postgres_server_version": 0,
		"patroni_xlog_replayed_location":  0,
		"patroni_postmaster_start_time":   0,
		"patroni_cluster_unlocked":        1,
		"regent_cluster_members":          0,
		"regent_dcs_config_invalid":       1,
	}, "name", "pg2")
	expect(t, f, map[string]float64{"regent_watchdog_state": 1}, "state", "other")
	// Patroni leaves these out when PostgreSQL does not run.
	expectAbsent(t, f, "patroni_postgres_streaming", "patroni_postgres_in_archive_recovery", "regent_replica_replay_lag_bytes")

	s.State = cluster.StateRewinding
	m, _ = newTest(s)
	expect(t, gather(t, m), map[string]float64{"patroni_postgres_state": -1}, "name", "pg2")
}

func TestEmptySnapshot(t *testing.T) {
	m := New(nil)
	f := gather(t, m)
	if v := metricValue(f.find("regent_snapshot_age_seconds")); !math.IsInf(v, 1) {
		t.Errorf("regent_snapshot_age_seconds = %v before the first snapshot, want +Inf", v)
	}
	expect(t, f, map[string]float64{
		"regent_snapshot_timestamp_seconds": 0,
		"patroni_postgres_running":          0,
		"patroni_cluster_unlocked":          1,
		"patroni_version":                   0,
		"patroni_dcs_last_seen":             0,
		"regent_leader_key_held":            0,
	})
	expect(t, f, map[string]float64{"regent_watchdog_state": 1}, "state", "off")
}

func TestStaleSnapshotLosesLease(t *testing.T) {
	s := primarySnap()
	m, _ := newTest(s)
	// Three seconds later without a new snapshot: past the deadline.
	m.now = func() time.Time { return now.Add(3 * time.Second) }
	f := gather(t, m)
	expect(t, f, map[string]float64{
		"regent_leader_key_held":         0,
		"regent_lease_remaining_seconds": 0,
		"regent_snapshot_age_seconds":    4.5,
	})
}

func TestEventMetrics(t *testing.T) {
	m, _ := newTest(primarySnap())
	lbl := []string{"scope", "demo", "name", "pg1"}

	// Every counter series exists at 0 before the first event.
	f := gather(t, m)
	expect(t, f, map[string]float64{"regent_promotions_total": 0}, append(lbl, "reason", "failover")...)
	expect(t, f, map[string]float64{"regent_lease_renewals_total": 0}, append(lbl, "result", "failed")...)
	expect(t, f, map[string]float64{"regent_decisions_total": 0}, append(lbl, "action", "leader_housekeeping")...)
	expectAbsent(t, f, "regent_lease_last_renewal_duration_seconds")

	m.ObserveLoop(3 * time.Millisecond)
	m.ObserveLoop(300 * time.Millisecond)
	m.RecordDecision("leader_housekeeping")
	m.RecordDecision("leader_housekeeping")
	m.RecordDecision("no_such_action")
	m.RecordPromotion(PromotionFailover)
	m.RecordPromotion("typo")
	m.RecordDemotion(DemotionOtherLeader)
	m.RecordFence(FenceGuardTimer)
	m.ObserveRenewal(20*time.Millisecond, true)
	m.ObserveRenewal(1200*time.Millisecond, false)

	f = gather(t, m)
	expect(t, f, map[string]float64{"regent_decisions_total": 2}, append(lbl, "action", "leader_housekeeping")...)
	expect(t, f, map[string]float64{"regent_decisions_total": 1}, append(lbl, "action", "other")...)
	expect(t, f, map[string]float64{"regent_promotions_total": 1}, append(lbl, "reason", "failover")...)
	expect(t, f, map[string]float64{"regent_promotions_total": 1}, append(lbl, "reason", "other")...)
	expect(t, f, map[string]float64{"regent_promotions_total": 0}, append(lbl, "reason", "switchover")...)
	expect(t, f, map[string]float64{"regent_demotions_total": 1}, append(lbl, "reason", "other_leader")...)
	expect(t, f, map[string]float64{"regent_fences_total": 1}, append(lbl, "reason", "guard_timer")...)
	expect(t, f, map[string]float64{"regent_lease_renewals_total": 1}, append(lbl, "result", "ok")...)
	expect(t, f, map[string]float64{"regent_lease_renewals_total": 1}, append(lbl, "result", "failed")...)
	expect(t, f, map[string]float64{"regent_lease_last_renewal_duration_seconds": 1.2}, lbl...)

	h := f.find("regent_ha_loop_duration_seconds", lbl...).GetHistogram()
	if h.GetSampleCount() != 2 || math.Abs(h.GetSampleSum()-0.303) > 1e-9 {
		t.Errorf("loop histogram: count %d sum %v, want 2 and 0.303", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		want := uint64(0)
		switch {
		case b.GetUpperBound() >= 0.5:
			want = 2
		case b.GetUpperBound() >= 0.005:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("loop histogram bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	r := f.find("regent_lease_renewal_duration_seconds", lbl...).GetHistogram()
	if r.GetSampleCount() != 2 {
		t.Errorf("renewal histogram count %d, want 2", r.GetSampleCount())
	}
}

func TestNilMetricsIsNoop(t *testing.T) {
	var m *Metrics
	m.ObserveLoop(time.Second)
	m.RecordDecision("wait")
	m.RecordPromotion(PromotionFailover)
	m.RecordDemotion(DemotionLeaseLost)
	m.RecordFence(FenceRenewDeadline)
	m.ObserveRenewal(time.Millisecond, true)
}

// TestDecisionActionsCoverHAKinds: every internal/ha action kind has its
// own label value.
func TestDecisionActionsCoverHAKinds(t *testing.T) {
	known := map[string]bool{}
	for _, a := range DecisionActions {
		known[a] = true
	}
	for _, k := range []ha.Kind{ha.Wait, ha.Fence, ha.Demote, ha.Promote, ha.LeaderHousekeeping, ha.ClearFailover} {
		if !known[k.String()] {
			t.Errorf("ha action kind %q is missing from DecisionActions", k)
		}
	}
	if known["unknown"] || known[LabelOther] {
		t.Errorf("DecisionActions = %v: must not hold unknown or other", DecisionActions)
	}
}

// TestConsistentWithDescriptions checks with a pedantic registry that every
// collected metric matches a described one, for every kind of snapshot.
func TestConsistentWithDescriptions(t *testing.T) {
	for name, s := range map[string]api.Snapshot{
		"empty": {}, "primary": primarySnap(), "replica": replicaSnap(),
	} {
		m, _ := newTest(s)
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register((*collector)(m)); err != nil {
			t.Fatalf("%s: register: %v", name, err)
		}
		if _, err := reg.Gather(); err != nil {
			t.Errorf("%s: pedantic gather: %v", name, err)
		}
	}
}

// TestRegentMetricsLint applies Prometheus' naming lint to the regent_*
// metrics (the patroni_* ones keep Patroni's names, counters without
// _total included).
func TestRegentMetricsLint(t *testing.T) {
	m, _ := newTest(primarySnap())
	m.ObserveRenewal(time.Millisecond, true)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var own []*dto.MetricFamily
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "regent_") {
			own = append(own, f)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(own).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// TestHandlerServesTextQuickly scrapes through the REST API server and
// parses the answer as the Prometheus text format. The source is in
// memory by contract, so the scrape must answer at once.
func TestHandlerServesTextQuickly(t *testing.T) {
	m, src := newTest(primarySnap())
	m.RecordPromotion(PromotionSwitchover)
	srv := api.New(src, nil, nil)
	srv.Metrics = m.Handler()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	start := time.Now()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 100*time.Millisecond {
		t.Errorf("scrape took %v, want under 100ms", elapsed)
	}
	for _, name := range []string{"patroni_primary", "patroni_xlog_location", "regent_snapshot_age_seconds",
		"regent_promotions_total", "regent_ha_loop_duration_seconds", "go_goroutines"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if got := fams["patroni_xlog_location"].GetType(); got != dto.MetricType_COUNTER {
		t.Errorf("patroni_xlog_location is %v in the text output, want counter", got)
	}

	head, err := http.Head(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusOK {
		t.Errorf("HEAD /metrics: %d", head.StatusCode)
	}
}

func TestPatroniVersion(t *testing.T) {
	for v, want := range map[string]float64{
		"4.1.4": 40104, "0.1.0": 100, "1.12.3": 11203, "0.2.0-dev": 200, "": 0, "dev": 0, "1.x": 0,
	} {
		if got := patroniVersion(v); got != want {
			t.Errorf("patroniVersion(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestConcurrentRecordAndScrape records events while scraping (run with
// -race).
func TestConcurrentRecordAndScrape(t *testing.T) {
	m, _ := newTest(primarySnap())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			m.ObserveLoop(time.Millisecond)
			m.ObserveRenewal(time.Millisecond, i%2 == 0)
			m.RecordDecision("wait")
		}
	}()
	for i := 0; i < 20; i++ {
		if _, err := m.Registry().Gather(); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	f := gather(t, m)
	if c := f.find("regent_ha_loop_duration_seconds").GetHistogram().GetSampleCount(); c != 200 {
		t.Errorf("loop count %d, want 200", c)
	}
}
