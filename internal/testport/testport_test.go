package testport

import (
	"net"
	"strconv"
	"testing"
)

func TestGetHandsOutDistinctBindablePortsOutsideTheEphemeralRange(t *testing.T) {
	eLo, eHi := ephemeralRange()
	seen := map[int]bool{}
	for range 200 {
		p, err := Get()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p >= eLo && p <= eHi && !(eLo <= 10000 && eHi >= 65535) {
			t.Fatalf("port %d is in the ephemeral range %d-%d", p, eLo, eHi)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d handed out but cannot be bound: %v", p, err)
		}
		l.Close()
	}
}

// A port another process (here: another open file description) has locked
// is never handed out.
func TestLockedPortIsSkipped(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/p"
	f, ok := lock(path)
	if !ok {
		t.Fatal("first lock failed")
	}
	defer f.Close()
	if g, ok := lock(path); ok {
		g.Close()
		t.Fatal("a second lock on the same port file succeeded")
	}
}
