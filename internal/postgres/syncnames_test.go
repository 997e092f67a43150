package postgres

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSyncStandbyNamesRoundTrip(t *testing.T) {
	for _, names := range [][]string{nil, {"*"}, {"n1"}, {"n1", "n2"}, {`we"ird`}} {
		s := syncStandbyNames(names)
		if got := ParseSyncStandbyNames(s); !slices.Equal(got, names) {
			t.Errorf("%v → %q → %v", names, s, got)
		}
	}
	if got := syncStandbyNames([]string{"a", "b"}); got != `FIRST 2 ("a","b")` {
		t.Errorf("rendered %q", got)
	}
	if got := ParseSyncStandbyNames(`ANY 1 (x, "y")`); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("parsed %v", got)
	}
}

func TestManagedSyncNamesSurviveARestartedAgent(t *testing.T) {
	dir := t.TempDir()
	conf := managedHeader + "\ninclude 'postgresql.base.conf'\n" +
		"synchronous_standby_names = " + quoteGUC(syncStandbyNames([]string{"n2", "n3"})) + "\n"
	if err := os.WriteFile(filepath.Join(dir, confFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := managedSyncNames(dir); !slices.Equal(got, []string{"n2", "n3"}) {
		t.Fatalf("managedSyncNames = %v", got)
	}
	// A file Regent did not write is not trusted.
	if err := os.WriteFile(filepath.Join(dir, confFile), []byte("synchronous_standby_names = 'x'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := managedSyncNames(dir); got != nil {
		t.Fatalf("foreign config read as %v", got)
	}
}
