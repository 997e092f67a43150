package postgres

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewBadBinDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := New(Options{BinDir: dir, DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:5432"})
	if err == nil {
		t.Fatal("New succeeded with an empty bin dir")
	}
	for _, want := range []string{"PostgreSQL server binaries not found in " + dir, "apt-get install -y postgresql`", "postgresql.bin_dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestNewBadListen(t *testing.T) {
	t.Parallel()
	bin := pgBinDir(t)
	for _, l := range []string{"", "localhost", "127.0.0.1:0", "127.0.0.1:99999", ":5432"} {
		if _, err := New(Options{BinDir: bin, DataDir: "/nonexistent/data", Listen: l}); err == nil {
			t.Errorf("New accepted listen %q", l)
		}
	}
}

func TestSlotName(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"node1":                 "node1",
		"Member-B.x":            "member_b_x",
		"pg@host 1":             "pg_host_1",
		"ünïcode":               "_n_code",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	}
	for in, want := range cases {
		if got := SlotName(in); got != want {
			t.Errorf("SlotName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseHostPort(t *testing.T) {
	t.Parallel()
	h, p, err := ParseHostPort("[::1]:5433")
	if err != nil || h != "::1" || p != 5433 {
		t.Errorf("got %q %d %v", h, p, err)
	}
	h, p, err = ParseHostPort("10.0.0.1:5432")
	if err != nil || h != "10.0.0.1" || p != 5432 {
		t.Errorf("got %q %d %v", h, p, err)
	}
	for _, bad := range []string{"10.0.0.1", "h:x", "h:0", "h:65536", "h:-1"} {
		if _, _, err := ParseHostPort(bad); err == nil {
			t.Errorf("ParseHostPort(%q) succeeded", bad)
		}
	}
}

func TestConnInfo(t *testing.T) {
	t.Parallel()
	c := ConnInfo{Host: "10.0.0.1", Port: 5432, User: "rep user", Password: `p'w\d x`, DBName: "postgres", ApplicationName: "node-1"}
	s := c.String()
	want := `host=10.0.0.1 port=5432 user='rep user' password='p\'w\\d x' dbname=postgres application_name=node-1 sslmode=prefer connect_timeout=3`
	if s != want {
		t.Errorf("String() = %s\nwant       %s", s, want)
	}
	kv, err := parseConnParams(s)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range kv {
		got[p.key] = p.val
	}
	if got["password"] != c.Password || got["user"] != c.User || got["port"] != "5432" {
		t.Errorf("round trip: %v", got)
	}
	r := c.Redacted()
	if strings.Contains(r, "p'w") || strings.Contains(r, `p\'w`) || !strings.Contains(r, "password=********") {
		t.Errorf("Redacted() = %s", r)
	}
	if r := RedactConnString(s); strings.Contains(r, `p\'w`) || !strings.Contains(r, "********") {
		t.Errorf("RedactConnString = %s", r)
	}
	if r := sanitizeConnString(s); strings.Contains(r, "password") {
		t.Errorf("sanitizeConnString = %s", r)
	}
	if r := RedactConnString("postgresql://u:secret@h:5/db?sslmode=require"); strings.Contains(r, "secret") {
		t.Errorf("RedactConnString(URI) = %s", r)
	}
	if _, err := parseConnParams("host='unterminated"); err == nil {
		t.Error("unterminated quote accepted")
	}
	if _, err := parseConnParams("host"); err == nil {
		t.Error("missing = accepted")
	}
}

func TestQuoteGUC(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"on":          "'on'",
		"it's":        "'it''s'",
		`a\b`:         `'a\\b'`,
		"line\nbreak": `'line\nbreak'`,
	}
	for in, want := range cases {
		if got := quoteGUC(in); got != want {
			t.Errorf("quoteGUC(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseControlData(t *testing.T) {
	t.Parallel()
	out := `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7301234567890123456
Database cluster state:               shut down in recovery
pg_control last modified:             Mon 01 Jan 2024 00:00:00 UTC
Latest checkpoint location:           0/3000060
Latest checkpoint's REDO location:    0/3000028
Latest checkpoint's TimeLineID:       2
Latest checkpoint's PrevTimeLineID:   2
Minimum recovery ending location:     0/4000100
Min recovery ending loc's timeline:   2
Data page checksum version:           1
`
	cd, err := parseControlData(out)
	if err != nil {
		t.Fatal(err)
	}
	want := ControlData{SystemIdentifier: "7301234567890123456", State: "shut down in recovery", TimeLineID: 2,
		CheckpointLSN: 0x3000060, MinRecoveryEndLSN: 0x4000100, MinRecoveryEndTimeline: 2, DataChecksums: true}
	if cd != want {
		t.Errorf("got %+v\nwant %+v", cd, want)
	}
	if _, err := parseControlData("garbage"); err == nil {
		t.Error("garbage accepted")
	}
	torn := "WARNING: Calculated CRC checksum does not match value stored in file.\nEither the file is corrupt, or it has a different layout than this program\nis expecting.  The results below are untrustworthy.\n\n" + out
	if _, err := parseControlData(torn); err == nil {
		t.Error("output with a CRC warning accepted")
	}
}

func TestRenderConfig(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	o := testOptions(t, filepath.Join(dir, "data"), "node-a", 5999)
	o.Parameters["work_mem"] = "8MB"
	i, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	i.primConn = ConnInfo{Host: "10.0.0.2", Port: 5432, User: "rep", Password: "s3cr'et"}.String()
	i.primSlot = "node_a"
	rc, err := i.renderConfig()
	if err != nil {
		t.Fatal(err)
	}
	conf := string(rc.conf)
	if !strings.HasPrefix(conf, managedHeader+"\n") {
		t.Errorf("config does not start with the header:\n%s", conf)
	}
	for _, want := range []string{
		"include 'postgresql.base.conf'",
		"listen_addresses = '127.0.0.1'",
		"port = '5999'",
		"unix_socket_directories = '" + i.runDir + "'",
		"wal_level = 'replica'",
		"hot_standby = 'on'",
		"wal_log_hints = 'on'",
		"wal_keep_size = '128MB'",
		"password_encryption = 'scram-sha-256'",
		"work_mem = '8MB'",
		"primary_slot_name = 'node_a'",
		"recovery_target_timeline = 'latest'",
		"application_name=node-a",
		"passfile=" + i.primaryPassfile(),
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "s3cr") {
		t.Errorf("config contains the password:\n%s", conf)
	}
	if strings.Contains(conf, "port = '1'") {
		t.Errorf("protected parameter was not ignored:\n%s", conf)
	}
	if string(rc.passfile) != "*:*:*:*:s3cr'et\n" {
		t.Errorf("passfile = %q", rc.passfile)
	}
	if !strings.Contains(string(rc.hba), "host replication all 127.0.0.1/32 scram-sha-256\n") {
		t.Errorf("hba:\n%s", rc.hba)
	}
}

func TestDataDirState(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	i, err := New(testOptions(t, filepath.Join(dir, "missing"), "x", 5999))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := i.DataDirState(); err != nil || st != DataDirEmpty {
		t.Errorf("missing dir: %v %v", st, err)
	}

	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	i, _ = New(testOptions(t, empty, "x", 5999))
	if st, err := i.DataDirState(); err != nil || st != DataDirEmpty {
		t.Errorf("empty dir: %v %v", st, err)
	}

	foreign := filepath.Join(dir, "foreign")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(foreign, "precious.txt")
	if err := os.WriteFile(f, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	i, _ = New(testOptions(t, foreign, "x", 5999))
	_, err = i.DataDirState()
	if err == nil || !strings.Contains(err.Error(), "is not empty but is not a PostgreSQL data directory; refusing to touch it") {
		t.Errorf("foreign dir: %v", err)
	}
	if err := i.InitDB(t.Context()); err == nil {
		t.Error("InitDB succeeded on a foreign directory")
	}
	if err := i.BaseBackup(t.Context(), ConnInfo{Host: "127.0.0.1", Port: 1}); err == nil {
		t.Error("BaseBackup succeeded on a foreign directory")
	}
	if b, err := os.ReadFile(f); err != nil || string(b) != "keep me" {
		t.Errorf("foreign file touched: %q %v", b, err)
	}
	if ents, _ := os.ReadDir(foreign); len(ents) != 1 {
		t.Errorf("foreign dir now has %d entries", len(ents))
	}
}

// TestNewFindsBinDir: with no bin_dir, New uses the installed server
// binaries instead of refusing.
func TestNewFindsBinDir(t *testing.T) {
	t.Parallel()
	want, _, err := FindBinDir()
	if err != nil {
		t.Skipf("no PostgreSQL server installed: %v", err)
	}
	i, err := New(Options{DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:5432"})
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	if got := i.bin("postgres"); got != filepath.Join(want, "postgres") {
		t.Errorf("postgres program %s, want it in %s", got, want)
	}
}
