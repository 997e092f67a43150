package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
)

// peerStatus is the part of a peer's GET /patroni answer a race needs.
type peerStatus struct {
	State    string `json:"state"`
	Role     string `json:"role"`
	Timeline int    `json:"timeline"`
	XLog     struct {
		Location         int64 `json:"location"`
		ReceivedLocation int64 `json:"received_location"`
		ReplayedLocation int64 `json:"replayed_location"`
	} `json:"xlog"`
	Tags cluster.Tags `json:"tags"`
}

// probePeers asks every other member's REST API for its state, in
// parallel, each bounded by peer_timeout. Unreachable peers are reported as
// such; the core ignores them.
func (a *Agent) probePeers(ctx context.Context, view *cluster.Cluster) []ha.Peer {
	if view == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.dyn.PeerTimeoutDuration())
	defer cancel()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		peers []ha.Peer
	)
	for _, m := range view.SortedMembers() {
		if m.Name == a.cfg.Name || m.APIURL == "" {
			continue
		}
		wg.Add(1)
		go func(m *cluster.Member) {
			defer wg.Done()
			p := probe(ctx, m)
			mu.Lock()
			peers = append(peers, p)
			mu.Unlock()
		}(m)
	}
	wg.Wait()
	return peers
}

func probe(ctx context.Context, m *cluster.Member) ha.Peer {
	p := ha.Peer{Name: m.Name}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.APIURL, nil)
	if err != nil {
		return p
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return p
	}
	defer resp.Body.Close()
	var st peerStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return p
	}
	p.Reachable = true
	p.Role = st.Role
	p.State = st.State
	p.Timeline = st.Timeline
	p.LSN = max(st.XLog.Location, st.XLog.ReceivedLocation, st.XLog.ReplayedLocation)
	p.Priority = st.Tags.Priority()
	return p
}
