package postgres

import (
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
