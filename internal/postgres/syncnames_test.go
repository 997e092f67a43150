package postgres

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSyncStandbyNamesRoundTrip(t *testing.T) {
	for _, names := range [][]string{nil, {"*"}, {"n1"}, {"n1", "n2"}, {`we"ird`}} {
		for _, k := range []int{0, 1} {
			s := syncStandbyNames(names, k)
			if got := ParseSyncStandbyNames(s); !slices.Equal(got, names) {
				t.Errorf("%v → %q → %v", names, s, got)
			}
			want := k
			if len(names) == 0 || names[0] == "*" {
				want = 0
			}
			if got := ParseSyncStandbyQuorum(s); got != want {
				t.Errorf("%v, ANY %d → %q → quorum %d", names, k, s, got)
			}
		}
	}
	if got := syncStandbyNames([]string{"a", "b"}, 0); got != `FIRST 2 ("a","b")` {
		t.Errorf("rendered %q", got)
	}
	if got := syncStandbyNames([]string{"a", "b"}, 1); got != `ANY 1 ("a","b")` {
		t.Errorf("rendered %q", got)
	}
	if got := ParseSyncStandbyQuorum(`any 2 (x, y, z)`); got != 2 {
		t.Errorf("quorum %d", got)
	}
	if got := ParseSyncStandbyNames(`ANY 1 (x, "y")`); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("parsed %v", got)
	}
}

func TestManagedSyncNamesSurviveARestartedAgent(t *testing.T) {
	dir := t.TempDir()
	conf := managedHeader + "\ninclude 'postgresql.base.conf'\n" +
		"synchronous_standby_names = " + quoteGUC(syncStandbyNames([]string{"n2", "n3"}, 1)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, confFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, k := managedSyncNames(dir); !slices.Equal(got, []string{"n2", "n3"}) || k != 1 {
		t.Fatalf("managedSyncNames = %v, ANY %d", got, k)
	}
	// A file Regent did not write is not trusted.
	if err := os.WriteFile(filepath.Join(dir, confFile), []byte("synchronous_standby_names = 'x'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := managedSyncNames(dir); got != nil {
		t.Fatalf("foreign config read as %v", got)
	}
}
