// Package ui serves the member's status page: an embedded single-page view of the cluster, refreshed live from the member's own REST API.
//
// The page (static/index.html, app.js, style.css) loads nothing from
// outside the binary: it polls GET /cluster, /history and /patroni on the
// origin that served it. Handler serves it under /ui, with a strict
// Content-Security-Policy that forbids inline script and style.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the page is served under.
const Prefix = "/ui"

// ContentSecurityPolicy is sent with every response of Handler: only this
// origin's scripts, styles and API, no inline code.
const ContentSecurityPolicy = "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:"

//go:embed static/*
var static embed.FS

// contentTypes maps the extensions of the embedded files to their types;
// a file with another extension is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets holds the embedded files by base name, read once.
var assets = loadAssets()

func loadAssets() map[string]asset {
	out := map[string]asset{}
	entries, err := fs.ReadDir(static, "static")
	if err != nil {
		panic("ui: reading the embedded files: " + err.Error())
	}
	for _, e := range entries {
		ct, ok := contentTypes[path.Ext(e.Name())]
		if e.IsDir() || !ok {
			continue
		}
		b, err := static.ReadFile("static/" + e.Name())
		if err != nil {
			panic("ui: reading the embedded files: " + err.Error())
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}

// Files returns the embedded files of the page (index.html, app.js,
// style.css), rooted at their directory.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("ui: " + err.Error())
	}
	return sub
}

// Handler returns the handler of the status page. Mount it at both "/ui"
// and "/ui/": it answers "/ui", "/ui/" and "/ui/index.html" with the page
// and "/ui/<file>" with an embedded asset (also when the prefix was
// stripped before it), 404 for anything else and 405 for methods other
// than GET and HEAD. Responses are revalidated (Cache-Control: no-cache,
// with an ETag) and carry ContentSecurityPolicy.
func Handler() http.Handler { return handler{} }

type handler struct{}

func (handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	name, ok := assetName(r.URL.Path)
	a, found := assets[name]
	if !ok || !found {
		http.Error(w, "no such file: "+r.URL.Path, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method "+r.Method+" not allowed; use GET, HEAD", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

// assetName maps a request path to an embedded file name: "/ui", "/ui/"
// (and "" or "/" once the prefix is stripped) to index.html, "/ui/x" or
// "/x" to x. Nested paths are refused.
func assetName(p string) (string, bool) {
	switch {
	case p == "" || p == "/" || p == Prefix || p == Prefix+"/":
		return "index.html", true
	case strings.HasPrefix(p, Prefix+"/"):
		p = p[len(Prefix)+1:]
	case strings.HasPrefix(p, "/"):
		p = p[1:]
	}
	if p == "" || strings.ContainsAny(p, "/\\") || strings.HasPrefix(p, ".") {
		return "", false
	}
	return p, true
}
