package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
)

// failsafeState holds the acknowledgements of failsafe_mode. heard is
// written by REST handlers, so it has its own lock.
type failsafeState struct {
	confirmedAt time.Time // loop goroutine only

	mu       sync.Mutex
	heardAt  time.Time
	heardFor string
}

// acknowledge records that leader asked this member to confirm it during
// a DCS outage (POST /failsafe).
func (f *failsafeState) acknowledge(leader string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heardAt, f.heardFor = time.Now(), leader
}

func (f *failsafeState) observation() ha.Failsafe {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ha.Failsafe{ConfirmedAt: f.confirmedAt, HeardAt: f.heardAt, Leader: f.heardFor}
}

// failsafeRound runs during a DCS outage on a leader in failsafe_mode: it
// asks every member of the last known failsafe key, in parallel and each
// within peer_timeout, to acknowledge this leader. Only when all answer is
// the round's send time recorded; one silent member means the leader will
// be fenced at its deadline, because that member might be promoted. Every
// kind of DCS error leads here.
func (a *Agent) failsafeRound(ctx context.Context) {
	view := a.lastView
	if !a.dyn.FailsafeMode || !a.keyOnMyLease || view == nil {
		return
	}
	sent := time.Now()
	ctx, cancel := context.WithTimeout(ctx, a.dyn.PeerTimeoutDuration())
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		silent []string
	)
	for name, url := range view.Failsafe {
		if name == a.cfg.Name {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !a.askFailsafe(ctx, url) {
				mu.Lock()
				silent = append(silent, name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(silent) > 0 {
		a.log.Warn("failsafe: not every member acknowledged this leader; it will be fenced at its deadline",
			"silent", strings.Join(silent, ","))
		return
	}
	a.failsafe.confirmedAt = sent
	a.log.Info("failsafe: every member acknowledged this leader during the DCS outage", "members", len(view.Failsafe))
}

// askFailsafe POSTs to a member's /failsafe (the URL in the key ends in
// /patroni, as Patroni writes it).
func (a *Agent) askFailsafe(ctx context.Context, apiURL string) bool {
	url := strings.TrimSuffix(apiURL, "/patroni") + "/failsafe"
	body, _ := json.Marshal(map[string]string{"name": a.cfg.Name, "api_url": a.cfg.APIURL()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	if auth := a.cfg.RestAPI.Authentication; auth != nil {
		if pw, err := auth.Password.Value(); err == nil {
			req.SetBasicAuth(auth.Username, pw)
		}
	}
	resp, err := a.peerClient().Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// failsafeMembers is the failsafe key's value: every member's REST URL.
func failsafeMembers(view *cluster.Cluster) map[string]string {
	out := make(map[string]string, len(view.Members))
	for name, m := range view.Members {
		if m.APIURL != "" {
			out[name] = m.APIURL
		}
	}
	return out
}

// claimConfirmedAt is the moment the leader's claim was last confirmed:
// by a lease renewal, or during a DCS outage by a failsafe round.
func (a *Agent) claimConfirmedAt() time.Time {
	at := a.lease.ConfirmedSentAt
	if a.dyn.FailsafeMode && a.failsafe.confirmedAt.After(at) {
		at = a.failsafe.confirmedAt
	}
	return at
}
