package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
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
			p := probe(ctx, a.peerClient(), m)
			mu.Lock()
			peers = append(peers, p)
			mu.Unlock()
		}(m)
	}
	wg.Wait()
	return peers
}

func probe(ctx context.Context, client *http.Client, m *cluster.Member) ha.Peer {
	p := ha.Peer{Name: m.Name}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.APIURL, nil)
	if err != nil {
		return p
	}
	resp, err := client.Do(req)
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

// peerClient is the HTTP client for other members' REST APIs: it trusts
// restapi.cafile when TLS is configured.
func (a *Agent) peerClient() *http.Client {
	a.peerOnce.Do(func() {
		a.peerHTTP = &http.Client{}
		if ca := a.cfg.RestAPI.CAFile; ca != "" {
			if pem, err := os.ReadFile(ca); err == nil {
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM(pem)
				a.peerHTTP.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			}
		}
	})
	return a.peerHTTP
}
