package api

import (
	"net/http"
	"strings"
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
	kindEvents
	kindConfig
	kindSwitchover
	kindFailover
	kindRestart
	kindReload
	kindReinitialize
	kindMetrics
	kindFailsafe
)

type route struct {
	kind  kind
	check check
}

// Methods each kind of endpoint answers, in Allow header order.
var (
	methodsProbe      = []string{http.MethodGet, http.MethodHead, http.MethodOptions}
	methodsRead       = []string{http.MethodGet, http.MethodHead}
	methodsConfig     = []string{http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodPut}
	methodsPostDelete = []string{http.MethodPost, http.MethodDelete}
	methodsPost       = []string{http.MethodPost}
	methodsFailsafe   = []string{http.MethodGet, http.MethodHead, http.MethodPost}
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
	case "/sync", "/synchronous":
		return route{kindHealth, checkSync}, true
	case "/quorum":
		return route{kindHealth, checkQuorum}, true
	case "/async", "/asynchronous":
		return route{kindHealth, checkAsync}, true
	case "/read-only-sync", "/read-only-synchronous":
		return route{kindHealth, checkReadOnlySync}, true
	case "/read-only-quorum":
		return route{kindHealth, checkReadOnlyQuorum}, true
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
	case "/events":
		return route{kind: kindEvents}, true
	case "/config":
		return route{kind: kindConfig}, true
	case "/switchover":
		return route{kind: kindSwitchover}, true
	case "/failover":
		return route{kind: kindFailover}, true
	case "/restart":
		return route{kind: kindRestart}, true
	case "/reload":
		return route{kind: kindReload}, true
	case "/reinitialize":
		return route{kind: kindReinitialize}, true
	case "/metrics":
		return route{kind: kindMetrics}, true
	case "/failsafe":
		return route{kind: kindFailsafe}, true
	}
	return route{}, false
}

// methods lists the methods the route answers.
func (rt route) methods() []string {
	switch rt.kind {
	case kindCluster, kindHistory, kindEvents, kindMetrics:
		return methodsRead
	case kindConfig:
		return methodsConfig
	case kindSwitchover, kindRestart:
		return methodsPostDelete
	case kindFailover, kindReload, kindReinitialize:
		return methodsPost
	case kindFailsafe:
		return methodsFailsafe
	}
	return methodsProbe
}

// allows reports whether the route answers method.
func (rt route) allows(method string) bool {
	for _, m := range rt.methods() {
		if m == method {
			return true
		}
	}
	return false
}

// ServeHTTP routes a request. Health checks answer GET with the /patroni
// body and HEAD or OPTIONS with the status line only. Every other method
// passes the Access checks first.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/") {
		uiHandler.ServeHTTP(w, r) // the status page: read-only, open like GET /cluster
		return
	}
	rt, ok := lookup(r.URL.Path)
	if !ok {
		writeError(w, r, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	if !readOnly(r.Method) && !s.authorize(w, r) {
		return
	}
	if !rt.allows(r.Method) {
		allow := strings.Join(rt.methods(), ", ")
		w.Header().Set("Allow", allow)
		writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+allow)
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
	case kindEvents:
		s.serveEvents(w, r)
	case kindConfig:
		switch r.Method {
		case http.MethodPatch:
			s.servePatchConfig(w, r)
		case http.MethodPut:
			s.servePutConfig(w, r)
		default:
			s.serveConfig(w, r)
		}
	case kindSwitchover:
		if r.Method == http.MethodDelete {
			s.serveDeleteSwitchover(w, r)
		} else {
			s.serveSwitchover(w, r)
		}
	case kindFailover:
		s.serveFailover(w, r)
	case kindRestart:
		if r.Method == http.MethodDelete {
			s.serveCancelRestart(w, r)
		} else {
			s.serveRestart(w, r)
		}
	case kindReload:
		s.serveReload(w, r)
	case kindReinitialize:
		s.serveReinitialize(w, r)
	case kindMetrics:
		s.serveMetrics(w, r)
	case kindFailsafe:
		s.serveFailsafe(w, r)
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
