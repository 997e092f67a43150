package api

import (
	"net/http"
)

// serveMetrics answers GET and HEAD /metrics from s.Metrics. Like the
// health checks it needs no authentication; the handler reads only
// in-memory state, so a scrape never waits on PostgreSQL or etcd.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		writeError(w, r, http.StatusServiceUnavailable, "metrics are not enabled on this member")
		return
	}
	s.Metrics.ServeHTTP(w, r)
}
