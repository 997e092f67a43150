package bench

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLongestGap(t *testing.T) {
	s := time.Second / 10
	acks := []Ack{{At: 1 * s}, {At: 2 * s}, {At: 3 * s}, {At: 9 * s}, {At: 10 * s}, {At: 30 * s}}
	g, ok := longestGap(acks, 2*s, 10*s)
	if !ok || g != 6*s {
		t.Fatalf("gap %v %v, want 600ms", g, ok)
	}
	// The pair that crosses the window's start counts.
	g, ok = longestGap(acks, 8*s, 10*s)
	if !ok || g != 6*s {
		t.Fatalf("gap %v %v, want 600ms", g, ok)
	}
	if _, ok := longestGap(acks, 31*s, 40*s); ok {
		t.Fatal("no pair after the window start")
	}
}

func TestPercentile(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 100; i++ {
		v = append(v, time.Duration(i))
	}
	if p := percentile(v, 0.99); p != 99 {
		t.Fatalf("p99 = %v", p)
	}
	if p := percentile(v, 0.5); p != 50 {
		t.Fatalf("p50 = %v", p)
	}
	if p := percentile(nil, 0.99); p != 0 {
		t.Fatalf("empty p99 = %v", p)
	}
}

func TestSummarize(t *testing.T) {
	st := summarize([]Sample{
		{Values: map[string]float64{"write": 3}, Acked: 10, Lost: 1},
		{Values: map[string]float64{"write": 1}, Acked: 10},
		{Err: "timeout", Acked: 5},
		{Values: map[string]float64{"write": 2}, Acked: 10},
	}, "write")
	if st.min != 1 || st.med != 2 || st.max != 3 || st.failed != 1 || st.lost != 1 || st.acked != 35 {
		t.Fatalf("%+v", st)
	}
	if c := st.cell(); !strings.Contains(c, "**2.00**") || !strings.Contains(c, "1 of 4 failed") {
		t.Fatalf("cell %q", c)
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if _, err := cpuTime(pid); err != nil {
		t.Fatal(err)
	}
	rss, err := rssBytes(pid)
	if err != nil || rss <= 0 {
		t.Fatalf("rss %d %v", rss, err)
	}
	if !alive(pid) || alive(1<<30) {
		t.Fatal("alive")
	}
}

func TestMarkdownRatiosAndTargets(t *testing.T) {
	sample := func(k string, v float64) []Sample {
		return []Sample{{Values: map[string]float64{k: v}, Acked: 100}}
	}
	r := &Report{
		Options: Options{Profiles: []string{"defaults"}, Systems: []string{"regent", "patroni"}, Reps: 1, CrashReps: 1, SyncReps: 1, APIClients: 8, IdleWindow: time.Minute, APIDuration: 10 * time.Second},
		Env:     Environment{Command: "go run ./cmd/regent-bench", Regent: "regent 0.1.0", Patroni: "patroni 3.0.2"},
		Clusters: []*ClusterResult{
			{System: "regent", Profile: "defaults", Scenarios: map[string][]Sample{
				"hostloss":   {{Values: map[string]float64{"write": 5, "api": 5.1}, Acked: 100}},
				"crash":      sample("write", 1),
				"switchover": sample("gap", 0.3),
			}, Footprint: &Footprint{RSSBytes: []int64{30 << 20}, CPUPerMin: []float64{0.1}, EtcdPerMin: 300}, API: &APIResult{RPS: 10000, P99: time.Millisecond}},
			{System: "patroni", Profile: "defaults", Scenarios: map[string][]Sample{
				"hostloss":   {{Values: map[string]float64{"write": 25, "api": 25}, Acked: 100}},
				"crash":      sample("write", 5),
				"switchover": sample("gap", 1.3),
			}, Footprint: &Footprint{RSSBytes: []int64{60 << 20}, CPUPerMin: []float64{0.5}, EtcdPerMin: 100}, API: &APIResult{RPS: 800, P99: 20 * time.Millisecond}},
			{System: "patroni", Profile: "defaults", Sync: true, Scenarios: map[string][]Sample{"hostloss": sample("write", 26)}},
			{System: "regent", Profile: "defaults", Sync: true, Scenarios: map[string][]Sample{"hostloss": sample("write", 6.5)}},
		},
	}
	var b bytes.Buffer
	WriteMarkdown(&b, r, "some notes")
	md := b.String()
	for _, want := range []string{
		"| Host loss: kill → first write acknowledged on the new primary (s) | **5.00** (1 run) | **25.0** (1 run) | 0.20 |",
		"host-loss median ≤ 1/4 of Patroni's (defaults) — met",
		"GET /primary throughput ≥ 10× Patroni's — met",
		"idle agent RSS ≤ half of Patroni's — met",
		"| Synchronous mode: host loss → first write on the new primary (s) | **6.50** (1 run) | **26.0** (1 run) | 0.25 |",
		"some notes",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestMerge(t *testing.T) {
	sample := func(v float64) map[string][]Sample {
		return map[string][]Sample{"hostloss": {{Values: map[string]float64{"write": v}, Acked: 10}}}
	}
	base := &Report{
		Options: Options{Profiles: []string{"defaults", "tuned"}, Systems: []string{"regent", "patroni"}, Reps: 5, CrashReps: 5, SyncReps: 5, APIClients: 8},
		Env:     Environment{Command: "go run ./cmd/regent-bench -reps 5", Commit: "aaa"},
		Clusters: []*ClusterResult{
			{System: "regent", Profile: "defaults", Scenarios: sample(5)},
			{System: "patroni", Profile: "defaults", Scenarios: sample(25)},
			{System: "patroni", Profile: "defaults", Sync: true, Scenarios: sample(26)},
			{System: "regent", Profile: "tuned", Scenarios: sample(9)},
			{System: "regent", Profile: "tuned", Sync: true, Err: "old failure"},
			{System: "patroni", Profile: "tuned", Scenarios: sample(9.1)},
			{System: "patroni", Profile: "tuned", Sync: true, Scenarios: sample(9.2)},
		},
	}
	add := &Report{
		Options: Options{Profiles: []string{"defaults", "tuned"}, Systems: []string{"regent"}, Modes: []string{"sync"}, Reps: 5, CrashReps: 5, SyncReps: 5},
		Env:     Environment{Command: "go run ./cmd/regent-bench -systems regent -modes sync -merge full.json", Commit: "bbb"},
		Started: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		Clusters: []*ClusterResult{
			{System: "regent", Profile: "defaults", Sync: true, Scenarios: sample(5.5)},
			{System: "regent", Profile: "tuned", Sync: true, Scenarios: sample(9.5)},
		},
	}
	Merge(base, add)
	var keys []string
	for _, c := range base.Clusters {
		keys = append(keys, clusterKey(c)+fmt.Sprint(c.Part))
	}
	want := "defaults regent async0,defaults regent sync1,defaults patroni async0,defaults patroni sync0," +
		"tuned regent async0,tuned regent sync1,tuned patroni async0,tuned patroni sync0"
	if got := strings.Join(keys, ","); got != want {
		t.Fatalf("merged clusters\n got %s\nwant %s", got, want)
	}
	if len(base.Parts) != 1 || base.Parts[0].Env.Commit != "bbb" || len(base.Parts[0].Clusters) != 2 {
		t.Fatalf("parts %+v", base.Parts)
	}
	var b bytes.Buffer
	WriteMarkdown(&b, base, "")
	md := b.String()
	for _, want := range []string{
		"| command | `go run ./cmd/regent-bench -reps 5` |",
		"### Separate run 2: defaults regent sync, tuned regent sync",
		"| command | `go run ./cmd/regent-bench -systems regent -modes sync -merge full.json` |",
		"| started | 2026-11-22T00:00:00Z",
		"Regent in sync mode: measured in the separate run 2 (see Run).",
		"| Synchronous mode: host loss → first write on the new primary (s) | **5.50** (1 run) | **26.0** (1 run) | 0.21 |",
		"| defaults | regent | sync (separate run 2) | hostloss | 1 | write 5.500 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "old failure") {
		t.Error("the replaced cluster's result is still rendered")
	}
}
