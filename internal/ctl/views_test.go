package ctl

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

func lsn(v int64) *int64 { return &v }

// fiveMembers: n1 leads; n2 and n4 stream from it; n3 cascades from n2;
// n5 names itself (ignored) and so hangs under the leader.
func fiveMembers() *cluster.Cluster {
	mb := int64(1 << 20)
	return &cluster.Cluster{
		Scope:      "demo",
		Initialize: &cluster.Initialize{SystemID: "7000"},
		Leader:     &cluster.Leader{Name: "n1"},
		Status:     cluster.Status{Optime: 10 * mb},
		Members: map[string]*cluster.Member{
			"n1": {Name: "n1", ConnURL: "postgres://10.0.0.1:5432/postgres", State: "running", Role: "primary", Timeline: 2, XLogLocation: lsn(10 * mb)},
			"n2": {Name: "n2", ConnURL: "postgres://10.0.0.2:5433/postgres", State: "running", Role: "replica", ReplicationState: "streaming", Timeline: 2, XLogLocation: lsn(8 * mb)},
			"n3": {Name: "n3", ConnURL: "postgres://10.0.0.3/postgres", State: "running", Role: "replica", ReplicationState: "streaming", Timeline: 2, XLogLocation: lsn(7 * mb),
				Tags: &cluster.Tags{ReplicateFrom: "n2"}},
			"n4": {Name: "n4", ConnURL: "postgres://[::1]:5434/postgres", State: "running", Role: "replica", ReplicationState: "streaming", Timeline: 2, XLogLocation: lsn(9 * mb)},
			"n5": {Name: "n5", ConnURL: "postgres://10.0.0.5:5432/postgres", State: "starting", Role: "replica",
				Tags: &cluster.Tags{ReplicateFrom: "n5", NoFailover: true}},
		},
	}
}

func TestTopologyTree(t *testing.T) {
	c := fiveMembers()
	rows := TopologyRows(c)
	var got []string
	for _, r := range rows {
		got = append(got, treeName(r.Member, r.Level)+"<"+r.Following)
	}
	want := []string{"n1<", "+ n2<n1", "  + n3<n2", "+ n4<n1", "+ n5<n1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("tree %q, want %q", got, want)
	}
	var buf bytes.Buffer
	if err := WriteTopology(&buf, c, "table"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	wantLines := []string{
		"+ Cluster: demo (7000) +",
		"Member  Host           Role     State      TL  Lag in MB",
		"n1      10.0.0.1:5432  Leader   running    2",
		"+ n2    10.0.0.2:5433  Replica  streaming  2   2",
		"  + n3  10.0.0.3       Replica  streaming  2   3",
		"+ n4    [::1]:5434     Replica  streaming  2   1",
		"+ n5    10.0.0.5:5432  Replica  starting",
	}
	gotLines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i := range gotLines {
		gotLines[i] = strings.TrimRight(gotLines[i], " ")
	}
	if strings.Join(gotLines, "\n") != strings.Join(wantLines, "\n") {
		t.Fatalf("table:\n%s\nwant:\n%s", strings.Join(gotLines, "\n"), strings.Join(wantLines, "\n"))
	}
	buf.Reset()
	if err := WriteTopology(&buf, c, "json"); err != nil {
		t.Fatal(err)
	}
	var js []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &js); err != nil || len(js) != 5 || js[2]["Member"] != "n3" || js[2]["Level"] != float64(2) || js[2]["Following"] != "n2" {
		t.Fatalf("json: %v %v", err, buf.String())
	}
}

func TestTopologyLoopsAndNoLeader(t *testing.T) {
	c := fiveMembers()
	c.Members["n2"].Tags = &cluster.Tags{ReplicateFrom: "n3"} // n2 <-> n3
	var got []string
	for _, r := range TopologyRows(c) {
		got = append(got, treeName(r.Member, r.Level))
	}
	if len(got) != 5 || got[0] != "n1" {
		t.Fatalf("loop: %q", got)
	}
	c.Leader = nil
	got = got[:0]
	for _, r := range TopologyRows(c) {
		got = append(got, treeName(r.Member, r.Level))
	}
	if len(got) != 5 {
		t.Fatalf("no leader: %q", got)
	}
}

