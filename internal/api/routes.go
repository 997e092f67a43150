package api

import (
	"net/http"
)

// kind is what an endpoint serves.
type kind int

const (
	kindHealth    kind = iota // health check with the /patroni body
	kindLiveness              // body-less
	kindReadiness             // body-less
	kindPatroni
	kindCluster
	kindHistory
	kindConfig
)

type route struct {
	kind  kind
	check check
}

const (
	allowProbe = "GET, HEAD, OPTIONS"
	allowRead  = "GET, HEAD"
)

// lookup maps a path to its endpoint.
func lookup(path string) (route, bool) {
	switch path {
	case "/", "/primary", "/read-write", "/master":
		return route{kindHealth, checkPrimary}, true
	case "/leader":
		return route{kindHealth, checkLeader}, true
	case "/standby-leader", "/standby_leader":
		return route{kindHealth, checkStandbyLeader}, true
	case "/replica":
		return route{kindHealth, checkReplica}, true
	case "/read-only":
		return route{kindHealth, checkReadOnly}, true
	case "/health":
		return route{kindHealth, checkHealth}, true
	case "/sync", "/synchronous", "/quorum":
		return route{kindHealth, checkSync}, true
	case "/async", "/asynchronous":
		return route{kindHealth, checkAsync}, true
	case "/read-only-sync", "/read-only-synchronous", "/read-only-quorum":
		return route{kindHealth, checkReadOnlySync}, true
	case "/liveness":
		return route{kind: kindLiveness}, true
	case "/readiness":
		return route{kind: kindReadiness}, true
	case "/patroni":
		return route{kind: kindPatroni}, true
	case "/cluster":
		return route{kind: kindCluster}, true
	case "/history":
		return route{kind: kindHistory}, true
	case "/config":
		return route{kind: kindConfig}, true
	}
	return route{}, false
}

// allow is the Allow header of the route's kind.
func (rt route) allow() string {
	switch rt.kind {
	case kindCluster, kindHistory, kindConfig:
		return allowRead
	}
	return allowProbe
}

// ServeHTTP routes a request. Health checks answer GET with the /patroni
// body and HEAD or OPTIONS with the status line only.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := lookup(r.URL.Path)
	if !ok {
		writeError(w, r, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		if rt.allow() == allowProbe {
			break
		}
		fallthrough
	default:
		w.Header().Set("Allow", rt.allow())
		writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+rt.allow())
		return
	}
	switch rt.kind {
	case kindHealth, kindLiveness, kindReadiness:
		s.serveProbe(w, r, rt)
	case kindPatroni:
		p := s.current()
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusOK)
			return
		}
		writeJSON(w, http.StatusOK, p.statusBody())
	case kindCluster:
		s.serveCluster(w, r)
	case kindHistory:
		s.serveHistory(w, r)
	case kindConfig:
		s.serveConfig(w, r)
	}
}

// serveProbe answers a health check.
func (s *Server) serveProbe(w http.ResponseWriter, r *http.Request, rt route) {
	p := s.current()
	q, err := parseHealthQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	now := s.now()
	var status int
	switch rt.kind {
	case kindLiveness:
		status = liveness(&p.snap, now)
	case kindReadiness:
		status = readiness(&p.snap, &q, now)
	default:
		status = healthStatus(rt.check, &p.snap, &q, now)
	}
	if rt.kind != kindHealth || r.Method != http.MethodGet {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, p.statusBody())
}
