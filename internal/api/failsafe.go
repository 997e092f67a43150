package api

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/regent-ha/regent/internal/ui"
)

// uiHandler serves the status page at /ui.
var uiHandler = ui.Handler()

// FailsafeAcker records a leader's request to be acknowledged during a DCS
// outage (failsafe_mode). The agent implements it.
type FailsafeAcker interface {
	// AcknowledgeFailsafe records that leader asked; an error refuses.
	AcknowledgeFailsafe(leader string) error
}

// serveFailsafe answers GET /failsafe with the failsafe key (502 when
// failsafe_mode is off) and POST /failsafe with an acknowledgement.
func (s *Server) serveFailsafe(w http.ResponseWriter, r *http.Request) {
	p := s.current()
	if r.Method != http.MethodPost {
		if p.snap.Cluster == nil || p.snap.Cluster.Failsafe == nil {
			writeError(w, r, http.StatusBadGateway, "failsafe_mode is not active")
			return
		}
		writeValue(w, r, http.StatusOK, p.snap.Cluster.Failsafe)
		return
	}
	if s.Failsafe == nil {
		writeError(w, r, http.StatusServiceUnavailable, "failsafe is not available on this member")
		return
	}
	var req struct {
		Name string `json:"name"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil || json.Unmarshal(body, &req) != nil || req.Name == "" {
		writeError(w, r, http.StatusBadRequest, `body must be {"name": "<leader>"}`)
		return
	}
	if err := s.Failsafe.AcknowledgeFailsafe(req.Name); err != nil {
		writeError(w, r, http.StatusConflict, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "Accepted")
}
