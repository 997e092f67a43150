package sim

import "time"

// network holds the partitions in force. Counters let faults overlap: a
// link is down while any fault cuts it.
type network struct {
	dcsOutage int     // the whole DCS is unavailable (quorum loss)
	toDCS     []int   // member ↔ DCS link down
	peers     [][]int // member ↔ member link down (symmetric)
}

func newNetwork(n int) *network {
	nw := &network{toDCS: make([]int, n), peers: make([][]int, n)}
	for i := range nw.peers {
		nw.peers[i] = make([]int, n)
	}
	return nw
}

// dcsReachable reports whether m's requests reach a working DCS.
func (s *Sim) dcsReachable(m *member) bool {
	return s.net.dcsOutage == 0 && s.net.toDCS[m.idx] == 0
}

// peerReachable reports whether a and b can talk to each other.
func (s *Sim) peerReachable(a, b *member) bool {
	return a == b || s.net.peers[a.idx][b.idx] == 0
}

// latency is one network hop: usually a few milliseconds, occasionally a
// slow request (a stalled connection, an etcd leader change) long enough to
// time out.
func (s *Sim) latency() time.Duration {
	if s.chance(s.cfg.Faults.SlowRequests) {
		return s.uniform(50*time.Millisecond, 1500*time.Millisecond)
	}
	return s.uniform(300*time.Microsecond, 3*time.Millisecond)
}
