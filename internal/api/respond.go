package api

import (
	"encoding/json"
	"net/http"
)

// jsonContentType is shared by all responses to save an allocation per
// request; nothing may modify it.
var jsonContentType = []string{"application/json"}

// writeJSON writes a JSON body with status code.
func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// writeValue encodes v and writes it with status code; HEAD and OPTIONS
// get the status line only.
func writeValue(w http.ResponseWriter, r *http.Request, code int, v any) {
	if r.Method == http.MethodHead || r.Method == http.MethodOptions {
		w.WriteHeader(code)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	writeJSON(w, code, b)
}

type errorJSON struct {
	Error string `json:"error"`
}

// writeError writes {"error": msg}; HEAD and OPTIONS get the status only.
func writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if r.Method == http.MethodHead || r.Method == http.MethodOptions {
		w.WriteHeader(code)
		return
	}
	b, _ := json.Marshal(errorJSON{Error: msg})
	writeJSON(w, code, b)
}
