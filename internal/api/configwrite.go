package api

import (
	"net/http"
	"strconv"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/operate"
)

// configETag is the ETag of GET /config and the If-Match value that pins a
// change to the configuration read: its mod revision in the DCS.
func configETag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// configBody reads the body of PATCH or PUT /config, which must declare its
// length (411 otherwise, as in Patroni).
func configBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.ContentLength < 0 {
		writeError(w, r, http.StatusLengthRequired, "Content-Length required")
		return nil, false
	}
	return readBody(w, r)
}

// ifMatch returns the revision pinned by an If-Match header, 0 when there
// is none; it answers the request and returns false when it is malformed.
func ifMatch(w http.ResponseWriter, r *http.Request) (int64, bool) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return 0, true
	}
	rev, err := parseRevision(h)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return 0, false
	}
	return rev, true
}

const errConfigChanged = "configuration changed concurrently; retry"

// servePatchConfig handles PATCH /config: a JSON merge patch applied with
// compare-and-set on the config key's revision (or the If-Match one).
func (s *Server) servePatchConfig(w http.ResponseWriter, r *http.Request) {
	if s.Store == nil {
		writeError(w, r, http.StatusServiceUnavailable, errNotAvailable)
		return
	}
	body, ok := configBody(w, r)
	if !ok {
		return
	}
	pinned, ok := ifMatch(w, r)
	if !ok {
		return
	}
	c, ok := s.controlView(w, r)
	if !ok {
		return
	}
	if c.Config == nil {
		if c.ConfigProblem != "" {
			// Nothing to merge into: only a whole configuration can repair it.
			writeError(w, r, http.StatusUnprocessableEntity, c.ConfigProblem+"; replace it with PUT /config (regent edit-config --replace)")
			return
		}
		writeError(w, r, http.StatusServiceUnavailable, "no configuration in the DCS")
		return
	}
	if pinned != 0 && pinned != c.ConfigRevision {
		writeError(w, r, http.StatusConflict, errConfigChanged)
		return
	}
	cfg, err := operate.PatchConfig(*c.Config, body)
	if err != nil {
		writeError(w, r, errorStatus(err, http.StatusPreconditionFailed, http.StatusConflict), err.Error())
		return
	}
	s.writeConfig(w, r, cfg, c.ConfigRevision)
}

// servePutConfig handles PUT /config: the whole configuration, written
// unconditionally, or with compare-and-set when If-Match is given.
func (s *Server) servePutConfig(w http.ResponseWriter, r *http.Request) {
	if s.Store == nil {
		writeError(w, r, http.StatusServiceUnavailable, errNotAvailable)
		return
	}
	body, ok := configBody(w, r)
	if !ok {
		return
	}
	pinned, ok := ifMatch(w, r)
	if !ok {
		return
	}
	cfg, err := operate.ReplaceConfig(body)
	if err != nil {
		writeError(w, r, errorStatus(err, http.StatusPreconditionFailed, http.StatusConflict), err.Error())
		return
	}
	if pinned != 0 {
		s.writeConfig(w, r, cfg, pinned)
		return
	}
	ctx, cancel := s.storeContext(r.Context())
	defer cancel()
	if err := s.Store.PutConfig(ctx, cfg); err != nil {
		s.writeOpError(w, r, http.StatusBadGateway, "failed to write the configuration into the DCS: "+err.Error(), err)
		return
	}
	s.log.Info("REST API: configuration replaced")
	writeValue(w, r, http.StatusOK, cfg)
}

// writeConfig stores cfg if the config key is still at revision rev and
// answers with the stored configuration.
func (s *Server) writeConfig(w http.ResponseWriter, r *http.Request, cfg cluster.DynamicConfig, rev int64) {
	ctx, cancel := s.storeContext(r.Context())
	defer cancel()
	written, err := s.Store.SetConfig(ctx, cfg, rev)
	switch {
	case err != nil:
		s.writeOpError(w, r, http.StatusServiceUnavailable, "failed to write the configuration into the DCS: "+err.Error(), err)
	case !written:
		writeError(w, r, http.StatusConflict, errConfigChanged)
	default:
		s.log.Info("REST API: configuration changed", "method", r.Method)
		writeValue(w, r, http.StatusOK, cfg)
	}
}