func TestHistoryTable(t *testing.T) {
	ts := time.Date(2026, 7, 1, 12, 30, 0, 0, time.UTC)
	c := &cluster.Cluster{Scope: "demo", History: []cluster.HistoryEntry{
		{Timeline: 1, SwitchLSN: 0x3000060, Reason: "no recovery target specified", Time: ts, NewLeader: "n2"},
		{Timeline: 2, SwitchLSN: 1<<32 | 0x10, Reason: "switchover from n2 to n1"},
	}}
	var buf bytes.Buffer
	if err := WriteHistory(&buf, c, "table"); err != nil {
		t.Fatal(err)
	}
	want := "TL  LSN        Reason                        Timestamp                         New Leader\n" +
		"1   0/3000060  no recovery target specified  2026-07-01T12:30:00.000000+00:00  n2\n" +
		"2   1/10       switchover from n2 to n1\n"
	var got []string
	for _, l := range strings.Split(buf.String(), "\n") {
		got = append(got, strings.TrimRight(l, " "))
	}
	if strings.Join(got, "\n") != want {
		t.Fatalf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	buf.Reset()
	if err := WriteHistory(&buf, c, "json"); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil || len(rows) != 2 || rows[0]["LSN"] != "0/3000060" || rows[0]["New Leader"] != "n2" || rows[1]["TL"] != float64(2) {
		t.Fatalf("json %v: %s", err, buf.String())
	}
	buf.Reset()
	if err := WriteHistory(&buf, &cluster.Cluster{}, "table"); err != nil || !strings.Contains(buf.String(), "no timeline switches") {
		t.Fatalf("empty history: %v %q", err, buf.String())
	}
	if err := WriteHistory(&buf, c, "xml"); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestDSNSelection(t *testing.T) {
	c := fiveMembers()
	cases := []struct {
		name, role, member, want, err string
	}{
		{"primary is the leader", "primary", "", "host=10.0.0.1 port=5432 dbname=postgres", ""},
		{"default role is primary", "", "", "host=10.0.0.1 port=5432 dbname=postgres", ""},
		{"replica with least lag", "replica", "", "host=::1 port=5434 dbname=postgres", ""},
		{"named member, default port", "primary", "n3", "host=10.0.0.3 port=5432 dbname=postgres", ""},
		{"unknown member", "", "nosuch", "", "nosuch is not in cluster demo"},
		{"bad role", "witness", "", "", "invalid role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := SelectDSNMember(c, tc.role, tc.member)
			var dsn string
			if err == nil {
				dsn, err = DSN(m)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || dsn != tc.want {
				t.Fatalf("dsn %q err %v, want %q", dsn, err, tc.want)
			}
		})
	}
	noLeader := fiveMembers()
	noLeader.Leader = nil
	if _, err := SelectDSNMember(noLeader, "primary", ""); err == nil || !strings.Contains(err.Error(), "no leader") {
		t.Fatalf("primary without leader: %v", err)
	}
	if m, err := SelectDSNMember(noLeader, "any", ""); err != nil || m.Name != "n4" {
		t.Fatalf("any without leader: %v %v", m, err)
	}
	for _, m := range noLeader.Members {
		m.ReplicationState = ""
	}
	if _, err := SelectDSNMember(noLeader, "replica", ""); err == nil || !strings.Contains(err.Error(), "no streaming replica") {
		t.Fatalf("no replica: %v", err)
	}
	if got := libpqQuote("a b'c"); got != `'a b\'c'` {
		t.Fatalf("quote = %s", got)
	}
}

func TestDataLossMessage(t *testing.T) {
	mb := int64(1 << 20)
	cases := []struct {
		name   string
		optime int64
		xlog   *int64
		want   string
	}{
		{"lagging", 10 * mb, lsn(10*mb - 1258291), "up to 1.2 MB of WAL acknowledged by the old leader may be lost (n2 is at 0/8CCCCD, the old leader last reported 0/A00000)"},
		{"small lag", 5000, lsn(4000), "up to 1000 bytes of WAL"},
		{"caught up", 10 * mb, lsn(10 * mb), "n2 has received all WAL up to the old leader's last reported position 0/A00000"},
		{"ahead", 10 * mb, lsn(11 * mb), "no acknowledged WAL is expected to be lost"},
		{"unknown candidate position", 10 * mb, nil, "the WAL position of n2 is unknown"},
		{"unknown optime", 0, lsn(mb), "the old leader's last WAL position is unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster.Cluster{Status: cluster.Status{Optime: tc.optime}}
			got := DataLossMessage(c, &cluster.Member{Name: "n2", XLogLocation: tc.xlog})
			if !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1: "1 byte", 1023: "1023 bytes", 1536: "1.5 kB", 1258291: "1.2 MB", 3 << 30: "3.0 GB", 5 << 40: "5.0 TB", 2048 << 40: "2048.0 TB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct{ in, want, err string }{
		{"", "", ""},
		{"now", "", ""},
		{"NOW", "", ""},
		{"2026-07-01T13:00:00Z", "2026-07-01T13:00:00Z", ""},
		{"2026-07-01T15:00:00+02:00", "2026-07-01T15:00:00+02:00", ""},
		{"2026-07-01T11:00:00Z", "", "in the past"},
		{"tomorrow", "", "invalid schedule"},
	}
	for _, tc := range cases {
		got, err := ParseSchedule(tc.in, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSchedule(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSchedule(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if got, err := ParseSchedule("2030-01-02 03:04", now); err != nil || !strings.HasPrefix(got, "2030-01-02T03:04:00") {
		t.Errorf("local time: %q %v", got, err)
	}
}

func TestSwitchoverCandidates(t *testing.T) {
	c := fiveMembers()
	zero := 0
	c.Members["n4"].Tags = &cluster.Tags{FailoverPriority: &zero}
	if got := strings.Join(SwitchoverCandidates(c, "n1"), ","); got != "n2,n3" {
		t.Fatalf("candidates %s, want n2,n3 (n4 priority 0, n5 nofailover)", got)
	}
}

func TestSelectMembers(t *testing.T) {
	c := fiveMembers()
	names := func(role string, args ...string) (string, error) {
		ms, err := SelectMembers(c, args, role)
		return memberNames(ms), err
	}
	for _, tc := range []struct {
		role string
		args []string
		want string
		err  string
	}{
		{"any", nil, "n2, n3, n4, n5, n1", ""}, // replicas first, the leader last,
		{"primary", nil, "n1", ""},
		{"replica", nil, "n2, n3, n4, n5", ""},
		{"any", []string{"n3", "n1", "n3"}, "n3, n1", ""},
		{"replica", []string{"n1"}, "", "n1 is not a replica"},
		{"any", []string{"n9", "n8"}, "", "not a member of cluster demo: n9, n8"},
		{"bogus", nil, "", "invalid role"},
	} {
		got, err := names(tc.role, tc.args...)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %v: err %v, want %q", tc.role, tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %v = %q %v, want %q", tc.role, tc.args, got, err, tc.want)
		}
	}
}

func TestListShowsScheduledSwitchover(t *testing.T) {
	c := fiveMembers()
	c.Failover = &cluster.Failover{Leader: "n1", Member: "n2", ScheduledAt: "2026-07-01T13:00:00Z"}
	var buf bytes.Buffer
	if err := WriteList(&buf, c, "table"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Switchover scheduled at: 2026-07-01T13:00:00Z from n1 to n2\n") {
		t.Fatalf("list:\n%s", buf.String())
	}
	c.Failover = &cluster.Failover{Leader: "n1", Member: "n2"} // immediate: not shown
	buf.Reset()
	_ = WriteList(&buf, c, "table")
	if strings.Contains(buf.String(), "scheduled") {
		t.Fatalf("unscheduled failover listed:\n%s", buf.String())
	}
}
