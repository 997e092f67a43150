package postgres

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRecoverySignalled: each file that makes PostgreSQL start in
// recovery is seen, and a data directory without one is not signalled.
func TestRecoverySignalled(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	i, err := New(testOptions(t, data, "x", 5999))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := i.RecoverySignalled(); err != nil || got {
		t.Fatalf("no signal file: %v, %v", got, err)
	}
	for _, name := range []string{"standby.signal", "recovery.signal", "recovery.conf"} {
		p := filepath.Join(data, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := i.RecoverySignalled(); err != nil || !got {
			t.Errorf("%s: %v, %v", name, got, err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}
