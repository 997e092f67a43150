package nemesis

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/postgres"
)

// TestNemesisSubset is the fast subset of the fault matrix that runs in CI:
// the primary's agent killed, the whole primary node frozen past its
// lease, the primary partitioned from everything, commits cancelled while
// waiting for the synchronous standby, and failsafe_mode riding out a
// partition from etcd; every run must converge after the heal without an
// operator. The whole matrix runs with `go run
// ./cmd/regent-nemesis` (docs/safety-results.md).
func TestNemesisSubset(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and etcd clusters")
	}
	if _, _, err := postgres.FindBinDir(); err != nil {
		t.Fatalf("the fault-injection subset needs a PostgreSQL server (./scripts/test installs one): %v", err)
	}
	dir := t.TempDir()
	regent, etcdNode, err := Build(filepath.Join(dir, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	var log strings.Builder
	rows, err := RunMatrix(ctx, MatrixOptions{
		Dir: filepath.Join(dir, "work"), Regent: regent, EtcdNode: etcdNode,
		Scenarios: []string{"2", "4", "8", "25", "7-failsafe"},
		Modes:     []Mode{Sync},
		Runs:      1,
		Log:       &log,
	})
	md := Markdown(rows, "")
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, md, log.String())
	}
	if len(rows) != 5 {
		t.Errorf("ran %d scenario rows, want 5", len(rows))
	}
	for _, r := range rows {
		if !r.Passed() {
			t.Errorf("scenario %s (%s) failed", r.Scenario.ID(), r.Mode)
		}
		for i, res := range r.Results {
			if res.Converge.Bound == 0 {
				t.Errorf("scenario %s (%s) run %d: the converged checker did not run", r.Scenario.ID(), r.Mode, i+1)
			}
		}
	}
	if t.Failed() {
		t.Logf("%s\n%s", md, log.String())
	} else {
		t.Log("\n" + md)
	}
}
