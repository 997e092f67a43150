package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServesPage(t *testing.T) {
	h := Handler()
	index, err := fs.ReadFile(Files(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/ui", "/ui/", "/ui/index.html", "/", ""} {
		if path == "" {
			// As after http.StripPrefix("/ui", ...).
			req := httptest.NewRequest(http.MethodGet, "/ui", nil)
			req.URL.Path = ""
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Body.String() != string(index) {
				t.Errorf("stripped empty path: %d", rec.Code)
			}
			continue
		}
		resp := get(t, h, http.MethodGet, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", path, got)
		}
		if got := body(t, resp); got != string(index) {
			t.Errorf("GET %s: not index.html", path)
		}
		checkHeaders(t, path, resp)
	}
}

func checkHeaders(t *testing.T, path string, resp *http.Response) {
	t.Helper()
	if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
		t.Errorf("GET %s: CSP %q", path, got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("GET %s: Cache-Control %q", path, got)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("GET %s: X-Content-Type-Options %q", path, got)
	}
}

func TestCSPIsStrict(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self' data:"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %s", ContentSecurityPolicy)
	}
}

func TestServesAssets(t *testing.T) {
	h := Handler()
	for path, ct := range map[string]string{
		"/ui/app.js":    "text/javascript; charset=utf-8",
		"/ui/style.css": "text/css; charset=utf-8",
		"/app.js":       "text/javascript; charset=utf-8", // prefix stripped
	} {
		resp := get(t, h, http.MethodGet, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != ct {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, ct)
		}
		if b := body(t, resp); len(b) < 100 {
			t.Errorf("GET %s: %d bytes", path, len(b))
		}
		checkHeaders(t, path, resp)

		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", path)
		}
		if again := get(t, h, http.MethodGet, path, "If-None-Match", etag); again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, again.StatusCode)
		}
	}
	head := get(t, h, http.MethodHead, "/ui/app.js")
	if head.StatusCode != http.StatusOK || body(t, head) != "" {
		t.Errorf("HEAD /ui/app.js: %d with a body", head.StatusCode)
	}
}

func TestPageReferencesItsAssets(t *testing.T) {
	// The page must load only embedded files, by absolute /ui/ paths (so
	// that it works at /ui as well as /ui/), and keep script and style out
	// of the HTML, as the CSP requires.
	index, _ := fs.ReadFile(Files(), "index.html")
	html := string(index)
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(html, -1)
	if len(refs) == 0 {
		t.Fatal("index.html references nothing")
	}
	h := Handler()
	for _, r := range refs {
		ref := r[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if !strings.HasPrefix(ref, Prefix+"/") {
			t.Errorf("index.html references %q: want an absolute %s/ path", ref, Prefix)
			continue
		}
		if resp := get(t, h, http.MethodGet, ref); resp.StatusCode != http.StatusOK {
			t.Errorf("index.html references %q, which answers %d", ref, resp.StatusCode)
		}
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(html) {
		t.Error("index.html has an inline script")
	}
	if strings.Contains(html, "<style") || regexp.MustCompile(`\sstyle=`).MatchString(html) {
		t.Error("index.html has inline style")
	}
	if regexp.MustCompile(`\son[a-z]+=`).MatchString(html) {
		t.Error("index.html has an inline event handler")
	}
}

func TestNoExternalResources(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|@font-face|url\(\s*['"]?(https?:|//)`)
	n := 0
	err := fs.WalkDir(static, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := static.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(b)
		for _, bad := range []string{"http://", "https://"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q: the page must not reach outside the member", path, bad)
			}
		}
		if m := external.FindString(s); m != "" {
			t.Errorf("%s refers to an external resource: %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("embedded %d files, want index.html, app.js and style.css", n)
	}
}

func TestNotFound(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/ui/nosuch.js", "/ui/static/app.js", "/ui/../ui.go", "/ui/.hidden", "/ui/x/app.js", "/uiapp.js", "/ui/ui.go"} {
		resp := get(t, h, http.MethodGet, path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: CSP %q", path, got)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	resp := get(t, Handler(), http.MethodPost, "/ui/")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
